import os
import sys

import numpy as np
import pandas as pd
import pytest

from detection import fit_score, prepare
from detection.calibration import Calibration, severity
from detection.detectors import (
    DETECTORS,
    IsolationForestDetector,
    ZScoreDetector,
    make_detector,
    tail_cut,
)
from detection.envelope import FLAG_SHARE, REACH_FLAG, Envelope
from detection.errors import ParameterError


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 3))
    outliers = np.array([[8.0, 8.0, 0], [-6.0, -9.0, 6.0], [7.0, 7.0, 7.0]])
    return X, outliers


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_contract_higher_is_more_anomalous(name, data):
    X, outliers = data
    # Fitted on the rows it scores (the default when no model is chosen).
    detector = make_detector(name).fit(np.concatenate([X, outliers]))
    normal, odd = detector.score_samples(X), detector.score_samples(outliers)
    assert odd.min() > np.quantile(normal, 0.95)
    assert odd.max() > normal.max()
    assert np.isfinite(detector.threshold(normal))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_deterministic(name, data):
    X, _ = data
    a = make_detector(name).fit(X).score_samples(X)
    b = make_detector(name).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)


def test_zscore_uses_given_mean_std_and_multiplier():
    detector = ZScoreDetector(mean=20.0, std=2.0, multiplier=3.0).fit(np.zeros((5, 1)))
    scores = detector.score_samples(np.array([[20.0], [25.0], [27.0], [13.0]]))
    np.testing.assert_allclose(scores, [0.0, 2.5, 3.5, 3.5])
    assert detector.threshold(scores) == 3.0


def test_robust_zscore_ignores_baseline_outliers():
    X = np.concatenate([np.random.default_rng(0).normal(10, 1, (500, 1)), [[1000.0]] * 20])
    classic = ZScoreDetector().fit(X).score_samples([[15.0]])[0]
    robust = ZScoreDetector(robust=True).fit(X).score_samples([[15.0]])[0]
    assert classic < 1 < 4 < robust


def test_forest_threaded_scoring_equals_serial(data):
    X, _ = data
    X = np.tile(X, (40, 1))  # several chunks
    threaded = IsolationForestDetector(n_jobs=2).fit(X)
    serial = IsolationForestDetector(n_jobs=1).fit(X)
    np.testing.assert_allclose(threaded.score_samples(X), serial.score_samples(X))


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("isolation_forest", {"contamination": 0.7},
         "contamination must be more than 0 and at most 0.5"),
        ("zscore", {"multiplier": 0}, "multiplier must be positive"),
        ("zscore", {"std": -1.0}, "std must be positive"),
    ],
)
def test_bad_parameters_are_named(name, params, message):
    with pytest.raises(ParameterError, match=message):
        make_detector(name, **params).fit(np.ones((30, 2)) + np.arange(30)[:, None])


def test_unknown_detector():
    with pytest.raises(ParameterError, match="detector must be one of"):
        make_detector("magic")


def test_calibration_is_monotonic_and_anchored():
    train = np.random.default_rng(0).gamma(2.0, size=5000)
    threshold = float(np.quantile(train, 0.99))
    cal = Calibration.fit(train, threshold)
    raw = np.linspace(train.min() - 5, train.max() + 5, 2000)
    scores = cal.transform(raw)
    assert (np.diff(scores) > 0).all()
    assert scores.min() >= 0 and scores.max() <= 100
    assert cal.transform([threshold])[0] == pytest.approx(50)
    assert cal.transform([np.median(train)])[0] == pytest.approx(10)
    # The top 5% of the flagged baseline rows are "critical" (95 and up), not most of them.
    critical = (cal.transform(train) >= 95).sum() / (train > threshold).sum()
    assert critical == pytest.approx(0.05, abs=0.01)


def test_calibration_with_no_baseline_row_over_the_cut_off_stays_monotonic():
    train = np.linspace(0, 1, 1000)
    cal = Calibration.fit(train, threshold=1.0)  # the cut-off at the baseline's top
    scores = cal.transform(np.linspace(0, 3, 300))
    assert (np.diff(scores) > 0).all() and cal.transform([1.0])[0] == pytest.approx(50)


def test_calibration_of_a_normal_baseline_keeps_critical_for_rows_far_beyond_it():
    """A normal baseline's top row is ordinary variation: it must not anchor "critical"."""
    train = np.random.default_rng(0).gamma(2.0, size=5000)
    threshold = float(train.max())  # a normal baseline's cut-off sits at its top
    cal = Calibration.fit(train, threshold, normal=True)
    assert cal.transform([threshold])[0] == pytest.approx(50)
    assert cal.transform([np.median(train)])[0] == pytest.approx(10)
    assert cal.transform([2 * threshold - np.median(train)])[0] == pytest.approx(97)
    assert (np.diff(cal.transform(np.linspace(0, 40, 500))) > 0).all()


def test_the_tail_cut_puts_the_asked_share_above_it():
    """Exponential scores: the fitted tail's cut leaves the asked share above it, in data
    it never saw, where a plain quantile of the baseline only knows its own rows."""
    rng = np.random.default_rng(3)
    baseline, later = rng.exponential(size=20_000), rng.exponential(size=200_000)
    for share in (0.01, 0.0075, 0.005):
        assert (later > tail_cut(baseline, share)).mean() == pytest.approx(share, rel=0.3)


def test_a_normal_baseline_raises_the_cut_off_never_lowers_it(data):
    X, _ = data
    detector = IsolationForestDetector(contamination=0.015).fit(X)
    scores = detector.score_samples(X)
    quantile = detector.threshold(scores)
    assert quantile == pytest.approx(np.quantile(scores, 0.985))
    assert detector.threshold(scores, normal=True) > quantile
    # A baseline whose top 1.5% stand apart (anomalies in it) keeps the quantile.
    spiky = np.concatenate([scores, np.full(len(scores) // 50, scores.max() + 1.0)])
    assert detector.threshold(spiky, normal=True) == pytest.approx(np.quantile(spiky, 0.985))


def test_the_envelope_reaches_rows_far_out_on_one_feature_of_many():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5000, 20))
    X[:, 19] = rng.random(5000) < 0.003  # a rare indicator: 1 in 0.3% of rows
    envelope = Envelope().fit(X)
    rows = np.zeros((4, 20))
    rows[1, 7] = 12.0    # far out on one feature: 4-5 times the baseline's 0.5% edge
    rows[2, 3] = -2.0    # within the baseline
    rows[3, 19] = 1.0    # the indicator set: rare, but the envelope leaves it alone
    reach = envelope.reach(rows)
    assert reach[1] > 4 and reach[0] < 0.1 and reach[2] < 1 and reach[3] == reach[0]
    missing = rows[1:2].copy()
    missing[0, 0] = np.nan  # a feature without a value takes nothing from the others
    assert envelope.reach(missing)[0] == pytest.approx(reach[1])
    assert envelope.reach(rows.astype(np.float32)) == pytest.approx(reach, rel=1e-5)
    scores = envelope.score(rows)
    assert scores[1] > 90 and scores[0] < 10 and scores[2] < 50
    twice = np.zeros((3, 20))  # at, just beyond and just within twice the edge's distance
    twice[:, 7] = envelope.center_[7] + np.array([2.0, 2.05, 1.95]) / envelope.up_[7]
    at, beyond, within = envelope.score(twice)
    assert at == pytest.approx(50) and beyond > 50
    # Below the flag score the envelope says nothing: the forest ranks ordinary rows.
    assert within == 0 and scores[2] == 0


def test_a_normal_baselines_flag_reach_rises_to_what_its_own_rows_seldom_reach():
    rng = np.random.default_rng(6)
    X = rng.standard_t(2, size=(5000, 40))  # heavy tails, many features
    X = np.column_stack([X, np.zeros(5000)])  # and a decisive feature never up
    decisive = [False] * 40 + [True]
    normal = Envelope().fit(X, decisive)
    own = Envelope().fit(X, decisive, normal=False)  # a file scored on its own
    assert own.flag == REACH_FLAG < normal.flag
    assert np.mean(own.score(X) >= 50) > 0.02
    assert np.mean(normal.score(X) >= 50) <= FLAG_SHARE
    # Light tails: no baseline row reaches 2, which stays the flag reach.
    assert Envelope().fit(rng.normal(size=(5000, 5))).flag == REACH_FLAG
    # A decisive value above the baseline's largest still scores 90, as far past the
    # raised flag reach as 3 lies past 2.
    up = np.zeros((1, 41))
    up[0, 40] = 1.0
    assert normal.score(up)[0] == pytest.approx(90)


def test_below_the_flag_score_a_rows_score_is_the_forests():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(2000, 12)), columns=[f"x{i}" for i in range(12)])
    frame.loc[:4, "x3"] = 40.0  # far out on one feature: the envelope flags these
    dataset = prepare(frame, profile="generic")
    model, result = fit_score(dataset)
    X, _ = model._detector_input(dataset, model.featurizer.transform(dataset))
    forest = model.calibration.transform(model.detector.score_samples(X))
    scores = result.frame["anomaly_score"].to_numpy()
    calm = ~result.frame["is_anomaly"].astype(bool).to_numpy()
    np.testing.assert_allclose(scores[calm], np.round(forest[calm], 2))
    assert result.frame["is_anomaly"].iloc[:5].all()


def test_severity_bands():
    scores = np.array([10, 50, 50.1, 69.9, 70, 85, 95, 100])
    assert list(severity(scores)) == ["none", "none", "low", "low", "medium", "high", "critical",
                                      "critical"]


def test_forest_score_is_sklearns_with_the_sign_flipped(data):
    from sklearn.ensemble import IsolationForest

    X, outliers = data
    detector = IsolationForestDetector().fit(X)
    forest = IsolationForest(max_samples=256, contamination="auto", random_state=0).fit(X)
    both = np.concatenate([X, outliers]).astype("float32")
    np.testing.assert_array_equal(detector.score_samples(both), -forest.score_samples(both))


@pytest.mark.parametrize("walk", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(6))
def test_compiled_forest_scores_equal_sklearn_bit_for_bit(seed, walk, monkeypatch):
    """Random forests, shapes and data, NaNs (fitted on and scored), subsampled features:
    the compiled walk, and numpy's for a few rows, give scikit-learn's score_samples
    exactly."""
    from sklearn.ensemble import IsolationForest

    from detection import forest as layout
    from detection.forest import FlatForest

    monkeypatch.setattr(layout, "SMALL_ROWS", 0 if walk == "compiled" else 10**9)
    if walk == "numpy":
        monkeypatch.delitem(sys.modules, layout.KERNEL, raising=False)

    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(50, 3000)), int(rng.integers(1, 25))
    X = rng.normal(size=(rows, columns)) * rng.uniform(0.1, 1e4, size=columns)
    X[rng.random(X.shape) < 0.05 * (seed % 2)] = np.nan  # odd seeds: missing values
    X = X.astype("float32")
    forest = IsolationForest(n_estimators=int(rng.integers(1, 150)),
                             max_samples=int(rng.integers(2, 512)) if seed != 3 else "auto",
                             max_features=[1.0, 0.5, 1][seed % 3], bootstrap=seed == 4,
                             random_state=seed).fit(X)
    fresh = rng.normal(size=(777, columns)).astype("float32") * 3
    fresh[rng.random(fresh.shape) < 0.1] = np.nan
    detector = IsolationForestDetector()
    detector._keep(forest)
    # A feature frame's matrix is F-order; slices of it are neither C nor F: each layout
    # is walked as it is, not copied.
    for data in (X, fresh, np.asfortranarray(fresh), np.asfortranarray(fresh)[5:400],
                 fresh[::3]):
        np.testing.assert_array_equal(detector.score_samples(data), -forest.score_samples(data))
    assert FlatForest.of(forest).feature.shape[0] == len(forest.estimators_)


@pytest.mark.parametrize("distinct", [1, 2, 5])
def test_trees_that_are_one_leaf_or_few_score_as_sklearn(distinct):
    """A baseline of one repeated row fits trees that are a single leaf; of a few distinct
    rows, shallow trees beside deeper ones: laid out and walked as scikit-learn walks
    them."""
    from sklearn.ensemble import IsolationForest

    X = np.tile(np.arange(distinct, dtype="float32")[:, None] * [1.0, 3.0], (40, 1))
    forest = IsolationForest(n_estimators=30, random_state=0).fit(X)
    assert (min(t.tree_.node_count for t in forest.estimators_) == 1) == (distinct == 1)
    detector = IsolationForestDetector()
    detector._keep(forest)
    probe = np.array([[0, 0], [1, 3], [9, -2], [np.nan, 1]], dtype="float32")
    np.testing.assert_array_equal(detector.score_samples(probe), -forest.score_samples(probe))


def test_float32_thresholds_keep_every_comparison():
    from detection.forest import _float32_below

    rng = np.random.default_rng(0)
    thresholds = np.concatenate([rng.normal(size=10_000) * 10.0 ** rng.integers(-30, 30, 10_000),
                                 [np.inf, 1e39, -1e39, 0.0, 3.4028234663852886e38]])
    below = _float32_below(thresholds)
    with np.errstate(over="ignore"):
        values = np.concatenate([below, np.nextafter(below, np.float32(np.inf)),
                                 np.nextafter(below, np.float32(-np.inf))]).astype(np.float32)
    against = np.tile(thresholds, 3)
    np.testing.assert_array_equal(values <= np.tile(below, 3), values.astype(np.float64) <= against)


def test_forest_fits_large_baselines_on_a_sample(monkeypatch, data):
    from sklearn.ensemble import IsolationForest

    import detection.detectors as detectors

    X, outliers = data
    monkeypatch.setattr(detectors, "FIT_SAMPLE", 500)
    fitted_on = []
    fit = IsolationForest.fit
    monkeypatch.setattr(IsolationForest, "fit",
                        lambda self, X, *a, **k: fitted_on.append(X.shape) or fit(self, X, *a, **k))
    sampled = IsolationForestDetector().fit(X)
    assert fitted_on == [(500, 3)]
    # The same seed draws the same sample: scores repeat, and outliers still stand out.
    again = IsolationForestDetector().fit(X)
    np.testing.assert_array_equal(sampled.score_samples(X), again.score_samples(X))
    assert sampled.score_samples(outliers).min() > np.quantile(sampled.score_samples(X), 0.95)


def test_threads_follow_the_cores_the_process_may_use():
    import subprocess
    import sys

    from detection.threads import THREADS

    assert len(os.sched_getaffinity(0)) == THREADS
    pinned = subprocess.run(
        [sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
         "from detection.threads import THREADS; print(THREADS)"],
        capture_output=True, text=True, check=True)
    assert pinned.stdout.strip() == "1"


def test_a_saved_forest_loads_and_scores_without_scikit_learn(tmp_path):
    """The forest is kept laid out for the compiled walk: `vigil score` with a saved model
    never imports scikit-learn (over a second), and scores as the fitted forest did."""
    import pickle
    import subprocess
    import sys

    X = np.random.default_rng(0).normal(size=(500, 4)).astype("float32")
    detector = IsolationForestDetector().fit(X)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "scores.npy", detector.score_samples(X))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(detector))
    check = ("import pickle, sys, numpy as np; d = pickle.load(open('model.pkl', 'rb'));"
             "assert (d.score_samples(np.load('x.npy')) == np.load('scores.npy')).all();"
             "print(sorted(m for m in sys.modules if m.startswith('sklearn')))")
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    # Fitted again, it scores with its new trees, not the layout of the old ones.
    other = X * 3 + 1
    np.testing.assert_array_equal(detector.fit(other).score_samples(X),
                                  IsolationForestDetector().fit(other).score_samples(X))


def test_a_model_saved_with_the_scikit_learn_forest_still_loads_and_scores_the_same():
    """Models saved before December 2026 pickled the scikit-learn forest itself."""
    import pickle

    from sklearn.ensemble import IsolationForest

    X = np.random.default_rng(0).normal(size=(500, 4)).astype("float32")
    detector = IsolationForestDetector().fit(X)
    old = IsolationForestDetector()
    state = {k: v for k, v in old.__dict__.items()}
    state["forest_"] = IsolationForest(max_samples=256, contamination="auto",
                                       random_state=0).fit(X)
    old.__dict__ = state
    old.__class__.__getstate__ = lambda self: self.__dict__
    try:
        data = pickle.dumps(old)
    finally:
        del old.__class__.__getstate__
    loaded = pickle.loads(data)
    assert "forest_" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.score_samples(X), detector.score_samples(X))


def test_contamination_half_is_scikit_learns_upper_bound_and_accepted():
    X = np.random.default_rng(0).normal(size=(200, 2))
    detector = make_detector("isolation_forest", contamination=0.5).fit(X)
    share = (detector.score_samples(X) > detector.threshold(detector.score_samples(X))).mean()
    assert 0.4 <= share <= 0.5


def test_rows_that_repeat_are_walked_once_and_score_as_every_row(monkeypatch):
    """Login features repeat (a million logins, a few thousand distinct rows): each
    distinct row is walked once, and every row still scores as scikit-learn scores it,
    NaNs and negative zeros included; rows that do not repeat are walked as they come."""
    from sklearn.ensemble import IsolationForest

    import detection.forest as forest_module

    rng = np.random.default_rng(4)
    kinds = rng.normal(size=(300, 4)).astype("float32")
    kinds[::7, 1] = np.nan
    kinds[1::7, 2] = -0.0
    X = kinds[rng.integers(0, 300, 40_000)]
    forest = IsolationForest(n_estimators=40, random_state=0).fit(X[:5_000])
    detector = IsolationForestDetector()
    detector._keep(forest)
    rows, codes = forest_module.distinct_rows(X)
    assert len(rows) <= 300
    np.testing.assert_array_equal(rows[codes], X)
    np.testing.assert_array_equal(detector.score_samples(X), -forest.score_samples(X))

    assert forest_module.distinct_rows(rng.normal(size=(40_000, 4)).astype("float32")) is None
    # Two different rows that share a hash are never grouped: all rows are walked.
    monkeypatch.setattr(forest_module, "_row_hashes", lambda X: np.zeros(len(X), "uint64"))
    assert forest_module.distinct_rows(X) is None
    np.testing.assert_array_equal(detector.score_samples(X), -forest.score_samples(X))
