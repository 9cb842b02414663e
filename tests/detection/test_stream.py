"""Scoring in pieces with carried rows equals scoring the whole file in one pass."""

import numpy as np
import pandas as pd
import pytest

from detection import fit, prepare, read_csv
from detection.errors import ParameterError
from detection.stream import StreamScorer
from sample_data import sample_path
from tests.conftest import sensor_frame, to_csv_bytes

SCORES = ["anomaly_score", "is_anomaly", "severity", "reasons"]


def machines(n_per: int = 400, seed: int = 1, faults: bool = True) -> pd.DataFrame:
    """Three machines' readings interleaved in time, with a spike, a stuck run that
    outlasts the window, missing values and a machine that appears late."""
    parts = []
    for k, name in enumerate(["m1", "m2", "m3"]):
        frame = sensor_frame(n_per, seed=seed + k)
        frame.insert(1, "machine", name)
        if name == "m3":
            frame = frame.iloc[n_per // 2:]
        parts.append(frame)
    frame = pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)
    if not faults:  # a normal history, where a reading sometimes repeats a few times
        frame.loc[frame.index[frame["machine"] == "m1"][100:108], "vibration"] = 10.0
        return frame
    frame.loc[300, "temperature"] = 90.0
    stuck = frame.index[(frame["machine"] == "m2")][150:260]  # 110 readings: > 2 x window
    frame.loc[stuck, "vibration"] = 10.25
    frame.loc[[17, 18, 640], "vibration"] = np.nan
    return frame


def pieces(frame: pd.DataFrame, size: int):
    whole = read_csv(to_csv_bytes(frame))
    for start in range(0, len(whole), size):
        yield whole.iloc[start:start + size]


@pytest.mark.parametrize(("size", "rows"), [(1, 200), (7, 1000), (64, 1000), (333, 1000),
                                            (5000, 1000)])
@pytest.mark.slow
def test_pieces_score_as_one_pass(size, rows):
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    frame = machines(seed=5).head(rows)
    expected = model.score(prepare(read_csv(to_csv_bytes(frame)))).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(piece).frame for piece in pieces(frame, size)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])
    if rows == 1000:
        assert expected["reasons"].str.contains("the same reading").any()  # the stuck run
        assert expected.loc[301, "is_anomaly"] == 1  # the spike


def test_the_carried_rows_stay_bounded():
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    scorer = StreamScorer(model)
    for piece in pieces(machines(n_per=2000, seed=3), 500):
        scorer.score(piece)
        assert len(scorer.carried) <= 3 * 2 * model.featurizer.window


@pytest.mark.slow
def test_a_single_series_and_generic_files_too():
    series = sample_path("temperature.csv")
    model = fit(prepare(read_csv(series)))
    whole = read_csv(series)
    expected = model.score(prepare(whole)).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(whole.iloc[i:i + 50]).frame for i in range(0, 720, 50)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])

    table = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=list("abc"))
    table.loc[[120, 121], "b"] = np.nan
    generic = read_csv(to_csv_bytes(table))
    model = fit(prepare(generic, profile="generic"))
    expected = model.score(prepare(generic, profile="generic")).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(generic.iloc[i:i + 40]).frame for i in range(0, 300, 40)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])


@pytest.mark.slow
@pytest.mark.parametrize("machines_", [("M1",), ("M1", "M2")], ids=["metric", "machine+metric"])
def test_a_long_files_pieces_score_as_one_pass(machines_):
    """A piece of a long file, however short, scores each metric as a series of its own."""
    from tests.detection.test_dataset import _long

    whole = read_csv(to_csv_bytes(_long(machines_)))
    model = fit(prepare(whole.iloc[:900]))
    expected = model.score(prepare(whole.iloc[900:])).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(piece).frame for piece in
                     (whole.iloc[900:][i:i + 7] for i in range(0, len(whole) - 900, 7))])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 37, 500, 100_000])
def test_login_pieces_score_as_one_pass(size):
    """The user's whole history rides along as a few weighted rows per user: new places,
    unusual hours, travel, failure bursts and sprays come out as in one pass."""
    logins = read_csv(sample_path("logins.csv"))
    cut = int(len(logins) * 0.6)
    model = fit(prepare(logins.iloc[:cut]))
    # One row a piece: the 120 rows of the spray, with new countries and travel in them.
    later = logins.iloc[cut:] if size > 1 else logins.iloc[cut + 1080:cut + 1200]
    expected = model.score(prepare(later)).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(later.iloc[i:i + size]).frame
                     for i in range(0, len(later), size)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])
    assert expected["is_anomaly"].sum() > 20
    for said in ("password spray", "first login from", "impossible travel"):
        assert expected["reasons"].str.contains(said).any(), said
    users = pd.concat([logins.iloc[:cut], later])["user"].nunique()
    assert len(scorer.carried) < 40 * users  # bounded by the users seen, not by rows


def test_a_profile_without_pieces_is_refused():
    model = fit(prepare(read_csv(sample_path("logins.csv"))))
    model.profile = "other"
    with pytest.raises(ParameterError, match="other files are scored whole"):
        StreamScorer(model)


def test_a_file_scored_in_pieces_writes_the_bytes_one_pass_writes(tmp_path):
    import io

    from app import scoring
    from detection.export import write_csv

    path = tmp_path / "machines.csv"
    path.write_bytes(to_csv_bytes(machines(seed=5)))
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    whole = io.BytesIO()
    write_csv(scoring.analyze(scoring.read_dataset(path), model=model).frame, whole)
    pieces = io.BytesIO()
    done = scoring.score_in_pieces(path, model, pieces, rows=97)
    assert pieces.getvalue() == whole.getvalue()
    assert done.rows == 1000 and done.flagged > 0


def test_a_bad_line_in_a_later_piece_is_told_after_the_pieces_before_are_written(tmp_path):
    """Pieces are parsed ahead and written behind on threads: a line the parser refuses
    in the fourth piece still raises its own message, once every piece before it is out."""
    import io

    from app import scoring
    from detection.errors import MalformedCsvError

    lines = to_csv_bytes(machines(seed=5)).decode().splitlines(keepends=True)
    lines[350] = lines[350].rstrip("\n") + ",1,2\n"  # line 351: two values too many
    path = tmp_path / "machines.csv"
    path.write_text("".join(lines))
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    out = io.BytesIO()
    with pytest.raises(MalformedCsvError, match="line 351 of the file has"):
        scoring.score_in_pieces(path, model, out, rows=97)
    written = pd.read_csv(io.BytesIO(out.getvalue()))
    assert len(written) == 3 * 97  # the three whole pieces before the bad line


@pytest.mark.slow
def test_login_pieces_without_coordinates_score_as_one_pass(tmp_path):
    """Country-hop travel, brute force and spray windows across piece boundaries."""
    from bench.speed import login_csv

    path = tmp_path / "logins.csv"
    login_csv(path, 20_000)
    logins = read_csv(path)
    hop = logins.iloc[15_000].copy()  # a user in another country minutes later
    hop["country"] = "Brazil"
    burst = pd.DataFrame([hop] * 12).assign(success=False, ip_address="66.6.6.6")
    logins = pd.concat([logins.iloc[:15_001], pd.DataFrame([hop]), burst,
                        logins.iloc[15_001:]], ignore_index=True)
    logins.index = pd.RangeIndex(1, len(logins) + 1, name="row")
    model = fit(prepare(logins.iloc[:12_000]))
    later = logins.iloc[12_000:]
    whole = model.score(prepare(later))
    scorer = StreamScorer(model)
    pieces = [scorer.score(later.iloc[i:i + 333]) for i in range(0, len(later), 333)]
    pd.testing.assert_frame_equal(pd.concat([p.frame for p in pieces])[SCORES],
                                  whole.frame[SCORES])
    pd.testing.assert_frame_equal(pd.concat([p.features for p in pieces]), whole.features)
    assert whole.features["impossible_travel"].max() == 1  # the hop was seen
    assert np.expm1(whole.features["user_failures_1h"].max()).round() >= 12  # the burst


@pytest.mark.slow
@pytest.mark.parametrize("size", [7, 37, 1000])
def test_rows_sent_again_score_in_pieces_as_in_one_pass(size):
    """A batch sent again (rows repeated, within a piece or across pieces) scores in
    pieces as in one pass: each copy as the reading it repeats."""
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    frame = machines(seed=5).head(600)
    frame = pd.concat([frame.iloc[:320], frame.iloc[280:]], ignore_index=True)
    expected = model.score(prepare(read_csv(to_csv_bytes(frame)))).frame
    assert expected.loc[281:320, SCORES].equals(expected.loc[321:360, SCORES].set_axis(
        expected.loc[281:320].index))
    assert expected.loc[301, "is_anomaly"] == expected.loc[341, "is_anomaly"] == 1  # the spike
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(piece).frame for piece in pieces(frame, size)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])


def test_a_checkpoint_saved_before_carried_rows_kept_scores_still_scores():
    """Carried rows stored by an earlier Vigil have no scores: a row repeating one is
    scored afresh, and the stream goes on."""
    model = fit(prepare(read_csv(to_csv_bytes(machines(seed=11, faults=False)))))
    whole = read_csv(to_csv_bytes(machines(seed=5).head(300)))
    scorer = StreamScorer(model)
    scorer.score(whole.iloc[:200])
    scorer.carried = scorer.carried.drop(columns=SCORES)
    again = whole.iloc[190:200].set_axis(pd.RangeIndex(201, 211))
    got = scorer.score(again).frame
    assert len(got) == 10 and got["anomaly_score"].notna().all()
    assert set(SCORES) <= set(scorer.carried.columns)


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 7, 200])
def test_a_machine_column_told_by_the_layout_holds_in_pieces_too_small_to_show_it(size):
    """A piece of one row cannot show which column tells the machines apart: the model's
    machine column reads it, and the pieces score as one pass."""
    from tests.detection.test_dataset import _fleet

    fleet = read_csv(to_csv_bytes(_fleet("unit")))
    model = fit(prepare(fleet.iloc[:900]))
    later = fleet.iloc[900:] if size > 1 else fleet.iloc[900:1100]
    expected = model.score(prepare(later)).frame
    scorer = StreamScorer(model)
    got = pd.concat([scorer.score(later.iloc[i:i + size]).frame
                     for i in range(0, len(later), size)])
    pd.testing.assert_frame_equal(got[SCORES], expected[SCORES])
