"""Big uploads on the Analyze page: read, fitted and scored in pieces, in bounded memory.

The thresholds are lowered so that a sample file of 8,064 rows counts as big: pieces of
1,000 rows, a fit sample of 2,000.
"""

import pandas as pd
import pytest

from app import chart_data, scoring, services
from app.settings import Settings
from app.vigil import Vigil
from sample_data import sample_path

ELEVATORS = sample_path("elevators.csv").read_bytes()
SHA = services.file_sha256(ELEVATORS)


@pytest.fixture
def settings(tmp_path):
    return Settings(database_url=f"sqlite:///{tmp_path}/vigil.db", journal_dir=tmp_path / "j",
                    alert_outbox_dir=tmp_path / "outbox")


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
    monkeypatch.setattr(scoring, "WHOLE_ROWS", 2_000)
    monkeypatch.setattr(scoring, "FIT_ROWS", 2_000)


def analyze(settings, **kwargs) -> services.Analysis:
    return services.analyze_upload(Vigil(settings), ELEVATORS, source_name="elevators.csv", file_sha256=SHA, **kwargs)


def whole_then_pieces(monkeypatch, settings, **kwargs):
    whole = analyze(settings, **kwargs)
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
    monkeypatch.setattr(scoring, "WHOLE_ROWS", 2_000)
    monkeypatch.setattr(scoring, "FIT_ROWS", 2_000)
    return whole, analyze(settings, **kwargs)


@pytest.mark.slow
def test_a_big_upload_scored_by_a_registered_model_in_pieces_equals_one_pass(
        monkeypatch, settings):
    dataset = services.read_dataset(ELEVATORS)
    version = services.train(Vigil(settings), dataset)["version"]
    whole, pieces = whole_then_pieces(monkeypatch, settings, model_version=version)
    columns = ["row_number", "entity", "anomaly_score", "severity", "reasons"]
    pd.testing.assert_frame_equal(pieces.run.anomalies[columns], whole.run.anomalies[columns])
    assert pieces.run.total_rows == whole.run.total_rows == 8064
    assert pieces.run.score_histogram == whole.run.score_histogram
    assert pieces.run.run_key == whole.run.run_key
    assert pieces.run.model_version == version
    pd.testing.assert_frame_equal(pieces.top.reset_index(drop=True),
                                  whole.top.reset_index(drop=True))
    # The chart: every normal row binned once, per elevator and metric, within the cap.
    a, b = pieces.series, whole.series
    normal = 8064 - len(whole.run.anomalies)
    assert (a.groupby("metric")["rows"].sum() == normal).all()
    assert a.groupby(["entity", "metric"])["rows"].sum().equals(
        b.groupby(["entity", "metric"])["rows"].sum())
    assert len(a) <= chart_data.MAX_POINTS


@pytest.mark.slow
def test_a_big_upload_fitted_on_itself_learns_from_stretches_and_says_so(
        monkeypatch, settings):
    whole, pieces = whole_then_pieces(monkeypatch, settings, contamination=0.02)
    run = pieces.run
    assert run.total_rows == 8064 and run.model_version is None
    assert run.run_key == whole.run.run_key  # the same file and settings: one stored run
    assert run.warnings[0].startswith("This file has about 8,064 rows: the model fitted on "
                                      "it learned from 2,000 of them, in 20 stretches")
    share = len(run.anomalies) / run.total_rows
    assert 0.01 <= share <= 0.04, share  # the chosen 2%, learned from a quarter of the rows
    # Cut as a file scored on its own is (it holds anomalies), not as normal history.
    assert run.threshold_note == whole.run.threshold_note
    assert "normal variation" not in run.threshold_note
    # The worst rows of one pass are found by the model fitted on stretches too.
    worst = set(whole.top["anomaly_score"].nlargest(5).index)
    assert worst <= set(run.anomalies["row_number"])
    report = services.store(Vigil(settings), run)
    assert report.created
    stored = services.query_anomalies(Vigil(settings), services.AnomalyFilter(run_ids=[report.run_id]),
                                      limit=None)
    assert len(stored) == len(run.anomalies)
    assert not services.store(Vigil(settings), run).created


def test_a_big_upload_is_previewed_from_its_first_piece(small_pieces):
    preview = services.inspect_upload(ELEVATORS)
    assert preview.approximate and preview.rows == 8064
    assert preview.profile == "sensor" and preview.mapping["entity"] == "elevator_id"
    logins = services.inspect_upload(sample_path("logins.csv").read_bytes())
    assert not logins.approximate  # login files are read whole


@pytest.mark.parametrize("big", [True, False])
def test_text_cells_in_a_metric_warn_and_chart_as_gaps(monkeypatch, settings, big):
    lines = ELEVATORS.decode().splitlines()
    header = lines[0].split(",")
    at = header.index("vibration")
    for row in (1500, 6000):  # rows in the second and the sixth piece
        cells = lines[row].split(",")
        cells[at] = "ERR"
        lines[row] = ",".join(cells)
    data = ("\n".join(lines) + "\n").encode()
    if big:
        monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
        monkeypatch.setattr(scoring, "WHOLE_ROWS", 2_000)
        monkeypatch.setattr(scoring, "FIT_ROWS", 2_000)
        assert not services.inspect_upload(data).warnings  # the first piece is clean
    analysis = services.analyze_upload(Vigil(settings), data, source_name="e.csv",
                                       file_sha256=services.file_sha256(data))
    text = " ".join(analysis.run.warnings)
    assert "1500" in text and "6000" in text, text
    assert analysis.series.groupby("metric")["rows"].sum().nunique() == 1


@pytest.mark.parametrize("pieces", [1, 3, 8])
def test_merged_bins_keep_every_row_and_the_mean(pieces):
    rng = pd.Series(range(9000), dtype="float64")
    x = pd.date_range("2025-01-01", periods=9000, freq="min")
    frames = []
    for part in range(pieces):
        rows = slice(part * 9000 // pieces, (part + 1) * 9000 // pieces)
        frames.append(pd.DataFrame({
            "x": x[rows], "entity": "e1", "metric": "m", "value": rng[rows].to_numpy(),
            "lo": rng[rows].to_numpy() - 1, "hi": rng[rows].to_numpy() + 1,
            "score": 10.0, "rows": 1}))
    merged = chart_data.merge_series(frames)
    assert list(merged.columns) == list(chart_data.SERIES_COLUMNS)
    assert merged["rows"].sum() == 9000 and len(merged) <= chart_data.MAX_POINTS
    assert (merged["value"] * merged["rows"]).sum() == pytest.approx(rng.sum())
    assert merged["x"].is_monotonic_increasing
    assert chart_data.merge_series([]).empty


def test_a_login_files_score_line_is_binned_into_a_mean_and_a_usual_band():
    """Logins have no metric columns: the chart draws the score of normal rows. One row
    per bin drew every login's score, a hatch of vertical strokes with no band."""
    from detection import fit_score, prepare, read_csv

    result = fit_score(prepare(read_csv(sample_path("logins.csv"))))[1]
    series = chart_data.series_frame(result)
    assert set(series["metric"]) == {chart_data.SCORE_METRIC}
    assert series["rows"].sum() == (result.frame["is_anomaly"] == 0).sum()
    assert series["rows"].min() >= chart_data.SCORE_BIN_ROWS
    assert (series["hi"] > series["lo"]).mean() > 0.9  # a band, not a line


@pytest.mark.slow
def test_vigil_score_fits_a_big_file_on_stretches_and_scores_it_as_analyze_does(
        monkeypatch, settings, small_pieces, tmp_path, capsys):
    """`vigil score BIG.csv` without a model is the Analyze page's big upload: fitted on
    stretches of the file and scored in pieces (never read whole), the same rows flagged
    with the same scores and reasons, and the same note; a model fitted on the file has no
    baseline to call stale."""
    from app.cli import main as cli

    page = analyze(settings, contamination=0.02).run
    monkeypatch.setattr(scoring, "read_dataset", None)  # reading whole would fail here
    out = tmp_path / "scored.csv"
    assert cli.main(["score", str(sample_path("elevators.csv")), "--contamination", "0.02",
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("This file has about 8,064 rows: the model fitted on it learned "
                          "from 2,000 of them, in 20 stretches")
    assert "8064 rows scored (sensor)" in err and "stale" not in err
    scored = pd.read_csv(out, keep_default_na=False)
    assert len(scored) == 8064 and scored.columns[:5].tolist() == pd.read_csv(
        sample_path("elevators.csv"), nrows=1).columns.tolist()
    flagged = scored[scored["is_anomaly"] == 1].reset_index(names="row_number")
    flagged["row_number"] += 1
    columns = ["row_number", "anomaly_score", "severity", "reasons"]
    pd.testing.assert_frame_equal(flagged[columns].reset_index(drop=True),
                                  page.anomalies[columns].reset_index(drop=True),
                                  check_dtype=False)
