"""Accounts, sign-in, roles in the use cases, and the audit log."""

import time

import argon2
import pytest
from sqlalchemy import text

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
    with vigil.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert "password_hash" not in services.list_users(vigil).columns
    with pytest.raises(StorageError, match="at least 12 characters"):
        services.add_user(vigil, "bob", role="viewer", password="short")


def test_passwords_are_hashed_at_rfc_9106_parameters_and_older_ones_upgraded_at_sign_in(
        vigil, monkeypatch, quick_password_hashes):
    """Deployed, argon2id uses RFC 9106's first recommended parameters; a hash stored at
    other (older, cheaper) ones is hashed again at the next sign-in that matches it."""
    deployed = quick_password_hashes
    assert (deployed.type, deployed.memory_cost, deployed.time_cost, deployed.parallelism) \
        == (argon2.Type.ID, 65536, 3, 4)
    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)

    def stored():
        with vigil.engine.connect() as conn:
            return conn.execute(text("SELECT password_hash FROM users")).scalar_one()

    older = stored()
    assert "$m=8192,t=2,p=1$" in older
    monkeypatch.setattr(users, "PASSWORDS", argon2.PasswordHasher(time_cost=2,
                                                                  memory_cost=16384))
    with pytest.raises(SignInError):
        services.sign_in(vigil, "ana", "wrong password!!")
    assert stored() == older  # a wrong password changes nothing
    assert services.sign_in(vigil, "ana", PASSWORD) == Actor("ana", "analyst")
    assert "$m=16384,t=2,p=4$" in stored()
    assert services.sign_in(vigil, "ana", PASSWORD) == Actor("ana", "analyst")


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


def test_unknown_names_take_as_long_as_wrong_passwords(vigil, quick_password_hashes,
                                                      monkeypatch, request):
    """Both verify an argon2 hash: the time does not tell whether a name exists. At the
    deployed cost: at the tests' quick one (10 ms) a wrong password's count of failures,
    written to a busy PostgreSQL, took longer than the hash."""
    from storage import users

    monkeypatch.setattr(users, "PASSWORDS", quick_password_hashes)
    users._nobody.cache_clear()  # the unknown names' hash, made at the deployed cost
    request.addfinalizer(users._nobody.cache_clear)  # and forgotten after
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


def test_a_session_ends_at_once_on_sign_out_disable_and_password_change(vigil):
    """Sessions are server-side records checked on every page: ending one takes effect
    on the next page, not when the browser's session happens to expire."""
    for name in ("ana", "bob", "cy"):
        services.add_user(vigil, name, role="admin", password=PASSWORD)
    admin = vigil.acting_as(Actor("ana", "admin"))
    tokens = {name: services.open_session(vigil, services.sign_in(vigil, name, PASSWORD))
              for name in ("ana", "bob", "cy")}
    second = services.open_session(vigil, Actor("cy", "admin"))  # cy, another browser
    assert services.session_user(vigil, tokens["bob"]) == Actor("bob", "admin")

    services.disable_user(admin, "bob")
    services.set_password(admin, "cy", "another good password")
    services.end_session(vigil, tokens["ana"])
    assert [services.session_user(vigil, t) for t in (*tokens.values(), second)] == \
        [None, None, None, None]
    assert services.session_user(vigil, "a guessed id") is None
    actions = services.audit_log(vigil)["action"].tolist()
    assert actions.count("user.sign_in") == 3 and "user.sign_out" in actions


def test_an_idle_session_ends(vigil):
    services.add_user(vigil, "ana", role="viewer", password=PASSWORD)
    token = services.open_session(vigil, Actor("ana", "viewer"))
    short = Vigil(vigil.settings.model_copy(update={"session_idle_hours": 1e-6}))
    time.sleep(0.01)  # 3.6 ms idle limit
    assert services.session_user(short, token) is None
    assert services.session_user(vigil, token) is None  # ended, not merely too idle here


def test_single_sign_on_refuses_a_disabled_account_whatever_the_role_claim(vigil):
    services.add_user(vigil, "ana", role="analyst", password=None, email="ana@x.org")
    assert services.sso_user(vigil, "ana@x.org", "admin") == Actor("ana", "analyst")
    services.disable_user(vigil, "ana")
    assert services.sso_user(vigil, "ANA@x.org", "admin") is None
    assert services.sso_user(vigil, "someone@x.org", "viewer") == Actor("someone@x.org",
                                                                        "viewer")


def test_failed_sign_ins_are_in_the_audit_log(vigil):
    services.add_user(vigil, "ana", role="viewer", password=PASSWORD)
    with pytest.raises(SignInError):
        services.sign_in(vigil, "ana", "wrong password!!")
    log = services.audit_log(vigil)
    refused = log[log["action"] == "user.sign_in_refused"]
    assert refused["target"].tolist() == ["user ana"]


def test_sixteen_wrong_passwords_at_once_lock_the_account(vigil):
    """They counted as 2, and the right password was then accepted (48 guesses before
    lockout instead of 5): failures are counted in the database."""
    from concurrent.futures import ThreadPoolExecutor

    services.add_user(vigil, "ana", role="analyst", password=PASSWORD)

    def guess(i: int) -> bool:
        try:
            services.sign_in(vigil, "ana", f"wrong password {i:02d}")
        except SignInError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert not any(pool.map(guess, range(16)))
    with pytest.raises(SignInError):
        services.sign_in(vigil, "ana", PASSWORD)
    assert services.list_users(vigil)["locked_until"].notna().all()


def test_eight_first_administrator_forms_at_once_make_one_administrator(vigil):
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> str:
        try:
            return services.create_first_admin(vigil, f"admin{i}", PASSWORD).name
        except NotAllowedError:
            return ""

    with ThreadPoolExecutor(8) as pool:
        made = [name for name in pool.map(create, range(8)) if name]
    assert len(made) == 1
    assert services.list_users(vigil)["name"].tolist() == made


@pytest.mark.postgres
def test_two_containers_upgrading_and_bootstrapping_a_fresh_database_at_once(postgres_url):
    """Compose's app and api containers each run `vigil db upgrade && vigil users
    bootstrap` on a fresh PostgreSQL database: it failed 5 times in 5 (UniqueViolation)."""
    import os
    import subprocess
    import sys
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from storage import db

    admin = db.make_engine(postgres_url)
    name = f"vigil_fresh_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url, "VIGIL_ADMIN_USER": "ada",
           "VIGIL_ADMIN_PASSWORD": PASSWORD}
    script = (f"{sys.executable} -m app db upgrade && "
              f"{sys.executable} -m app users bootstrap")
    try:
        both = [subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in both]
        assert [code for code, _, _ in outcomes] == [0, 0], outcomes
        said = "".join(out for _, out, _ in outcomes)
        assert said.count("created the administrator ada") == 1, said
        assert "accounts exist already" in said
        engine = db.make_engine(url)
        assert db.is_current(engine)
        assert users.listed(engine)["name"].tolist() == ["ada"]
        engine.dispose()
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(("password", "why"), [
    (" " * 12, "easy to guess"), ("password1234", "easy to guess"),
    ("aaaaaaaaaaaa", "easy to guess"), ("ana-ana-ana-", "easy to guess"),
    ("x" * 11, "at least 12"), ("long words " * 200, "at most 1024")])
def test_weak_or_huge_passwords_are_refused_in_words(vigil, password, why):
    with pytest.raises(StorageError, match=why):
        services.add_user(vigil, "ana", role="viewer", password=password)
    services.add_user(vigil, "ana", role="viewer", password=PASSWORD)
    with pytest.raises(StorageError, match=why):
        services.set_password(vigil, "ana", password)


def test_a_huge_password_is_not_hashed_whole(vigil, monkeypatch):
    """A 50 MB password cost 1.5 s of hashing per attempt."""
    services.add_user(vigil, "ana", role="viewer", password=PASSWORD)
    hashed = []

    class Counting:  # argon2's hasher, noting the length of each password it hashes
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, stored, given):
            hashed.append(len(given))
            return real.verify(stored, given)

    real = users.PASSWORDS
    monkeypatch.setattr(users, "PASSWORDS", Counting())
    for name in ("ana", "nobody"):
        with pytest.raises(SignInError):
            services.sign_in(vigil, name, "x" * 50_000_000)
    assert hashed and max(hashed) <= users.MAX_PASSWORD + 1


def test_lockouts_refused_reviews_exports_and_test_emails_are_audited(vigil, tmp_path):
    from app.services import AnomalyFilter

    services.add_user(vigil, "ana", role="viewer", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(SignInError):
            services.sign_in(vigil, "ana", "wrong password!!")
    viewer = vigil.acting_as(Actor("ana", "viewer"))
    with pytest.raises(NotAllowedError):
        services.review(viewer, [1, 2], "dismissed")
    services.anomalies_csv(viewer, AnomalyFilter(severities=["high"]))
    services.send_test_email(vigil, "someone@elsewhere.org")
    log = services.audit_log(vigil).set_index("action")
    assert log.loc["user.lockout", "target"] == "user ana"
    assert log.loc["anomaly.review_refused", "actor"] == "ana"
    assert log.loc["anomaly.review_refused", "target"] == "anomaly 1, 2"
    assert log.loc["anomalies.export", "after"] == {"filters": {"severities": ["high"]}}
    assert log.loc["alert.test", "target"] == "someone@elsewhere.org"
