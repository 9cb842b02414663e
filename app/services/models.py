"""Registered models: train, list, load, activate, roll back."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Engine

from app.vigil import Vigil
from detection import Dataset, Model, fit, prepare
from detection.envelope import STALE_SHARE
from storage import audit, registry, run_inputs

RUNS_NAMED = 8  # runs a model's source name lists before it only counts the rest
RUN_PROFILES = run_inputs.PROFILES  # the profiles whose saved runs keep their rows


def check_model_name(name: str) -> str:
    """``name`` if it may name a model, else :class:`StorageError` saying the rule: told
    before a baseline is read or fitted, not after minutes of it."""
    return registry.check_name(name)


def train(vigil: Vigil, dataset: Dataset, *, detector: str = "isolation_forest",
          source_name: str | None = None, activate: bool = False, name: str | None = None,
          sample: dict | None = None, **params) -> dict:
    """Fit a model on a baseline of normal history and register it (``name``: what it is
    for; ``--model NAME`` then takes its newest version; ``sample``: the baseline is a
    sample of a dataset, drawn as this says, kept in the model's metadata)."""
    actor = vigil.require("admin")
    if name is not None:
        check_model_name(name)
    model = fit(dataset, detector=detector, **params)
    if sample is not None:
        model.metadata["sample"] = sample
    with vigil.unit() as session:
        meta = registry.save_model(session, model=model, source_name=source_name,
                                   activate=activate, name=name)
        audit.record(session, actor=actor.name, action="model.train",
                     target=f"model {meta['version']}",
                     after={"name": name, "profile": meta["profile"],
                            "detector": meta["detector"],
                            "training_rows": meta["training_rows"],
                            "source_name": source_name, "active": activate})
    return meta


def train_from_runs(vigil: Vigil, *, runs: list[int] | None = None,
                    since: datetime | None = None, profile: str | None = None,
                    detector: str = "isolation_forest", activate: bool = False,
                    name: str | None = None, **params) -> dict:
    """Fit a model on the rows stored sensor or generic runs kept (``runs``, or every run
    of ``profile`` created since ``since``), leaving out the rows reviewed as confirmed,
    and register it: the model's metadata adds ``runs`` and ``left_out``."""
    vigil.require("admin")
    found = run_inputs.training_rows(vigil.engine, run_ids=runs, since=since, profile=profile)
    dataset = prepare(found.frame, profile=found.profile, columns=found.mapping)
    named = ", ".join(str(i) for i in found.run_ids[:RUNS_NAMED])
    more = len(found.run_ids) - RUNS_NAMED
    source = f"run{'s' if len(found.run_ids) > 1 else ''} {named}" + (
        f" and {more} more" if more > 0 else "")
    meta = train(vigil, dataset, detector=detector, source_name=source, activate=activate,
                 name=name, **params)
    return meta | {"runs": found.run_ids, "left_out": found.left_out}


def runs_to_train_from(vigil: Vigil) -> list[dict]:
    """The newest runs that kept their rows (id, created_at, source_name, profile,
    row_count)."""
    vigil.require("viewer")
    return run_inputs.runs_with_rows(vigil.engine)


def list_models(vigil: Vigil, *, profile: str | None = None) -> list[dict]:
    """Registered models, newest first, each with its age in days and its last drift
    figure (``stale`` when that run found it stale: see detection.envelope)."""
    vigil.require("viewer")
    now = datetime.now(UTC)
    models = registry.list_models(vigil.engine, profile=profile)
    for model in models:
        created = model["created_at"]
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        model["age_days"] = (now - created).days
        model["stale"] = model["last_drift"] is not None and model["last_drift"] > STALE_SHARE
    return models


def load_model(vigil: Vigil, version: str) -> Model:
    vigil.require("viewer")
    return _loaded(vigil.engine, version)


@lru_cache(maxsize=16)
def _loaded(engine: Engine, version: str) -> Model:
    """A registered version never changes: each process loads it once (the API scores
    hundreds of small bodies a second with it)."""
    return registry.load_model(engine, version=version)


def activate_model(vigil: Vigil, version: str) -> dict:
    """Make a registered model its profile's active one (``version``: a version, or a
    model name: its newest version)."""
    actor = vigil.require("admin")
    with vigil.unit() as session:
        version = registry.version_for(session, version)
        profile = registry.describe_model(session, version=version)["profile"]
        before = registry.active_version(session, profile=profile)
        meta = registry.activate_model(session, version=version)
        audit.record(session, actor=actor.name, action="model.activate",
                     target=f"model {version}", before={"active": before},
                     after={"active": version})
    return meta


def rollback_model(vigil: Vigil, profile: str) -> dict:
    actor = vigil.require("admin")
    with vigil.unit() as session:
        before = registry.active_version(session, profile=profile)
        meta = registry.rollback_model(session, profile=profile)
        audit.record(session, actor=actor.name, action="model.rollback",
                     target=f"{profile} models", before={"active": before},
                     after={"active": meta["version"]})
    return meta

