"""The live detector that keeps learning: a change is told once, then it is the normal."""

import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from detection import fit, fit_score, prepare
from detection.errors import ParameterError
from detection.features.base import fmt
from detection.stream import StreamScorer


def shifting(n: int = 6000, shift_at: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Two machines' CPU every 5 minutes with a daily cycle; machine a's level jumps from
    about 12 to 55 at ``shift_at`` and stays there."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-01-01", periods=n, freq="5min")
    frames = []
    for machine in ("a", "b"):
        hour = times.hour.to_numpy()
        cpu = 12 + 3 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 1.0, n)
        if machine == "a":
            cpu[shift_at:] += 43
        frames.append(pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                                    "machine": machine, "cpu": cpu.round(2)}))
    frame = pd.concat(frames).sort_values(["timestamp", "machine"], kind="stable")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


SHIFT = f"{pd.Timestamp('2026-01-01') + 3000 * pd.Timedelta('5min'):%Y-%m-%d %H:%M:%S}"


@pytest.fixture(scope="module")
def stream():
    frame = shifting()
    baseline = frame.iloc[:2000]
    model = fit(prepare(baseline.copy()))
    return model, frame.iloc[2000:]


def test_a_level_shift_is_flagged_where_it_starts_then_learned(stream):
    model, later = stream
    fixed = StreamScorer(model).score(later.copy()).frame
    live = StreamScorer(model, learn=True).score(later.copy()).frame
    shifted = (later["machine"] == "a") & (later["timestamp"] >= SHIFT)
    # The model of the old baseline alarms on most rows after the change, for good ...
    assert fixed.loc[shifted, "is_anomaly"].mean() > 0.5
    assert fixed.loc[shifted, "is_anomaly"].iloc[-500:].mean() > 0.5
    # ... the live detector tells it where it starts, in words, and then learns it.
    flags = live[live["is_anomaly"] == 1]
    first = flags[(flags["machine"] == "a") & (flags["timestamp"] >= SHIFT)].iloc[0]
    assert first["timestamp"] == later.loc[shifted, "timestamp"].iloc[0]
    assert "cpu" in first["reasons"] and first["severity"] in ("high", "critical")
    assert live.loc[shifted, "is_anomaly"].sum() <= 3
    # Learned: the new level is the normal one. What still flags there is the background
    # any series has (a reading's shape now and then), never the level.
    settled = shifted & (later["timestamp"] >= later.loc[shifted, "timestamp"].iloc[700])
    assert live.loc[settled, "is_anomaly"].mean() < 0.005
    assert live.loc[settled, "anomaly_score"].median() < 10
    assert not live.loc[settled & (live["is_anomaly"] == 1), "reasons"].str.contains(
        "recent usual").any()
    assert live.loc[later["machine"] == "b", "is_anomaly"].mean() < 0.005


def test_a_file_scored_learning_from_its_first_reading_tells_a_shift_once():
    """`vigil score FILE --learn`: no baseline before the file; the model fitted on the
    whole file is one of the learner's columns."""
    frame = shifting()
    whole = fit_score(prepare(frame.copy()))[1].frame
    learning = fit_score(prepare(frame.copy()), learn=True)[1].frame
    shifted = (frame["machine"] == "a") & (frame["timestamp"] >= SHIFT)
    flags = learning[learning["is_anomaly"] == 1]
    first = flags[(flags["machine"] == "a") & (flags["timestamp"] >= SHIFT)].iloc[0]
    assert first["timestamp"] == SHIFT and first["severity"] == "critical"
    assert "recent usual" in first["reasons"] and "a new high" in first["reasons"]
    # Fitted on itself, a file has the contamination share flagged (a quarter of it the
    # new level, which is no outlier there); learning, a handful.
    assert learning["is_anomaly"].sum() <= 20 < whole["is_anomaly"].sum()
    settled = shifted & (frame["timestamp"] >= frame.loc[shifted, "timestamp"].iloc[700])
    assert not learning.loc[settled & (learning["is_anomaly"] == 1), "reasons"].str.contains(
        "recent usual").any()
    logins = pd.DataFrame({"timestamp": frame["timestamp"], "user": "ann",
                           "ip_address": "10.0.0.1", "success": True})
    with pytest.raises(ParameterError, match="learning as it goes scores sensor files"):
        fit_score(prepare(logins, profile="login"), learn=True)


def test_the_top_score_is_rare(stream):
    model, later = stream
    live = StreamScorer(model, learn=True).score(later.copy()).frame
    top = live["anomaly_score"].max()
    assert (live["anomaly_score"] == top).mean() <= 0.001


def ticking(n: int = 8000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A server's load every minute beside a counter that sits at 0 and ticks now and
    then: by 1 to 3 twenty times in the first 2,000 readings, at hours the later ticks do
    not fall within half an hour of (a tick at an hour the days before ticked at is
    partly their routine), then once every 300 readings by 1 to 15 in a random order; and
    the size of each later tick."""
    rng = np.random.default_rng(seed)
    ticks = rng.permutation(np.arange(1, 16))
    later = 2000 + 300 * np.arange(len(ticks)) + 150
    day = 1440  # readings
    early = [t for t in range(25, 2000, 50) if (np.abs((later - t + day // 2) % day
                                                        - day // 2) > 30).all()]
    counter = np.zeros(n)
    counter[early] = rng.integers(1, 4, len(early))
    counter[later] = ticks
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2026-02-01", periods=n, freq="1min")
        .strftime("%Y-%m-%d %H:%M:%S"),
        "load": (40 + rng.normal(0, 2, n)).round(2), "errors": counter})
    frame.index = pd.RangeIndex(1, n + 1, name="row")
    return frame, ticks


def test_a_metric_that_sits_still_then_ticks_is_ranked_by_how_far_not_tied_at_the_top():
    """A counter at one value for thousands of readings has no spread and no tail: every
    tick was an extreme of extremes (surprises of 10^12, SMD's servers) and all of them
    tied at 100. Counted in at least half its spread in the baseline, with tail steps of
    at least half a unit, each tick is still told, the bigger ticks above the smaller
    (among the ticks that go beyond every earlier one, its records, and among the
    others), and the top is rare."""
    frame, ticks = ticking()
    model = fit(prepare(frame.iloc[:2000].copy()))
    live = StreamScorer(model, learn=True).score(frame.iloc[2000:].copy()).frame
    at = live.index[live["errors"] > 0]
    assert live.loc[at, "is_anomaly"].all()
    assert live.loc[at, "reasons"].str.startswith("errors ").all()
    highest = np.maximum.accumulate(np.r_[frame["errors"].iloc[:2000].max(), ticks[:-1]])
    record = ticks > highest
    assert (live.loc[at, "reasons"].str.contains("a new high").to_numpy() == record).all()
    for kind in (record, ~record):
        scores = live.loc[at[kind], "anomaly_score"].to_numpy()[np.argsort(ticks[kind])]
        assert (np.diff(scores) >= 0).all(), scores
    by_size = live.loc[at, "anomaly_score"].to_numpy()[np.argsort(ticks)]
    assert by_size[0] < 99 < by_size[-1], by_size
    assert (live["anomaly_score"] == live["anomaly_score"].max()).mean() <= 0.001


BURSTS = np.arange(100, 7500, 50)  # readings at which the load below bursts


def bursting(seed: int, n: int = 8000) -> np.ndarray:
    """A load at 40 every 10 seconds that bursts to 55-70 every 50 readings: its routine,
    the bursts make its own tail (a day's readings: no time of day is known)."""
    rng = np.random.default_rng(seed)
    load = 40 + rng.normal(0, 2, n)
    load[BURSTS] = rng.uniform(55, 70, len(BURSTS))
    return load.round(2)


def learned_live(load: np.ndarray) -> pd.DataFrame:
    """``load`` streamed after a model of its first 2,000 readings, learning as it goes."""
    frame = pd.DataFrame({"timestamp": pd.date_range("2026-03-01", periods=len(load),
                                                     freq="10s").strftime("%Y-%m-%d %H:%M:%S"),
                          "load": load})
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    model = fit(prepare(frame.iloc[:2000].copy()))
    return StreamScorer(model, learn=True).score(frame.iloc[2000:].copy()).frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_reading_beyond_every_one_before_is_told_as_a_new_high(seed):
    """The bursting load, once to just above its highest (by less than a unit) and once
    to 80, beyond every reading it showed. The burst to 80 is flagged, as a new high with
    the highest before it (the one just above the routine's); no routine burst, nor the
    one just above them, is told as a new high, and hardly any is flagged."""
    load = bursting(seed)
    load[6020] = load[:6020].max() + 0.5
    load[7600] = 80.0
    live = learned_live(load)
    high = live.loc[7601]
    assert high["is_anomaly"] == 1
    assert high["reasons"].endswith(f"; a new high (the highest before: {fmt(load[6020])})")
    routine = np.r_[BURSTS[BURSTS >= 2000], 6020] + 1
    assert not live.loc[routine, "reasons"].str.contains("new high").any()
    assert live.loc[routine, "is_anomaly"].sum() <= 2
    assert high["anomaly_score"] > live.loc[routine, "anomaly_score"].max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_record_told_louder_does_not_silence_a_change_after_it(seed):
    """The bursting load, whose baseline once dipped to -30, bursts to 80 (a record, told
    four times over) and 60 readings later dips to 10: far out, but within the range it
    has shown, so no record. The dip is judged against the record's plain surprise, not
    its louder one, and flagged in its own words (against the louder one it was taken
    for the record's echo and scored under 45)."""
    load = bursting(seed)
    load[30] = -30.0
    load[7600], load[7660] = 80.0, 10.0
    live = learned_live(load)
    assert live.loc[7601, "is_anomaly"] == 1
    dip = live.loc[7661]
    assert dip["is_anomaly"] == 1 and dip["reasons"].startswith("load 10")
    assert "new low" not in dip["reasons"]


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 7, 500])
def test_any_split_and_a_restart_give_the_scores_of_one_piece(stream, size):
    model, later = stream
    later = later.iloc[:{1: 200, 7: 1400}.get(size, len(later))]
    whole = StreamScorer(model, learn=True).score(later.copy()).frame
    scorer, parts = StreamScorer(model, learn=True), []
    for start in range(0, len(later), size):
        if start == len(later) // 2:  # a restart: the state comes back from a checkpoint
            state = pickle.loads(pickle.dumps(scorer.state))
            scorer = StreamScorer(model, learn=True)
            scorer.state = state
        parts.append(scorer.score(later.iloc[start:start + size].copy()).frame)
    got = pd.concat(parts)
    np.testing.assert_allclose(got["anomaly_score"], whole["anomaly_score"], atol=1e-6)
    assert got["reasons"].tolist() == whole["reasons"].tolist()


def test_a_stream_that_starts_over_on_older_rows_scores_the_same_in_any_split():
    """`vigil score --learn` on a model's own baseline: the rows go back in time from the
    state the baseline left. Each reading is compared with the days before within its
    own run of times, so pieces score as one pass."""
    frame = shifting(n=3000)
    model = fit(prepare(frame.copy()))
    whole = StreamScorer(model, learn=True).score(frame.copy()).frame
    scorer = StreamScorer(model, learn=True)
    got = pd.concat([scorer.score(frame.iloc[a:b].copy()).frame
                     for a, b in [(0, 1000), (1000, 3001), (3001, len(frame))]])
    np.testing.assert_allclose(got["anomaly_score"], whole["anomaly_score"], atol=1e-6)
    assert got["reasons"].tolist() == whole["reasons"].tolist()


def test_a_learning_stream_still_says_its_model_is_stale(stream):
    """The learner keeps the scores useful after a change, but the model's drift (and so
    the "stale: retrain" warning of `vigil stream` and the Live page) was lost."""
    model, later = stream
    fixed = StreamScorer(model).score(later.copy())
    live = StreamScorer(model, learn=True).score(later.copy())
    assert fixed.drift is not None and fixed.drift.stale
    assert live.drift is not None and live.drift.share == fixed.drift.share
    assert fixed.drift.warning() in live.warnings


def waves(n: int = 6000, change_at: int = 4000, seed: int = 0) -> pd.DataFrame:
    """A pump's pressure a minute: a wave of period 60 readings; at ``change_at`` it beats
    twice as fast, over the same range around the same level."""
    rng = np.random.default_rng(seed)
    period = np.where(np.arange(n) < change_at, 60.0, 30.0)
    phase = np.cumsum(2 * np.pi / period)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2026-02-01", periods=n, freq="1min")
        .strftime("%Y-%m-%d %H:%M:%S"),
        "pressure": (50 + 10 * np.sin(phase) + rng.normal(0, 0.3, n)).round(2)})
    frame.index = pd.RangeIndex(1, n + 1, name="row")
    return frame


def test_a_new_shape_at_the_usual_level_is_flagged_and_told_as_a_shape():
    """Every reading stays within the usual range: the level alone cannot tell. The shape
    of the last readings can, once, where it starts."""
    frame = waves()
    model = fit(prepare(frame.iloc[:2000].copy()))
    live = StreamScorer(model, learn=True).score(frame.iloc[2000:].copy()).frame
    flags = live[live["is_anomaly"] == 1]
    changed = flags[flags.index > 4000]
    assert len(changed) and changed.index[0] <= 4000 + 30
    assert changed["reasons"].iloc[0].startswith("pressure ")
    assert "its last 5 readings move unlike any stretch of its previous 1,000" \
        in changed["reasons"].iloc[0]
    assert len(flags[flags.index <= 4000]) <= 2  # the usual wave, learned
    assert live.loc[4000:, "is_anomaly"].sum() <= 5  # told, then learned


def test_the_shape_search_of_the_kernel_and_of_numpy_agree_bit_for_bit():
    """Pieces of a few rows are searched in numpy (no kernel to load), big ones by the
    compiled kernel: a stream split either way must score the same."""
    from detection import learning

    rng = np.random.default_rng(3)
    series = np.cumsum(rng.normal(size=(3000, 2)), axis=0) * 1e3 + 1e6
    series[rng.integers(0, 3000, 40), 0] = np.nan  # missing readings
    series[1500:1600, 1] = 7.0  # a sensor stuck: shapes of no spread
    kernel = learning._novelty(series, 2500)  # more rows than numpy searches
    assert "detection.learning_kernel" in sys.modules
    by_numpy = np.column_stack([learning._novelty_numpy(series[:, j], 2500)
                                for j in range(2)])
    np.testing.assert_array_equal(kernel, by_numpy)
    assert (kernel[:, 0] > 0).mean() > 0.9 and (kernel[:, 0] == 0).sum() > 40


def test_a_baselines_learning_state_is_the_one_a_whole_pass_leaves():
    """A model keeps the learner's state after its baseline, computed from the rows that
    state looks back at only, not the whole baseline."""
    from detection.learning import MEMORY, Learner

    frame = shifting(n=MEMORY + 1500)
    data = prepare(frame.copy())
    judged = np.random.default_rng(0).random(len(frame))
    learner = Learner(["cpu"], judged=True)
    whole, kept = learner.score(data, None, judged)[1], learner.state_after(data, judged)
    assert whole.keys() == kept.keys() == {"a", "b"}
    for machine, state in whole.items():
        for name, value in state.items():
            np.testing.assert_allclose(kept[machine][name], value, rtol=1e-9)


def test_a_stream_saved_before_shapes_and_times_were_learned_continues_and_learns_them(
        stream):
    """A checkpoint (or a model) from before: its deviations have no shape or time-of-day
    columns, and it kept no times nor extremes. The stream goes on, those columns still
    learning until their history fills, its records judged from the readings it kept."""
    model, later = stream
    scorer = StreamScorer(model, learn=True)
    scorer.score(later.iloc[:1000].copy())
    state = scorer.state
    for entity in state["learning"].values():
        entity["deviations"] = entity["deviations"][:, :2]  # cpu and the model's score
        del entity["times"], entity["extremes"]
    kept = state["learning"]["a"]["values"][:, 0].max()  # cpu
    again = StreamScorer(model, learn=True)
    again.state = state
    result = again.score(later.iloc[1000:3000].copy()).frame
    assert result["anomaly_score"].notna().all()
    assert again.state["learning"]["a"]["deviations"].shape[1] == 4  # + shape, time of day
    scored = later.iloc[1000:3000]
    highest = max(kept, scored.loc[scored["machine"] == "a", "cpu"].max())
    assert again.state["learning"]["a"]["extremes"][1, 0] == highest
    assert len(again.state["learning"]["a"]["times"]) == len(
        again.state["learning"]["a"]["values"])
    assert not result["reasons"].iloc[:200].str.contains("move unlike|time on the").any()


def working_days(days: int = 15, holiday: int = 10, seed: int = 0) -> pd.DataFrame:
    """A lift's trips every 10 minutes: about 20 at night, about 80 from 8 to 18 h; on day
    ``holiday`` the building is closed and the lift stays at its night level all day."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-03-02", periods=days * 144, freq="10min")
    hours = times.hour.to_numpy() + times.minute.to_numpy() / 60
    day = np.clip(np.minimum(hours - 7, 19 - hours), 0, 1)  # ramps 7-8 h and 18-19 h
    closed = (times.normalize() == times[0].normalize() + pd.Timedelta(days=holiday))
    trips = 20 + 60 * np.where(closed, 0.0, day) + rng.normal(0, 2, len(times))
    frame = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                          "trips": trips.round(1)})
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def test_a_day_unlike_the_days_before_is_flagged_by_its_time_of_day_then_learned():
    """Each reading of the closed day is within the usual range, at a level and in a
    shape the nights show: only the same hours of the days before tell it apart. It is
    told where the morning stays quiet (as the usual rise grows away from it, within the
    hour: one incident), and the next days score as usual."""
    frame = working_days()
    model = fit(prepare(frame.iloc[:720].copy()))  # five days
    live = StreamScorer(model, learn=True).score(frame.iloc[720:].copy()).frame
    time = pd.to_datetime(live["timestamp"])
    closed = time.dt.normalize() == pd.Timestamp("2026-03-12")
    flags = live[live["is_anomaly"] == 1]
    told = flags[closed[flags.index]]
    assert len(told) and time[told.index[0]].hour in (7, 8, 9)
    assert told["reasons"].iloc[0].startswith("trips ")
    assert "below its range around that time on the previous 3 days (" in told["reasons"].iloc[0]
    assert time[told.index[-1]] - time[told.index[0]] <= pd.Timedelta("1h")
    assert flags.index.isin(live.index[~closed]).sum() <= 3  # the usual days


def nightly(days: int = 12, seed: int = 0) -> tuple[pd.DataFrame, list[int], int]:
    """A server's load every 5 minutes, with a nightly job that lifts it for 10 minutes
    at 03:00 give or take 10; on the eleventh day the same lift at 15:00. Returns the
    frame, the rows (labels) each night's job starts at and the row of the odd one."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-03-02", periods=days * 288, freq="5min")
    load = 10 + rng.normal(0, 1, len(times))
    nights = [day * 288 + 36 + int(rng.integers(-2, 3)) for day in range(days)]
    for at in nights:
        load[at:at + 2] = 50 + rng.normal(0, 2, 2)
    odd = 10 * 288 + 180
    load[odd:odd + 2] = 50
    frame = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                          "load": load.round(2)})
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame, [at + 1 for at in nights], odd + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_nightly_job_at_its_hour_is_routine_and_the_same_peak_at_another_hour_is_told(
        seed):
    """Learned on three nights, the job's later runs (a few minutes early or late) are
    its routine: neither their peak, nor the trained model alarmed by it, nor the quiet
    minutes where it ran the night before, flag (a run a little above the nights before
    may). The same peak at 15:00 is flagged by its level, and is not taken for an echo
    of the night's run 12 hours before. Before, every night flagged and the afternoon's
    peak did not."""
    frame, nights, odd = nightly(seed=seed)
    model = fit(prepare(frame.iloc[:3 * 288].copy()))
    live = StreamScorer(model, learn=True).score(frame.iloc[3 * 288:].copy()).frame
    flagged = live["is_anomaly"] == 1
    runs = [at for at in nights if at in live.index]
    assert sum(flagged.loc[at:at + 1].any() for at in runs) <= 2, live.loc[flagged]
    assert flagged.loc[odd] and "above its recent usual" in live.loc[odd, "reasons"]
    time = pd.to_datetime(live["timestamp"])
    minute = time.dt.hour * 60 + time.dt.minute
    quiet = (live["load"] < 20) & minute.between(150, 210)  # 02:30-03:30
    assert not flagged[quiet].any(), live.loc[flagged & quiet]


def test_the_extremes_of_ranges_are_those_of_their_readings():
    """The least and largest reading of each range, found from tables of powers of two
    part by part, are numpy's over the range itself: missing readings left out, NaN where
    a range is empty or holds none."""
    from detection import learning

    rng = np.random.default_rng(3)
    column = rng.normal(size=3000)
    column[rng.integers(0, 3000, 200)] = np.nan
    column[1000:1040] = np.nan
    first = np.sort(rng.integers(0, 2900, 1500))
    stop = first + rng.integers(0, 90, 1500)
    stop[::50] = first[::50]  # empty
    first[7], stop[7] = 1005, 1030  # no reading known
    expected = np.full((2, 1500), np.nan)
    for i, (a, b) in enumerate(zip(first, stop, strict=True)):
        part = column[a:b][~np.isnan(column[a:b])]
        if len(part):
            expected[:, i] = part.min(), part.max()
    for ranges in (learning.RANGES, 64):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(learning, "RANGES", ranges)
            found = learning._extremes(column, first, stop)
        np.testing.assert_array_equal(np.array(found), expected)


def test_the_tail_of_many_rows_is_pandas_rolling_quantile_bit_for_bit():
    """The compiled tail ranks as pandas' rolling quantile would (missing values left
    out, ties, a stretch of zeros), and as the window-by-window ranking of a few rows."""
    from detection import learning

    rng = np.random.default_rng(5)
    deviation = np.abs(rng.standard_cauchy(9000)).round(1)  # many ties
    deviation[rng.integers(0, 9000, 300)] = np.nan
    deviation[2000:2300] = 0.0
    low, high = learning._tail(deviation, 8000)
    before = pd.Series(np.r_[np.nan, deviation[:-1]]).rolling(learning.HISTORY,
                                                              min_periods=learning.MIN_HISTORY)
    np.testing.assert_array_equal(low, before.quantile(0.90).to_numpy()[-8000:])
    np.testing.assert_array_equal(high, before.quantile(0.99).to_numpy()[-8000:])
    few = learning._tail(deviation, learning.FEW)
    np.testing.assert_allclose(few, (low[-learning.FEW:], high[-learning.FEW:]), rtol=1e-12)
