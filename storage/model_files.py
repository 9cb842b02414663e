"""A folder of saved models: ``<version>.joblib`` plus ``<version>.json`` metadata."""

from __future__ import annotations

import json
from pathlib import Path

from detection import Model
from storage.errors import ModelNotFoundError


def save_model(model: Model, *, folder: Path) -> Path:
    """Write the model and its metadata; return the model file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.version}.joblib"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.to_bytes())
    tmp.replace(path)  # never a half-written model under its real name
    (folder / f"{model.version}.json").write_text(json.dumps(model.metadata, indent=2))
    return path


def list_models(*, folder: Path) -> list[dict]:
    """Metadata of every saved model, newest first."""
    if not folder.exists():
        return []
    found = [json.loads(p.read_text()) for p in folder.glob("*.json")
             if p.with_suffix(".joblib").exists()]
    return sorted(found, key=lambda m: m["created"], reverse=True)


def load_model(version: str, *, folder: Path) -> Model:
    path = folder / f"{version}.joblib"
    if "/" in version or not path.exists():
        known = ", ".join(m["version"] for m in list_models(folder=folder)[:5]) or "none saved"
        raise ModelNotFoundError(f"no model with version {version!r} (known: {known})")
    return Model.from_bytes(path.read_bytes())
