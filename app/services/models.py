"""Registered models: train, list, load, activate, roll back."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from app.vigil import Vigil
from detection import Dataset, Model, fit
from storage import registry


def train(vigil: Vigil, dataset: Dataset, *, detector: str = "isolation_forest",
          source_name: str | None = None, activate: bool = False, **params) -> dict:
    """Fit a model on a baseline of normal history and register it."""
    model = fit(dataset, detector=detector, **params)
    return registry.save_model(vigil.engine, model=model, source_name=source_name,
                               activate=activate)


def list_models(vigil: Vigil, *, profile: str | None = None) -> list[dict]:
    return registry.list_models(vigil.engine, profile=profile)


def load_model(vigil: Vigil, version: str) -> Model:
    return _loaded(vigil.engine, version)


@lru_cache(maxsize=16)
def _loaded(engine: Engine, version: str) -> Model:
    """A registered version never changes: each process loads it once (the API scores
    hundreds of small bodies a second with it)."""
    return registry.load_model(engine, version=version)


def activate_model(vigil: Vigil, version: str) -> dict:
    return registry.activate_model(vigil.engine, version=version)


def rollback_model(vigil: Vigil, profile: str) -> dict:
    return registry.rollback_model(vigil.engine, profile=profile)
