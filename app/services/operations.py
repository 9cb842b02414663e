"""The database's schema and health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services.models import list_models
from app.vigil import Vigil
from detection import PROFILES
from storage import audit, db, retention


def upgrade_database(vigil: Vigil) -> None:
    """Migrate the database to the newest schema (`vigil db upgrade`)."""
    vigil.require("admin")
    db.upgrade(vigil.engine)


def prune(vigil: Vigil, *, older_than_days: float, include_reviewed: bool = False
          ) -> retention.Pruned:
    """Delete the runs stored more than ``older_than_days`` ago (`vigil db prune`), with
    their anomalies, incidents, kept rows and alert log; runs with a review are kept
    unless ``include_reviewed``, and those live streams write to always. Audited."""
    actor = vigil.require("admin")
    before = datetime.now(UTC) - timedelta(days=older_than_days)
    done = retention.prune(vigil.engine, before=before, include_reviewed=include_reviewed)
    with vigil.unit() as session:
        audit.record(session, actor=actor.name, action="db.prune",
                     target=f"runs stored before {before:%Y-%m-%d %H:%M} UTC",
                     after={"runs": done.runs, "anomalies": done.anomalies,
                            "incidents": done.incidents,
                            "kept_reviewed": len(done.kept_reviewed),
                            "kept_live": len(done.kept_live)})
    return done


def health(vigil: Vigil) -> dict[str, str | None]:
    """Each profile's active model version (None: no active model); raises
    :class:`StorageError` when the database cannot answer."""
    active = {m["profile"]: m["version"] for m in list_models(vigil)
              if m["is_active"]}
    return {profile: active.get(profile) for profile in PROFILES}
