"""Who may use Vigil: accounts and sign-in, the HTTP API's tokens, the audit log."""

from __future__ import annotations

import pandas as pd

from app.errors import NotAllowedError, SignInError
from app.vigil import Actor, Vigil
from storage import audit, tokens, users
from storage.schema import ROLES


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
    """The signed-in user, or :class:`SignInError` (one message for every refusal)."""
    account = users.authenticate(vigil.engine, name=name, password=password)
    if account is None:
        raise SignInError(REFUSED)
    return Actor(account.name, account.role)


def sso_user(vigil: Vigil, email: str, claimed_role: str | None = None) -> Actor | None:
    """The user a single sign-on identity acts as: the account with that e-mail (its
    role), else the identity provider's role claim when it names a role, else None."""
    account = users.by_email(vigil.engine, email)
    if account is not None:
        return Actor(account.name, account.role)
    if claimed_role in ROLES:
        return Actor(email, claimed_role)
    return None


def needs_first_admin(vigil: Vigil) -> bool:
    """No account exists yet: the dashboard offers to create the administrator."""
    return users.count(vigil.engine) == 0


def create_first_admin(vigil: Vigil, name: str, password: str) -> Actor:
    """The first account, an administrator: only while no account exists."""
    with vigil.unit() as session:
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


def disable_user(vigil: Vigil, name: str) -> None:
    actor = vigil.require("admin")
    with vigil.unit() as session:
        users.set_disabled(session, name=name)
        audit.record(session, actor=actor.name, action="user.disable", target=f"user {name}",
                     before={"disabled": False}, after={"disabled": True})


def list_users(vigil: Vigil) -> pd.DataFrame:
    vigil.require("admin")
    return users.listed(vigil.engine)


def audit_log(vigil: Vigil, *, limit: int = 500, actor: str | None = None,
              action: str | None = None) -> pd.DataFrame:
    vigil.require("admin")
    return audit.events(vigil.engine, limit=limit, actor=actor, action=action)
