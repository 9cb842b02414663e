"""The database's schema and health."""

from __future__ import annotations

from app.services.models import list_models
from app.vigil import Vigil
from detection import PROFILES
from storage import db


def upgrade_database(vigil: Vigil) -> None:
    """Migrate the database to the newest schema (`vigil db upgrade`)."""
    vigil.require("admin")
    db.upgrade(vigil.engine)


def health(vigil: Vigil) -> dict[str, str | None]:
    """Each profile's active model version (None: no active model); raises
    :class:`StorageError` when the database cannot answer."""
    active = {m["profile"]: m["version"] for m in list_models(vigil)
              if m["is_active"]}
    return {profile: active.get(profile) for profile in PROFILES}
