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
from storage.schema import ROLES, ApiToken, User
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


def add(engine: Engine, *, name: str, role: str, user: str) -> str:
    """Make a token ``name`` for the account ``user``, with ``role`` (at most the user's);
    returns the token, which is not stored."""
    if role not in ROLES:
        raise StorageError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = clean(name)
    if not name or len(name) > NAME_CHARS:
        raise StorageError(f"a token's name is 1 to {NAME_CHARS} characters; got {len(name)}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction(engine) as session:
            owner = session.scalar(select(User).where(User.name == clean(user),
                                                      User.disabled.is_(False)))
            if owner is None:
                raise StorageError(f"no enabled user named {user!r}: a token belongs to a "
                                   "user (`vigil users add`)")
            if ROLES.index(role) > ROLES.index(owner.role):
                raise StorageError(f"a token carries at most its user's role: {owner.name} "
                                   f"is {owner.role}, the token asks for {role}")
            session.add(ApiToken(name=name, role=role, token_hash=_hash(token),
                                 prefix=token[:10], created_at=datetime.now(UTC),
                                 user_id=owner.id))
            session.flush()  # within the caller's unit of work too: the name is checked here
    except IntegrityError:
        raise StorageError(f"a token named {name!r} exists (a revoked token keeps its "
                           "name): pick another name") from None
    return token


def holder(engine: Engine, token: str) -> Holder | None:
    """The holder of a valid token (not revoked, its user enabled), with the lower of
    the token's and the user's current role; else None."""
    with transaction(engine) as session:
        found = session.execute(
            select(ApiToken.name, ApiToken.role, User.role.label("user_role"))
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None),
                   User.disabled.is_(False))).first()
    if found is None:
        return None
    return Holder(found.name, min(found.role, found.user_role, key=ROLES.index))


def revoke(engine: Engine, *, name: str) -> bool:
    """Revoke the token named ``name``; False when there is no such valid token."""
    with transaction(engine) as session:
        changed = session.execute(update(ApiToken).where(
            ApiToken.name == clean(name), ApiToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))).rowcount
    return bool(changed)


def listed(engine: Engine) -> pd.DataFrame:
    """Every token: name, user, role, prefix, created and revoked times (never the hash)."""
    columns = [ApiToken.name, User.name.label("user"), ApiToken.role, ApiToken.prefix,
               ApiToken.created_at, ApiToken.revoked_at]
    with transaction(engine) as session:
        rows = session.execute(select(*columns).outerjoin(User, User.id == ApiToken.user_id)
                               .order_by(ApiToken.id)).all()
    return pd.DataFrame(rows, columns=["name", "user", "role", "prefix", "created_at",
                                       "revoked_at"])
