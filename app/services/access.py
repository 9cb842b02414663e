"""Who may use Vigil: accounts and sign-in, the HTTP API's tokens, the audit log."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from app.errors import NotAllowedError, SignInError
from app.vigil import Actor, Vigil
from storage import audit, db, sessions, tokens, users
from storage.schema import ROLES
from storage.text import NAME_CHARS, clean


def add_token(vigil: Vigil, name: str, *, role: str, user: str) -> str:
    """A new API token for ``user`` (shown once: only its hash is stored)."""
    actor = vigil.require("admin")
    with vigil.unit() as session:
        token = tokens.add(session, name=name, role=role, user=user)
        audit.record(session, actor=actor.name, action="token.add", target=f"token {name}",
                     after={"role": role, "user": user})
    return token


def token_holder(vigil: Vigil, token: str) -> tokens.Holder | None:
    return tokens.holder(vigil.engine, token)


def revoke_token(vigil: Vigil, name: str) -> bool:
    actor = vigil.require("admin")
    with vigil.unit() as session:
        revoked = tokens.revoke(session, name=name)
        if revoked:
            audit.record(session, actor=actor.name, action="token.revoke",
                         target=f"token {name}")
    return revoked


def list_tokens(vigil: Vigil) -> pd.DataFrame:
    vigil.require("admin")
    return tokens.listed(vigil.engine)


# -- accounts --------------------------------------------------------------------------
REFUSED = ("The name or password is wrong, or the account is locked for 15 minutes after "
           "5 failed attempts.")


def sign_in(vigil: Vigil, name: str, password: str) -> Actor:
    """The signed-in user, or :class:`SignInError` (one message for every refusal).
    Both are in the audit log."""
    account = users.authenticate(vigil.engine, name=name, password=password)
    with vigil.unit() as session:
        who = clean(name, NAME_CHARS) or "(no name)"
        target = f"user {clean(name, NAME_CHARS - 5)}"
        audit.record(session, actor=who, target=target,
                     action="user.sign_in" if isinstance(account, users.Account)
                     else "user.sign_in_refused")
        if account == users.LOCKED_NOW:
            audit.record(session, actor=who, action="user.lockout", target=target,
                         after={"minutes": users.LOCKED_FOR.total_seconds() / 60})
    if not isinstance(account, users.Account):
        raise SignInError(REFUSED)
    return Actor(account.name, account.role)


def open_session(vigil: Vigil, actor: Actor) -> str:
    """A dashboard session of the signed-in ``actor``: the id its browser keeps."""
    return sessions.start(vigil.engine, name=actor.name)


def session_user(vigil: Vigil, token: str) -> Actor | None:
    """Who a dashboard session acts for; None once it ended (signed out, the user
    disabled or their password changed, idle for ``SESSION_IDLE_HOURS``)."""
    account = sessions.holder(vigil.engine, token,
                              idle=timedelta(hours=vigil.settings.session_idle_hours))
    return None if account is None else Actor(account.name, account.role)


def end_session(vigil: Vigil, token: str) -> None:
    """Sign a dashboard session out (recorded in the audit log)."""
    account = sessions.holder(vigil.engine, token,
                              idle=timedelta(hours=vigil.settings.session_idle_hours))
    if sessions.end(vigil.engine, token) and account is not None:
        with vigil.unit() as session:
            audit.record(session, actor=account.name, action="user.sign_out",
                         target=f"user {account.name}")


def sso_user(vigil: Vigil, email: str, claimed_role: str | None = None) -> Actor | None:
    """The user a single sign-on identity acts as: the account with that e-mail (its
    role), else the identity provider's role claim when it names a role, else None.
    A disabled account's e-mail is refused, role claim or not."""
    account = users.by_email(vigil.engine, email)
    if account is not None:
        return None if account.disabled else Actor(account.name, account.role)
    if claimed_role in ROLES:
        return Actor(email, claimed_role)
    return None


def needs_first_admin(vigil: Vigil) -> bool:
    """No account exists yet: the dashboard offers to create the administrator."""
    return users.count(vigil.engine) == 0


def create_first_admin(vigil: Vigil, name: str, password: str) -> Actor:
    """The first account, an administrator: only while no account exists."""
    with vigil.unit() as session:
        db.serialize(session, "first administrator")  # eight forms at once make one
        if users.count(session):
            raise NotAllowedError("an administrator exists already: sign in")
        users.add(session, name=name, role="admin", password=password)
        audit.record(session, actor=name, action="user.add", target=f"user {name}",
                     after={"role": "admin", "first": True})
    return Actor(name, "admin")


def add_user(vigil: Vigil, name: str, *, role: str, password: str | None,
             email: str | None = None) -> None:
    actor = vigil.require("admin")
    with vigil.unit() as session:
        users.add(session, name=name, role=role, password=password, email=email)
        audit.record(session, actor=actor.name, action="user.add", target=f"user {name}",
                     after={"role": role, "email": email})


def set_password(vigil: Vigil, name: str, password: str) -> None:
    actor = vigil.require("admin")
    with vigil.unit() as session:
        users.set_password(session, name=name, password=password)
        audit.record(session, actor=actor.name, action="user.password", target=f"user {name}")


def disable_user(vigil: Vigil, name: str, *, disabled: bool = True) -> None:
    """Disable an account (its sessions and tokens stop at once), or enable it again."""
    actor = vigil.require("admin")
    with vigil.unit() as session:
        users.set_disabled(session, name=name, disabled=disabled)
        audit.record(session, actor=actor.name,
                     action="user.disable" if disabled else "user.enable",
                     target=f"user {name}", before={"disabled": not disabled},
                     after={"disabled": disabled})


def list_users(vigil: Vigil) -> pd.DataFrame:
    vigil.require("admin")
    return users.listed(vigil.engine)


def audit_log(vigil: Vigil, *, limit: int = 500, actor: str | None = None,
              action: str | None = None) -> pd.DataFrame:
    vigil.require("admin")
    return audit.events(vigil.engine, limit=limit, actor=actor, action=action)
