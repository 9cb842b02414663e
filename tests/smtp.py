"""A real SMTP server on loopback (aiosmtpd), started per test; a pytest plugin of the suite."""

from __future__ import annotations

import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Inbox:
    """What the server received; ``fail_next`` replies with temporary errors first."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    fail_next: int = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.fail_next:
            self.fail_next -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        self.messages.append(message_from_bytes(envelope.original_content,
                                                policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox
    controller: Controller | None = None

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"vigil" \
        and auth_data.password == b"s3cret-pw"
    return AuthResult(success=ok, handled=False)


def start_server(*, tls_context: ssl.SSLContext | None = None, auth: bool = False,
                 port: int | None = None) -> SmtpServer:
    inbox = Inbox()
    options = {}
    if tls_context is not None:
        options.update(tls_context=tls_context, require_starttls=True)
    if auth:
        options.update(authenticator=authenticator, auth_require_tls=tls_context is not None)
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return SmtpServer("127.0.0.1", port, inbox, controller)


@pytest.fixture
def smtp_server():
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = start_server(tls_context=context, auth=True)
    yield server
    server.stop()


@pytest.fixture
def client_tls_context(certificate):
    """Trusts the test certificate, and verifies it like any other."""
    return ssl.create_default_context(cafile=str(certificate[0]))
