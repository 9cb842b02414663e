"""Bearer tokens of the HTTP API: made once, kept as a hash, revocable.

A token is 32 random bytes (URL-safe text): unguessable, so a fast hash (sha256) is the
right one to keep, and a token is found by its hash (what GitHub and PyPI do); slow
password hashes are for what people choose.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import transaction
from storage.errors import StorageError
from storage.schema import ROLES, ApiToken
from storage.text import NAME_CHARS, clean

PREFIX = "vgl_"


@dataclass(frozen=True)
class Holder:
    """Who a token belongs to."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this holder's role includes ``role`` (viewer < analyst < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(engine: Engine, *, name: str, role: str) -> str:
    """Make a token for ``name`` with ``role``; returns the token, which is not stored."""
    if role not in ROLES:
        raise StorageError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = clean(name)
    if not name or len(name) > NAME_CHARS:
        raise StorageError(f"a token's name is 1 to {NAME_CHARS} characters; got {len(name)}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction(engine) as session:
            session.add(ApiToken(name=name, role=role, token_hash=_hash(token),
                                 prefix=token[:10], created_at=datetime.now(UTC)))
    except IntegrityError:
        raise StorageError(f"a token named {name!r} exists: revoke it or pick another "
                           "name") from None
    return token


def holder(engine: Engine, token: str) -> Holder | None:
    """The holder of a valid (not revoked) token, else None."""
    with transaction(engine) as session:
        found = session.execute(select(ApiToken.name, ApiToken.role).where(
            ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None))).first()
    return None if found is None else Holder(found.name, found.role)


def revoke(engine: Engine, *, name: str) -> bool:
    """Revoke the token named ``name``; False when there is no such valid token."""
    with transaction(engine) as session:
        changed = session.execute(update(ApiToken).where(
            ApiToken.name == clean(name), ApiToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))).rowcount
    return bool(changed)


def listed(engine: Engine) -> pd.DataFrame:
    """Every token: name, role, prefix, created and revoked times (never the hash)."""
    columns = [ApiToken.name, ApiToken.role, ApiToken.prefix, ApiToken.created_at,
               ApiToken.revoked_at]
    with transaction(engine) as session:
        rows = session.execute(select(*columns).order_by(ApiToken.id)).all()
    return pd.DataFrame(rows, columns=[c.key for c in columns])
