"""Dashboard sessions: server-side records, so that ending one takes effect at once.

A browser holds a random session id (``start`` returns it; only its sha256 is stored).
Every page shown looks the session up (:func:`holder`): it is valid while it has not
ended, its user is enabled and it was seen within the idle limit. Signing out ends it;
disabling a user or changing their password ends all of theirs (:func:`end_all`, in the
same transaction as the change: :func:`storage.users.end_sessions`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from storage.db import Bind, as_utc, transaction
from storage.schema import User, UserSession
from storage.users import Account, named

SEEN_EVERY = timedelta(minutes=1)  # how stale seen_at may get before a page updates it


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(bind: Bind, *, name: str) -> str:
    """A new session of the user ``name``; returns the id the browser keeps."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with transaction(bind) as session:
        session.add(UserSession(token_hash=_hash(token), user_id=named(session, name).id,
                                created_at=now, seen_at=now))
    return token


def holder(bind: Bind, token: str, *, idle: timedelta) -> Account | None:
    """The account of a live session, else None (an idle session ends here)."""
    now = datetime.now(UTC)
    with transaction(bind) as session:
        found = session.execute(
            select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None))
        ).one_or_none()
        if found is None:
            return None
        record, user = found
        if user.disabled:
            return None
        if now - as_utc(record.seen_at) > idle:
            record.ended_at, record.ended_why = now, "idle"
            return None
        if now - as_utc(record.seen_at) > SEEN_EVERY:
            record.seen_at = now
        return Account(user.name, user.role, user.email)


def end(bind: Bind, token: str, *, why: str = "signed out") -> bool:
    """End one session; False when it had ended already."""
    with transaction(bind) as session:
        result = session.execute(update(UserSession).where(
            UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None)
        ).values(ended_at=datetime.now(UTC), ended_why=why))
        return result.rowcount > 0
