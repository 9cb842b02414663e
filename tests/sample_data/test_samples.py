import pandas as pd
import pytest

from detection import fit_score, prepare, read_csv
from sample_data import SAMPLE_DIR, SAMPLES, labels_path, sample_path
from sample_data.generate import generate


def test_generator_is_deterministic_and_matches_the_bundled_files(tmp_path):
    generate(tmp_path)
    for name in SAMPLES:
        assert (tmp_path / name).read_bytes() == sample_path(name).read_bytes(), name
        assert (tmp_path / labels_path(name).name).read_bytes() == labels_path(name).read_bytes()


def test_samples_are_small():
    assert sum(p.stat().st_size for p in SAMPLE_DIR.glob("*.csv")) < 5 * 1024 * 1024


@pytest.mark.parametrize(("name", "profile"), [("elevators.csv", "sensor"),
                                               ("temperature.csv", "sensor"),
                                               ("logins.csv", "login")])
def test_labels_are_apart_and_point_at_rows(name, profile):
    frame = read_csv(sample_path(name))
    labels = pd.read_csv(labels_path(name))
    assert not {"label", "pattern", "incident"} & set(frame.columns)
    assert labels["row"].between(1, len(frame)).all()
    assert prepare(frame).profile == profile


def incidents(name: str) -> tuple[pd.Series, float]:
    """Per injected incident, whether any of its rows was flagged; and flag precision."""
    result = fit_score(prepare(read_csv(sample_path(name))))[1].frame
    labels = pd.read_csv(labels_path(name))
    flagged = set(result.index[result["is_anomaly"] == 1])
    caught = labels.groupby("incident")["row"].apply(lambda rows: bool(set(rows) & flagged))
    return caught, len(flagged & set(labels["row"])) / len(flagged)


def test_every_login_attack_is_caught_with_precision():
    caught, precision = incidents("logins.csv")
    assert caught.all(), list(caught[~caught].index)
    assert precision >= 0.7


def test_every_elevator_incident_is_caught():
    """A spike, a drift and a stuck sensor: the three things maintenance staff ask for."""
    caught, _ = incidents("elevators.csv")
    assert caught.all(), list(caught[~caught].index)
