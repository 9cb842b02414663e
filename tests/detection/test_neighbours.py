"""Generic profile: rows between dense clusters, which the forest alone misses, are flagged
by their distance to the nearest baseline rows (detection.neighbours)."""

import numpy as np
import pandas as pd
import pytest

from detection import fit, fit_score, prepare, read_csv
from detection.detectors import IsolationForestDetector
from detection.model import Model
from detection.neighbours import SAMPLE_ROWS, Neighbours
from sample_data import sample_path
from tests.conftest import sensor_frame


def clusters(seed: int, rows: int = 2000, between: int = 15):
    """Rows around 20 tight centres in four columns, then rows far from every centre but
    inside every column's range: (frame, between-row mask)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).uniform(0, 10, (20, 4))
    normal = centres[rng.integers(0, 20, rows)] + rng.normal(0, 0.3, (rows, 4))
    odd = rng.uniform(0, 10, (400, 4))
    far = np.linalg.norm(odd[:, None] - centres[None], axis=2).min(axis=1) > 2.5
    odd = odd[far][:between]
    frame = pd.DataFrame(np.vstack([normal, odd]), columns=["a", "b", "c", "d"])
    return frame, np.r_[np.zeros(rows, bool), np.ones(len(odd), bool)]


def flags(frame: pd.DataFrame, **params) -> np.ndarray:
    return fit_score(prepare(frame, profile="generic"), **params)[1].frame["is_anomaly"] == 1


@pytest.mark.parametrize("seed", [0, 2])
def test_rows_between_clusters_are_flagged_where_the_forest_alone_misses_them(seed):
    frame, between = clusters(seed)
    flagged = flags(frame).to_numpy()
    assert (flagged & between).sum() == between.sum() == 15
    assert flagged.sum() <= 0.02 * len(frame)
    forest_alone = flags(frame, neighbours=0).to_numpy()
    assert (forest_alone & between).sum() <= 10


@pytest.mark.slow
def test_a_model_of_clusters_flags_new_rows_between_them_and_few_normal_ones():
    baseline, _ = clusters(0, between=0)
    model = Model.from_bytes(fit(prepare(baseline, profile="generic")).to_bytes())
    assert model.metadata["parameters"]["neighbours"] == 10
    assert "its 10 nearest baseline rows" in model.metadata["threshold_note"]
    new, between = clusters(1, rows=3000)
    flagged = model.score(prepare(new, profile="generic")).frame["is_anomaly"].to_numpy() == 1
    assert flagged[between].all()
    assert flagged[~between].mean() < 0.01


def test_each_score_is_in_units_of_its_own_cut_off():
    frame, _ = clusters(0, between=0)
    X = frame.to_numpy()
    detector = IsolationForestDetector(contamination=0.05, neighbours=10).fit(X)
    scores = detector.score_samples(X)
    # The larger of two scores, each 0 at its median and 1 at its own 5% cut-off.
    assert abs(np.median(scores)) < 0.5
    assert 0.05 <= np.mean(scores > 1) <= 0.10
    forest = IsolationForestDetector(contamination=0.05).fit(X)
    np.testing.assert_array_equal(forest.score_samples(X), detector._forest_scores(X))


def test_a_baseline_row_is_not_its_own_neighbour():
    X = np.array([[0.0], [1.0], [3.0], [10.0]])
    near = Neighbours(k=1).fit(X)
    # The nearest sample row is skipped for every row: 0 -> 1 and 3 -> 1 are measured.
    np.testing.assert_allclose(near.score(np.array([[0.0], [3.0]])), np.log1p([1.0, 2.0]))
    many = np.arange(5000.0)[:, None]
    assert Neighbours(k=10).fit(many).index_.n_samples_fit_ == SAMPLE_ROWS


def test_repeated_rows_are_not_flagged_and_the_one_different_row_is():
    frame = pd.DataFrame({"a": [1.0, 2.0] * 50 + [9.0], "b": [5.0, 6.0] * 50 + [0.0]})
    result = fit_score(prepare(frame, profile="generic"))[1].frame
    assert result["is_anomaly"].tolist() == [0] * 100 + [1]


@pytest.mark.parametrize("frame", [sensor_frame, lambda: read_csv(sample_path("logins.csv"))],
                         ids=["sensor", "login"])
def test_sensor_and_login_models_keep_the_forest_alone(frame):
    model = fit(prepare(frame()))
    assert "neighbours" not in model.metadata["parameters"]
    assert not model.detector.neighbours
