"""`vigil replay`: every row, in order, when it falls due."""

import io

import pandas as pd
import pytest

from app.live.replay import replay
from detection.errors import DetectionError
from sample_data import sample_path
from tests.app.cli import vigil


class FakeClock:
    """A clock that only moves when replay sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_speed_paces_rows_by_their_timestamps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("timestamp,value\n2025-01-01 00:00:00,1\n2025-01-01 00:01:00,2\n"
                    "2025-01-01 00:01:00,3\n2025-01-01 00:11:00,4\n")
    clock, out = FakeClock(), io.StringIO()
    assert replay(path, out, speed=60, clock=clock, sleep=clock.sleep) == 4
    assert clock.sleeps == pytest.approx([1.0, 10.0])  # due at 1 min and 11 min, at 60x
    assert out.getvalue() == path.read_text()


def test_rate_paces_rows_evenly_and_keeps_every_row(tmp_path):
    source = sample_path("temperature.csv")
    clock, out = FakeClock(), io.StringIO()
    assert replay(source, out, rate=100, clock=clock, sleep=clock.sleep) == 720
    assert clock.now == pytest.approx(7.19, abs=0.06)  # the last row is due at 719/100 s
    back = pd.read_csv(io.StringIO(out.getvalue()), dtype=str)
    pd.testing.assert_frame_equal(back, pd.read_csv(source, dtype=str))


def test_speed_needs_a_timestamp_column(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DetectionError, match="no timestamp column"):
        replay(path, io.StringIO(), speed=10)


def test_the_command_writes_csv_that_reads_back(tmp_path):
    run = vigil("replay", sample_path("temperature.csv"), "--rate", "100000", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(pd.read_csv(io.StringIO(run.stdout))) == 720
    assert run.stderr.strip() == "720 rows replayed"
