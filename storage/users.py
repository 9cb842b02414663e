"""Dashboard accounts: argon2id password hashes, roles, lockout after failed sign-ins.

A sign-in always verifies a hash, a dummy one for a name nobody has, so that how long
it takes does not tell whether the name exists; every refusal looks the same to the
caller (:func:`authenticate` returns None), which says nothing more either.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Bind, as_utc, serialize, transaction
from storage.errors import StorageError
from storage.schema import ROLES, User, UserSession
from storage.text import NAME_CHARS, clean

MAX_FAILURES = 5  # failed sign-ins in a row that lock an account
LOCKED_FOR = timedelta(minutes=15)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes every byte: a 50 MB password cost 1.5 s a try
MIN_STRENGTH = 3  # zxcvbn's 0-4: 3 is "safely unguessable" (about 10^8 guesses and more)
PASSWORDS = PasswordHasher()  # argon2id, the library's (RFC 9106) parameters


@functools.cache
def _nobody() -> str:
    """A hash verified for unknown names, so they take as long as known ones; made on
    first use (0.1 s), not by every process that imports this module."""
    return PASSWORDS.hash("a password nobody has")


LOCKED_NOW = "locked now"  # what authenticate says when this failure locked the account


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    email: str | None = None
    disabled: bool = False


def _checked(name: str, role: str, password: str | None) -> str:
    if role not in ROLES:
        raise StorageError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = clean(name).strip()
    if not name or len(name) > NAME_CHARS:
        raise StorageError(f"a user name is 1 to {NAME_CHARS} characters")
    if password is not None:
        _check_password(password, name)
    return name


def _check_password(password: str, name: str) -> None:
    """Refuse a password too short, too long to hash, or easy to guess (common, a
    repeat, a keyboard run, the user's name): zxcvbn's estimate, as NIST 800-63B asks."""
    if len(password) < MIN_PASSWORD:
        raise StorageError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StorageError(f"a password has at most {MAX_PASSWORD} characters")
    from zxcvbn import zxcvbn  # 0.03 s to import: only where a password is set

    strength = zxcvbn(password, user_inputs=[name, "vigil"])
    if strength["score"] < MIN_STRENGTH:
        advice = " ".join(filter(None, [strength["feedback"]["warning"],
                                        *strength["feedback"]["suggestions"]]))
        raise StorageError(f"that password is easy to guess{': ' + advice if advice else ''}"
                           " (a few unrelated words make a strong one)")


def add(bind: Bind, *, name: str, role: str, password: str | None,
        email: str | None = None) -> Account:
    """A new account (``password`` None: single sign-on only)."""
    name = _checked(name, role, password)
    try:
        with transaction(bind) as session:
            session.add(User(name=name, role=role, email=email or None,
                             password_hash=PASSWORDS.hash(password) if password else None,
                             created_at=datetime.now(UTC)))
            session.flush()
    except IntegrityError:
        raise StorageError(f"a user named {name!r} (or with that e-mail) exists") from None
    return Account(name, role, email or None)


def count(bind: Bind) -> int:
    with transaction(bind) as session:
        return session.scalar(select(func.count(User.id))) or 0


def authenticate(bind: Bind, *, name: str, password: str) -> Account | str | None:
    """The account, when the name and password match an enabled account that is not
    locked; else None (and a wrong password counts towards the lockout), or
    :data:`LOCKED_NOW` when this wrong password locked the account."""
    now = datetime.now(UTC)
    password = password[:MAX_PASSWORD + 1]  # longer matches no stored one: no 1.5 s hash
    with transaction(bind) as session:
        user = session.scalar(select(User).where(User.name == clean(name)))
        stored = user.password_hash if user is not None and user.password_hash else _nobody()
        try:
            matches = PASSWORDS.verify(stored, password)
        except (VerificationError, InvalidHashError):
            matches = False
        if user is None or user.password_hash is None or user.disabled:
            return None
        # Counted in the database, not in this process: sixteen wrong passwords sent at
        # once count sixteen, and whatever they locked is read fresh here.
        locked = as_utc(session.execute(select(User.locked_until).where(User.id == user.id)
                                      .with_for_update()).scalar_one())
        if locked is not None and locked > now:
            return None
        if not matches:
            failures = session.execute(
                update(User).where(User.id == user.id)
                .values(failed_attempts=User.failed_attempts + 1)
                .returning(User.failed_attempts)).scalar_one()
            if failures >= MAX_FAILURES:
                session.execute(update(User).where(User.id == user.id).values(
                    failed_attempts=0, locked_until=now + LOCKED_FOR))
                return LOCKED_NOW
            return None
        user.failed_attempts, user.locked_until, user.signed_in_at = 0, None, now
        if PASSWORDS.check_needs_rehash(user.password_hash):
            user.password_hash = PASSWORDS.hash(password)
        return Account(user.name, user.role, user.email)


def by_email(bind: Bind, email: str) -> Account | None:
    """The account with this e-mail (single sign-on), disabled or not; else None."""
    with transaction(bind) as session:
        user = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        return None if user is None else Account(user.name, user.role, user.email,
                                                 user.disabled)


def named(session, name: str) -> User:
    """The account ``name`` (within a transaction), else a StorageError naming it."""
    user = session.scalar(select(User).where(User.name == clean(name)))
    if user is None:
        raise StorageError(f"no user named {name!r} (see `vigil users list`)")
    return user


def set_password(bind: Bind, *, name: str, password: str) -> None:
    """A new password; the user's open sessions end (whoever knew the old one is out)."""
    _checked(name, "viewer", password)
    with transaction(bind) as session:
        user = named(session, name)
        user.password_hash = PASSWORDS.hash(password)
        user.failed_attempts, user.locked_until = 0, None
        end_sessions(session, user, why="password changed")


def set_disabled(bind: Bind, *, name: str, disabled: bool = True) -> None:
    """Disable (or enable) an account; disabling ends its open sessions at once. The last
    enabled administrator is not disabled: nothing could enable an account again."""
    with transaction(bind) as session:
        user = named(session, name)
        if disabled and user.role == "admin" and not user.disabled:
            serialize(session, "administrators")  # two admins disabling each other at once
            admins = session.scalar(select(func.count(User.id)).where(
                User.role == "admin", User.disabled.is_(False)))
            if admins <= 1:
                raise StorageError(f"{user.name} is the last enabled administrator: make "
                                   "another one first (nobody could enable an account again)")
        user.disabled = disabled
        if disabled:
            end_sessions(session, user, why="disabled")


def end_sessions(session: Session, user: User, *, why: str) -> int:
    """End every open dashboard session of ``user`` (within the caller's transaction):
    :mod:`storage.sessions` refuses them from the next page on."""
    return session.execute(update(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    ).values(ended_at=datetime.now(UTC), ended_why=why)).rowcount


def listed(bind: Bind) -> pd.DataFrame:
    """Every account (never a hash): name, role, e-mail, disabled, locked until, last
    sign-in."""
    columns = [User.name, User.role, User.email, User.disabled, User.locked_until,
               User.signed_in_at, User.created_at]
    with transaction(bind) as session:
        rows = session.execute(select(*columns).order_by(User.name)).all()
    return pd.DataFrame(rows, columns=[c.key for c in columns])
