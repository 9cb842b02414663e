"""Delivery against a real SMTP server on loopback."""

import re
from pathlib import Path

import pytest

from alerts import delivery
from alerts.delivery import SmtpConfig, send_smtp, write_outbox
from alerts.errors import DeliveryError
from alerts.message import probe_message
from tests.smtp import free_port


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_S", 0.0)


def message():
    return probe_message(sender="vigil@x.org", recipients=["ops@x.org"],
                         dashboard_url="http://localhost:8501")


def test_plain_smtp(smtp_server):
    transport, attempts = send_smtp(message(), SmtpConfig(smtp_server.host, smtp_server.port,
                                                          security="none"))
    assert transport == f"smtp://127.0.0.1:{smtp_server.port}" and attempts == 1
    assert smtp_server.inbox.recipients == [["ops@x.org"]]
    assert smtp_server.inbox.messages[0]["Subject"] == "[Vigil] test message"


def test_starttls_and_login(tls_server, client_tls_context):
    config = SmtpConfig(tls_server.host, tls_server.port, security="starttls",
                        username="vigil", password="s3cret-pw", ssl_context=client_tls_context)
    send_smtp(message(), config)
    assert len(tls_server.inbox.messages) == 1


def test_starttls_refuses_an_untrusted_certificate(tls_server):
    config = SmtpConfig(tls_server.host, tls_server.port, security="starttls")
    with pytest.raises(DeliveryError, match="TLS with smtp://127.0.0.1") as failure:
        send_smtp(message(), config)
    assert not failure.value.temporary and not tls_server.inbox.messages


def test_wrong_password_is_reported_clearly_without_the_password(tls_server,
                                                                 client_tls_context):
    config = SmtpConfig(tls_server.host, tls_server.port, security="starttls",
                        username="vigil", password="wrong-Pa55", ssl_context=client_tls_context)
    with pytest.raises(DeliveryError) as failure:
        send_smtp(message(), config)
    text = str(failure.value)
    assert text.startswith(f"smtp://127.0.0.1:{tls_server.port} refused the login of 'vigil': 535")
    assert "wrong-Pa55" not in text and "wrong-Pa55" not in repr(config)
    assert not failure.value.temporary and failure.value.attempts == 1


def test_temporary_reply_is_retried(smtp_server):
    smtp_server.inbox.fail_next = 2
    _, attempts = send_smtp(message(), SmtpConfig(smtp_server.host, smtp_server.port,
                                                  security="none"))
    assert attempts == 3 and len(smtp_server.inbox.messages) == 1


def test_server_down_fails_after_the_retries():
    with pytest.raises(DeliveryError, match="refused the connection") as failure:
        send_smtp(message(), SmtpConfig("127.0.0.1", free_port(), security="none"))
    assert failure.value.temporary and failure.value.attempts == delivery.ATTEMPTS


def test_outbox_writes_an_eml_file(tmp_path):
    path = write_outbox(message(), tmp_path / "outbox", name="test")
    assert re.search(r"/\d{8}-\d{6}-test-[0-9a-f]{8}\.eml$", path)
    assert b"Subject: [Vigil] test message" in Path(path).read_bytes()


def test_outbox_messages_written_in_the_same_second_are_all_kept(tmp_path):
    paths = {write_outbox(message(), tmp_path, name="test") for _ in range(5)}
    assert len(paths) == 5 and len(list(tmp_path.glob("*.eml"))) == 5
