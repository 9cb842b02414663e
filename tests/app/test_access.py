"""Accounts, sign-in, roles in the use cases, and the audit log."""

import time

import pytest

from app import services
from app.errors import NotAllowedError, SignInError
from app.settings import Settings
from app.vigil import Actor, Vigil
from storage import users
from storage.errors import StorageError

PASSWORD = "correct horse battery"


@pytest.fixture
def vigil(database_url, tmp_path) -> Vigil:
    return Vigil(Settings(database_url=database_url, journal_dir=tmp_path / "j",
                          alert_outbox_dir=tmp_path / "outbox"))


def test_the_first_administrator_only_while_no_account_exists(vigil):
    assert services.needs_first_admin(vigil)
    admin = services.create_first_admin(vigil, "ada", PASSWORD)
    assert admin == Actor("ada", "admin")
    assert not services.needs_first_admin(vigil)
    with pytest.raises(NotAllowedError, match="exists already"):
        services.create_first_admin(vigil, "mallory", PASSWORD)
    assert services.list_users(vigil)["name"].tolist() == ["ada"]


def test_passwords_are_argon2id_hashes_and_never_listed(vigil, database_url):
    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)
    from sqlalchemy import text

    with vigil.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert "password_hash" not in services.list_users(vigil).columns
    with pytest.raises(StorageError, match="at least 12 characters"):
        services.add_user(vigil, "bob", role="viewer", password="short")


def test_sign_in_refuses_alike_and_locks_after_five_failures(vigil, monkeypatch):
    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)
    assert services.sign_in(vigil, "ana", PASSWORD) == Actor("ana", "analyst")
    messages = set()
    for name, password in [("nobody", PASSWORD), ("ana", "wrong password!!")]:
        with pytest.raises(SignInError) as refused:
            services.sign_in(vigil, name, password)
        messages.add(str(refused.value))
    assert len(messages) == 1  # an unknown name reads like a wrong password
    for _ in range(4):  # five failures in a row, counting the one above
        with pytest.raises(SignInError):
            services.sign_in(vigil, "ana", "wrong password!!")
    with pytest.raises(SignInError) as locked:  # the right password, but locked
        services.sign_in(vigil, "ana", PASSWORD)
    assert str(locked.value) in messages
    later = users.datetime.now(users.UTC) + users.LOCKED_FOR
    monkeypatch.setattr(users, "datetime", type("Later", (), {
        "now": staticmethod(lambda tz=None: later + users.timedelta(seconds=1))}))
    assert services.sign_in(vigil, "ana", PASSWORD) == Actor("ana", "analyst")


def test_unknown_names_take_as_long_as_wrong_passwords(vigil):
    """Both verify an argon2 hash: the time does not tell whether a name exists."""
    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)

    def timed(name):
        start = time.perf_counter()
        with pytest.raises(SignInError):
            services.sign_in(vigil, name, "wrong password!!")
        return time.perf_counter() - start

    known = min(timed("ana") for _ in range(3))
    services.sign_in(vigil, "ana", PASSWORD)  # reset the failure count
    unknown = min(timed("nobody") for _ in range(3))
    assert unknown > known / 3  # a hash is verified either way (tens of milliseconds)


def test_a_disabled_user_cannot_sign_in_and_their_tokens_stop(vigil):
    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)
    token = services.add_token(vigil, "ana-job", role="viewer", user="ana")
    assert services.token_holder(vigil, token).role == "viewer"
    services.disable_user(vigil, "ana")
    with pytest.raises(SignInError):
        services.sign_in(vigil, "ana", PASSWORD)
    assert services.token_holder(vigil, token) is None


def test_a_token_carries_at_most_its_users_role(vigil):
    services.add_user(vigil, "vic", role="viewer", password=PASSWORD)
    with pytest.raises(StorageError, match="at most its user's role: vic is viewer"):
        services.add_token(vigil, "vic-job", role="admin", user="vic")
    with pytest.raises(StorageError, match="no enabled user named 'ghost'"):
        services.add_token(vigil, "ghost-job", role="viewer", user="ghost")


@pytest.mark.parametrize(("role", "allowed"), [
    ("viewer", {"read"}),
    ("analyst", {"read", "review", "alert"}),
    ("admin", {"read", "review", "alert", "activate", "users"}),
])
def test_use_cases_refuse_what_the_role_may_not_do(vigil, role, allowed):
    """Checked in app/, not only by hiding pages."""
    acting = vigil.acting_as(Actor(f"{role}-1", role))
    attempts = {
        "read": lambda: services.list_runs(acting),
        "review": lambda: services.review(acting, [], "confirmed"),
        "alert": lambda: services.retry_failed(acting),
        "activate": lambda: services.rollback_model(acting, "sensor"),
        "users": lambda: services.list_users(acting),
    }
    for what, attempt in attempts.items():
        if what in allowed:
            try:
                attempt()
            except NotAllowedError:
                pytest.fail(f"{role} was refused {what}")
            except StorageError:
                pass  # allowed, and failed for want of data (no model to roll back)
        else:
            with pytest.raises(NotAllowedError, match=rf"{role}-1 \({role}\) may not"):
                attempt()
    nobody = vigil.acting_as(Actor("(not signed in)", "none"))
    with pytest.raises(NotAllowedError):
        services.list_runs(nobody)


def test_an_analysts_review_is_audited_with_their_name(vigil, tmp_path):
    from storage.runs import save_run
    from tests.storage.conftest import make_run

    run_id = save_run(vigil.engine, run=make_run(5)).run_id
    ids = services.query_anomalies(vigil, services.AnomalyFilter(run_ids=[run_id]),
                                   limit=None)["id"].tolist()
    ana = vigil.acting_as(Actor("ana", "analyst"))
    assert services.review(ana, ids[:2], "confirmed", note="bearing") == 2
    rows = services.query_anomalies(vigil, services.AnomalyFilter(ids=ids[:2]), limit=None)
    assert set(rows["reviewed_by"]) == {"ana"}
    (event,) = services.audit_log(vigil, action="anomaly.review").itertuples()
    assert event.actor == "ana" and event.target == f"2 anomalies: {ids[0]}, {ids[1]}"
    assert event.before == {"status": {str(ids[0]): "new", str(ids[1]): "new"}}
    assert event.after == {"status": "confirmed", "note": "bearing"}
    services.add_user(vigil, "bob", role="viewer", password=PASSWORD)
    actions = services.audit_log(vigil)["action"].tolist()
    assert actions == ["user.add", "anomaly.review"]  # newest first
