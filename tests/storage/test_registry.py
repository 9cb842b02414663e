"""The model registry in the database: save, list, load, activate, roll back."""

import copy
from datetime import datetime, timedelta

import numpy as np
import pytest

from detection import fit, prepare
from storage.errors import ModelNotFoundError, StorageError
from storage.registry import (
    activate_model,
    active_version,
    list_models,
    load_model,
    rollback_model,
    save_model,
)
from tests.conftest import sensor_frame


@pytest.fixture(scope="module")
def models():
    dataset = prepare(sensor_frame(300))
    return [fit(dataset, contamination=c) for c in (0.01, 0.02, 0.05)]


def test_saved_model_loads_and_scores_identically(engine, models):
    meta = save_model(engine, model=models[0], source_name="normal.csv")
    assert meta["training_rows"] == 300 and meta["source_name"] == "normal.csv"
    assert meta["features"] == models[0].metadata["features"]
    loaded = load_model(engine, version=meta["version"])
    dataset = prepare(sensor_frame(200, seed=3))
    np.testing.assert_array_equal(loaded.score(dataset).frame["anomaly_score"],
                                  models[0].score(dataset).frame["anomaly_score"])


def test_list_activate_and_roll_back(engine, models):
    for model in models:
        save_model(engine, model=model)
    assert len(list_models(engine, profile="sensor")) == 3
    assert list_models(engine, profile="login") == []
    assert active_version(engine, profile="sensor") is None
    first, second = models[0].version, models[1].version
    activate_model(engine, version=first)
    activate_model(engine, version=second)
    assert active_version(engine, profile="sensor") == second
    assert sum(m["is_active"] for m in list_models(engine)) == 1
    assert rollback_model(engine, profile="sensor")["version"] == first
    assert active_version(engine, profile="sensor") == first


def test_unknown_versions_and_empty_rollback(engine, models):
    save_model(engine, model=models[0])
    with pytest.raises(ModelNotFoundError, match="no model with version 'nope'"):
        load_model(engine, version="nope")
    with pytest.raises(ModelNotFoundError):
        activate_model(engine, version="nope")
    with pytest.raises(StorageError, match="no earlier sensor model"):
        rollback_model(engine, profile="sensor")


def test_a_name_takes_its_newest_version_and_a_version_itself(engine, models):
    from storage.registry import version_for

    first = save_model(engine, model=models[0], name="pumps")["version"]
    later = copy.deepcopy(models[1])  # fitted a minute later
    later.metadata["created"] = (datetime.fromisoformat(models[0].metadata["created"])
                                 + timedelta(minutes=1)).isoformat()
    second = save_model(engine, model=later, name="pumps")["version"]
    assert version_for(engine, "pumps") == second
    assert version_for(engine, first) == first
    assert activate_model(engine, version="pumps")["version"] == second
    with pytest.raises(ModelNotFoundError, match="no model with version or name 'lifts'"):
        version_for(engine, "lifts")
    for bad in ("active", "fit", "20261205-pumps", "x" * 65, "pumps!", ""):
        with pytest.raises(StorageError, match="a model name is 1 to 64"):
            save_model(engine, model=models[0], name=bad)


def test_models_list_the_drift_of_the_last_run_they_scored(engine, models):
    from dataclasses import replace

    from storage.runs import save_run
    from tests.storage.conftest import make_run

    save_model(engine, model=models[0])
    save_model(engine, model=models[1])
    version = models[0].version
    first = replace(make_run(file_sha256="a" * 64), model_version=version, drift_share=0.4,
                    drift_feature="vibration (level)")
    last = replace(make_run(file_sha256="b" * 64), model_version=version, drift_share=0.02,
                   drift_feature="vibration (variability)")
    small = replace(make_run(file_sha256="c" * 64), model_version=version)  # no figure
    for run in (first, last, small):
        save_run(engine, run=run)
    listed = {m["version"]: m for m in list_models(engine)}
    assert listed[version]["last_drift"] == pytest.approx(0.02)
    assert listed[version]["last_drift_feature"] == "vibration (variability)"
    assert listed[models[1].version]["last_drift"] is None
