"""Alerting a stored run through the use case, against a real SMTP server."""

import email
import io

import pandas as pd
import pytest
from sqlalchemy import text

from alerts import delivery
from app import services
from app.errors import NotAllowedError
from app.settings import Settings
from app.vigil import Vigil
from storage.errors import StorageError
from storage.runs import save_run
from tests.smtp import start_server
from tests.storage.conftest import make_run

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_S", 0.0)


def settings_for(database_url, tmp_path, server=None, **overrides) -> Settings:
    values = dict(database_url=database_url, journal_dir=tmp_path / "fallback",
                  alert_outbox_dir=tmp_path / "outbox", alert_to_maintenance="ops@x.org",
                  alert_to_security="soc@x.org", smtp_from="vigil@x.org",
                  smtp_security="none", dashboard_url="https://vigil.example.org")
    if server is not None:
        values.update(smtp_host=server.host, smtp_port=server.port)
    values.update(overrides)
    return Settings(**values)


def store(settings, n=10, sha="f" * 64, **kwargs) -> int:
    run = make_run(n, file_sha256=sha, **kwargs)
    run.anomalies.loc[n - 1, "entity"] = SCRIPT  # the worst row is about a hostile name
    run.anomalies.at[n - 1, "data"] = {"user": SCRIPT, "device": "=HYPERLINK(\"x\")"}
    return save_run(Vigil(settings).engine, run=run).run_id


def test_digest_reaches_the_team_with_attachment_and_safe_values(database_url, tmp_path,
                                                                 smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server)
    run_id = store(settings)
    report = services.notify(Vigil(settings), run_id)
    assert report.status == "sent", report.message
    (message,) = smtp_server.inbox.messages
    assert smtp_server.inbox.recipients == [["ops@x.org"]]
    assert message["Subject"] == "[Vigil] 1 critical, 2 high incidents in readings.csv"
    assert message.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in message.get_payload()[0].iter_parts()] == \
        ["text/plain", "text/html"]
    html = message.get_body(("html",)).get_content()
    assert SCRIPT not in html and "&lt;script&gt;" in html
    assert f"https://vigil.example.org/explore?run={run_id}" in html
    (part,) = list(message.iter_attachments())
    rows = pd.read_csv(io.BytesIO(part.get_payload(decode=True)))
    assert len(rows) == 3  # every anomaly at high or above
    assert "'=HYPERLINK(\"x\")" in rows["device"].tolist()
    log = services.notification_log(Vigil(settings))
    assert log.loc[0, "status"] == "sent" and log.loc[0, "attempts"] == 1


def test_second_call_sends_nothing(database_url, tmp_path, smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server)
    run_id = store(settings)
    assert services.notify(Vigil(settings), run_id).status == "sent"
    again = services.notify(Vigil(settings), run_id)
    assert again.status == "duplicate" and "nothing was sent again" in again.message
    assert len(smtp_server.inbox.messages) == 1


def test_throttle_holds_the_seventh_digest_and_the_next_one_carries_it(database_url, tmp_path,
                                                                        smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server, alert_max_per_hour=6)
    statuses = [services.notify(Vigil(settings), store(settings, sha=str(i) * 64)).status
                for i in range(7)]
    assert statuses == ["sent"] * 6 + ["queued"]
    assert len(smtp_server.inbox.messages) == 6
    # an hour later (the sent ones age out), the next run's digest includes the held one
    engine = Vigil(settings).engine
    with engine.begin() as conn:
        conn.execute(text("UPDATE alert_notifications SET sent_at = :t WHERE status = 'sent'"),
                     {"t": pd.Timestamp("2000-01-01", tz="UTC").to_pydatetime()})
    assert services.notify(Vigil(settings), store(settings, sha="8" * 64)).status == "sent"
    last = smtp_server.inbox.messages[-1]
    assert "and 1 earlier file(s)" in last["Subject"]
    (part,) = list(last.iter_attachments())
    assert len(pd.read_csv(io.BytesIO(part.get_payload(decode=True)))) == 6
    log = services.notification_log(Vigil(settings))
    assert set(log["status"]) == {"sent"}


def test_server_down_is_recorded_failed_then_retried_once(database_url, tmp_path):
    server = start_server()
    port = server.port
    server.stop()
    settings = settings_for(database_url, tmp_path, server)
    run_id = store(settings)
    report = services.notify(Vigil(settings), run_id)
    assert report.status == "failed" and "refused the connection" in report.message
    log = services.notification_log(Vigil(settings))
    assert log.loc[0, "status"] == "failed" and log.loc[0, "attempts"] == delivery.ATTEMPTS
    assert "refused the connection" in log.loc[0, "last_error"]
    back = start_server(port=port)
    try:
        assert [r.status for r in services.retry_failed(Vigil(settings))] == ["sent"]
        assert services.retry_failed(Vigil(settings)) == []
        assert services.notify(Vigil(settings), run_id).status == "duplicate"
        assert len(back.inbox.messages) == 1
    finally:
        back.stop()


def test_analyst_closed_rows_are_not_alerted(database_url, tmp_path, smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server)
    run_id = store(settings)
    rows = services.query_anomalies(Vigil(settings))
    worst = rows.loc[rows["anomaly_score"] >= 85, "id"].tolist()
    services.review(Vigil(settings), worst, "false_positive")
    report = services.notify(Vigil(settings), run_id)
    assert report.status == "skipped" and "no open anomaly at high" in report.message
    assert smtp_server.inbox.messages == []


def test_outbox_when_no_smtp_host(database_url, tmp_path):
    settings = settings_for(database_url, tmp_path)
    report = services.notify(Vigil(settings), store(settings))
    assert report.status == "sent"
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert b"[Vigil] 1 critical, 2 high incidents in readings.csv" in eml.read_bytes()


def test_no_recipients_configured(database_url, tmp_path):
    settings = settings_for(database_url, tmp_path, alert_to_maintenance="")
    report = services.notify(Vigil(settings), store(settings))
    assert report.status == "skipped" and report.message == (
        "No alert sent: nobody receives sensor alerts (the maintenance team has no "
        "address): set one on the Alerts page, or ALERT_TO_MAINTENANCE.")


def test_routing_set_on_the_alerts_page_overrides_the_environment(database_url, tmp_path):
    """Recipients and the least severity could only be set in the environment, with a
    restart; `make run` said "No alert sent: ALERT_TO_MAINTENANCE is empty"."""
    settings = settings_for(database_url, tmp_path, alert_to_maintenance="")
    admin = Vigil(settings).acting_as(services.Actor("root", "admin"))
    before = services.alert_routing(admin)
    assert before.to_maintenance == "" and before.set_here == frozenset()
    with pytest.raises(StorageError, match="must be e-mail addresses .* not: ops at x"):
        services.set_alert_routing(admin, to_security="", to_maintenance="ops at x",
                                   min_severity="high")
    route = services.set_alert_routing(admin, to_security="soc@x.org",
                                       to_maintenance="ops@x.org;  lead@x.org, ops@x.org",
                                       min_severity="medium")
    assert route.to_maintenance == "ops@x.org, lead@x.org" and route.min_severity == "medium"
    assert route.set_here == {"to_security", "to_maintenance", "min_severity"}
    report = services.notify(Vigil(settings), store(settings))
    assert report.status == "sent", report.message
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes())
    assert message["To"] == "ops@x.org, lead@x.org"
    event = services.audit_log(admin, action="alert.routing").iloc[0]
    assert event["actor"] == "root" and event["before"]["to_maintenance"] == ""
    assert event["after"]["min_severity"] == "medium"
    with pytest.raises(NotAllowedError):
        services.set_alert_routing(Vigil(settings).acting_as(services.Actor("a", "analyst")),
                                   to_security="", to_maintenance="", min_severity="high")


def test_password_never_leaks(database_url, tmp_path, tls_server):
    settings = settings_for(database_url, tmp_path, tls_server, smtp_security="none",
                            smtp_username="vigil", smtp_password="Pw-9f8e7d")
    report = services.notify(Vigil(settings), store(settings))
    assert report.status == "failed"
    log = services.notification_log(Vigil(settings))
    assert "Pw-9f8e7d" not in report.message + str(log.to_dict()) + repr(settings)


def test_line_breaks_in_a_file_name_cannot_add_headers(database_url, tmp_path, smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server)
    run_id = store(settings, source_name="evil.csv\r\nBcc: thief@x.org\r\n")
    report = services.notify(Vigil(settings), run_id)
    assert report.status == "sent", report.message
    (message,) = smtp_server.inbox.messages
    assert message["Subject"] == "[Vigil] 1 critical, 2 high incidents in evil.csv Bcc: thief@x.org"
    assert message["Bcc"] is None and smtp_server.inbox.recipients == [["ops@x.org"]]


def test_a_message_that_cannot_be_built_is_recorded_failed(database_url, tmp_path, smtp_server):
    settings = settings_for(database_url, tmp_path, smtp_server,
                            smtp_from="vigil@x.org\r\nBcc: thief@x.org")
    run_id = store(settings)
    report = services.notify(Vigil(settings), run_id)
    assert report.status == "failed" and "could not be built" in report.message
    (row,) = services.notification_log(Vigil(settings)).itertuples()
    assert row.status == "failed" and row.subject.startswith("[Vigil] 1 critical")
    fixed = settings_for(database_url, tmp_path, smtp_server)
    assert [r.status for r in services.retry_failed(Vigil(fixed))] == ["sent"]
    assert len(smtp_server.inbox.messages) == 1


def test_an_outbox_that_is_a_file_fails_in_words(database_url, tmp_path):
    blocker = tmp_path / "outbox-file"
    blocker.write_text("")
    settings = settings_for(database_url, tmp_path, alert_outbox_dir=blocker)
    report = services.notify(Vigil(settings), store(settings))
    assert report.status == "failed"
    assert f"the outbox folder {blocker} cannot be written" in report.message
    assert services.notification_log(Vigil(settings))["status"].tolist() == ["failed"]


def test_outbox_folder_with_a_tilde_is_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ALERT_OUTBOX_DIR", "~/vigil-outbox")
    monkeypatch.setenv("JOURNAL_DIR", "~/vigil-journal")
    settings = Settings()
    assert settings.alert_outbox_dir == tmp_path / "vigil-outbox"
    assert settings.journal_dir == tmp_path / "vigil-journal"


def test_an_alert_takes_two_units_of_work_and_none_while_mail_is_sent(database_url, tmp_path,
                                                                      smtp_server, monkeypatch):
    """One transaction reads the run, claims the digest and writes its subject; one
    records the delivery. None is open while the mail server is talked to."""
    from sqlalchemy import event

    settings = settings_for(database_url, tmp_path, smtp_server)
    run_id = store(settings)
    vigil = Vigil(settings)
    begun, open_now = [], {"count": 0}

    def begin(_connection):
        begun.append(1)
        open_now["count"] += 1

    def end(_connection):
        open_now["count"] -= 1

    sending = delivery.send_smtp
    seen_open = []

    def watched_send(message, config):
        seen_open.append(open_now["count"])
        return sending(message, config)

    monkeypatch.setattr("app.services.alerts.send_smtp", watched_send)
    for name, handler in (("begin", begin), ("commit", end), ("rollback", end)):
        event.listen(vigil.engine, name, handler)
    try:
        report = services.notify(vigil, run_id)
    finally:
        for name, handler in (("begin", begin), ("commit", end), ("rollback", end)):
            event.remove(vigil.engine, name, handler)
    assert report.status == "sent", report.message
    assert len(begun) == 2 and seen_open == [0]
    assert services.notification_log(vigil)["subject"].iloc[0] == report.message.split(": ", 1)[1]
