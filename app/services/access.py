"""The HTTP API's bearer tokens."""

from __future__ import annotations

import pandas as pd

from app.vigil import Vigil
from storage import tokens


def add_token(vigil: Vigil, name: str, *, role: str) -> str:
    """A new API token (shown once: only its hash is stored)."""
    return tokens.add(vigil.engine, name=name, role=role)


def token_holder(vigil: Vigil, token: str) -> tokens.Holder | None:
    return tokens.holder(vigil.engine, token)


def revoke_token(vigil: Vigil, name: str) -> bool:
    return tokens.revoke(vigil.engine, name=name)


def list_tokens(vigil: Vigil) -> pd.DataFrame:
    return tokens.listed(vigil.engine)
