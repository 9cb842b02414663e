"""The model registry: save, list, load, activate, roll back (table ``model_versions``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import defer

from detection import Model
from storage.db import transaction
from storage.errors import ModelNotFoundError, StorageError
from storage.schema import DetectionRun, ModelVersion
from storage.text import NAME_CHARS, clean, clean_json

# What `vigil models` and the models page show; the serialised model stays in the table.
MODEL_FIELDS = ("version", "name", "created_at", "profile", "detector", "parameters", "features",
                "training_rows", "training_hash", "libraries", "threshold", "source_name",
                "is_active", "activated_at")


def _as_dict(row: ModelVersion) -> dict:
    return {name: getattr(row, name) for name in MODEL_FIELDS}


# A model's name: what it is for (pumps, lifts-east). It starts with a letter, so it can
# never be taken for a version (those start with the date), nor be one of the words
# --model already means.
MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
RESERVED_NAMES = ("active", "fit")


def check_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name) or name.lower() in RESERVED_NAMES:
        raise StorageError(
            "a model name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            f"letter, and not {' or '.join(RESERVED_NAMES)}; got {name!r}")
    return name


def save_model(engine: Engine, *, model: Model, source_name: str | None = None,
               activate: bool = False, name: str | None = None) -> dict:
    """Register a fitted model (``name``: what it is for); optionally make it the active
    one for its profile."""
    meta = model.metadata
    row = ModelVersion(
        version=meta["version"], name=check_name(name) if name is not None else None,
        created_at=datetime.fromisoformat(meta["created"]),
        profile=meta["profile"], detector=meta["detector"],
        parameters=clean_json(meta["parameters"]), features=clean_json(meta["features"]),
        training_rows=meta["training_rows"],
        training_hash=meta["training_hash"], libraries=meta["libraries"],
        threshold=meta["threshold"], source_name=clean(source_name, NAME_CHARS),
        model=model.to_bytes(),
        is_active=False,
    )
    with transaction(engine) as session:
        session.add(row)
    if activate:
        activate_model(engine, version=row.version)
    return describe_model(engine, version=row.version)


def list_models(engine: Engine, *, profile: str | None = None) -> list[dict]:
    """Metadata of every registered model, newest first, with the drift of the last
    stored run it scored (``last_drift``, ``last_drift_feature``, ``last_drift_at``;
    None when it scored none)."""
    query = (select(ModelVersion).options(defer(ModelVersion.model))
             .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc()))
    if profile:
        query = query.where(ModelVersion.profile == profile)
    latest = (select(func.max(DetectionRun.id))
              .where(DetectionRun.drift_share.is_not(None))
              .group_by(DetectionRun.model_version))
    drift_query = (select(DetectionRun.model_version, DetectionRun.drift_share,
                          DetectionRun.drift_feature, DetectionRun.created_at)
                   .where(DetectionRun.id.in_(latest)))
    with transaction(engine) as session:
        drifts = {version: (share, feature, at)
                  for version, share, feature, at in session.execute(drift_query)}
        models = [_as_dict(row) for row in session.scalars(query)]
    for model in models:
        share, feature, at = drifts.get(model["version"], (None, None, None))
        model |= {"last_drift": share, "last_drift_feature": feature, "last_drift_at": at}
    return models


def _known(engine: Engine) -> str:
    return ", ".join(f"{m['name']} ({m['version']})" if m["name"] else m["version"]
                     for m in list_models(engine)[:5]) or "none registered"


def _metadata_row(session, engine: Engine, version: str) -> ModelVersion:
    row = session.get(ModelVersion, version, options=[defer(ModelVersion.model)])
    if row is None:
        raise ModelNotFoundError(f"no model with version {version!r} (known: {_known(engine)})")
    return row


def describe_model(engine: Engine, *, version: str) -> dict:
    with transaction(engine) as session:
        return _as_dict(_metadata_row(session, engine, version))


def version_for(engine: Engine, key: str) -> str:
    """The version ``key`` names: a version, or a model name (its newest version)."""
    with transaction(engine) as session:
        if session.get(ModelVersion, key, options=[defer(ModelVersion.model)]) is not None:
            return key
        named = session.scalar(
            select(ModelVersion.version).where(ModelVersion.name == key)
            .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc()).limit(1))
    if named is None:
        raise ModelNotFoundError(f"no model with version or name {key!r} "
                                 f"(known: {_known(engine)})")
    return named


def load_model(engine: Engine, *, version: str) -> Model:
    with transaction(engine) as session:
        data = session.scalar(select(ModelVersion.model).where(ModelVersion.version == version))
    if data is None:
        raise ModelNotFoundError(f"no model with version {version!r} (known: {_known(engine)})")
    return Model.from_bytes(data)


def active_version(engine: Engine, *, profile: str) -> str | None:
    with transaction(engine) as session:
        return session.scalar(select(ModelVersion.version).where(
            ModelVersion.profile == profile, ModelVersion.is_active.is_(True)))


def activate_model(engine: Engine, *, version: str) -> dict:
    """Make ``version`` (or a name's newest version) the active model of its profile
    (one active per profile)."""
    version = version_for(engine, version)
    with transaction(engine) as session:
        row = _metadata_row(session, engine, version)
        session.execute(update(ModelVersion).where(ModelVersion.profile == row.profile)
                        .values(is_active=False))
        session.execute(update(ModelVersion).where(ModelVersion.version == version)
                        .values(is_active=True, activated_at=datetime.now(UTC)))
    return describe_model(engine, version=version)


def rollback_model(engine: Engine, *, profile: str) -> dict:
    """Re-activate the model that was active before the current one of ``profile``."""
    current = active_version(engine, profile=profile)
    with transaction(engine) as session:
        previous = session.scalar(
            select(ModelVersion.version)
            .where(ModelVersion.profile == profile, ModelVersion.activated_at.is_not(None),
                   ModelVersion.version != (current or ""))
            .order_by(ModelVersion.activated_at.desc()).limit(1))
    if previous is None:
        raise StorageError(f"no earlier {profile} model to roll back to: activate a version "
                           "first")
    return activate_model(engine, version=previous)
