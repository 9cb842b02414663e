"""Send a message over SMTP, or write it to the outbox folder when no server is set."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from alerts.errors import DeliveryError

ATTEMPTS = 3
BACKOFF_S = 1.0  # doubled after each temporary failure
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # none, starttls or ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    timeout: float = TIMEOUT_S
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
        else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _send_once(message: EmailMessage, config: SmtpConfig) -> None:
    context = config.ssl_context or ssl.create_default_context()
    if config.security == "ssl":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                  context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with client as smtp:
        if config.security == "starttls":
            smtp.starttls(context=context)
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)


def _classify(exc: Exception, config: SmtpConfig) -> DeliveryError:
    """Our own words for a failure; the password never appears in them."""
    where = config.address
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"{where} refused the login of {config.username!r}: "
                             f"{_reply(exc)}", temporary=False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{rcpt}: {code} {msg.decode(errors='replace')}"
                            for rcpt, (code, msg) in exc.recipients.items())
        temporary = all(400 <= code < 500 for code, _ in exc.recipients.values())
        return DeliveryError(f"{where} refused the recipients ({replies})", temporary=temporary)
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"{where} replied {_reply(exc)}",
                             temporary=400 <= exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where} does not support {config.security.upper()}: set "
                             "SMTP_SECURITY to match the server", temporary=False)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS with {where} failed: {exc.reason or exc}", temporary=False)
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError(f"{where} refused the connection (is the mail server running?)",
                             temporary=True)
    if isinstance(exc, socket.timeout | TimeoutError):
        return DeliveryError(f"{where} did not answer within {config.timeout:g} s",
                             temporary=True)
    if isinstance(exc, smtplib.SMTPException | OSError):
        return DeliveryError(f"sending through {where} failed: {exc}", temporary=True)
    raise exc


def send_smtp(message: EmailMessage, config: SmtpConfig, *,
              attempts: int = ATTEMPTS) -> tuple[str, int]:
    """Send, retrying temporary failures (4xx replies, refused connections, timeouts)
    with exponential backoff. Returns (transport, attempts made).

    Raises
    ------
    DeliveryError
        After a permanent failure, or when every attempt failed; ``attempts`` is set on it.
    """
    for attempt in range(1, attempts + 1):
        try:
            _send_once(message, config)
            return config.address, attempt
        except (smtplib.SMTPException, OSError) as exc:
            error = _classify(exc, config)
            error.attempts = attempt
            if not error.temporary or attempt == attempts:
                raise error from None
        time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def write_outbox(message: EmailMessage, folder: Path, *, name: str) -> str:
    """Write the message as ``.eml`` (openable in any mail client); returns its path.

    Names carry a random part, so two messages written in the same second never
    overwrite each other.

    Raises
    ------
    DeliveryError
        The folder cannot be created or written.
    """
    folder = folder.expanduser()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}-{name}-{uuid.uuid4().hex[:8]}.eml"
    tmp = path.with_suffix(".tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(message.as_bytes())
        tmp.replace(path)
    except OSError as exc:
        raise DeliveryError(f"the outbox folder {folder} cannot be written "
                            f"({exc.strerror or exc}): set ALERT_OUTBOX_DIR to a writable "
                            "folder, or SMTP_HOST to send by mail", temporary=False) from None
    return str(path)
