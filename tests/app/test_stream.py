"""`vigil stream`: rows scored as they arrive get the scores of the whole file."""

import io
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from sample_data import sample_path
from tests.app.test_cli import vigil

ELEVATORS = sample_path("elevators.csv")


def trained(tmp_path) -> str:
    run = vigil("train", ELEVATORS, "--profile", "sensor", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1].split()[-1]


def test_standard_input_streamed_scores_as_the_whole_file(tmp_path):
    version = trained(tmp_path)
    whole = vigil("score", ELEVATORS, "--model", version, tmp_path=tmp_path)
    streamed = vigil("stream", "-", "--model", version, tmp_path=tmp_path,
                     stdin=ELEVATORS.read_text())
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == whole.stdout
    assert streamed.stderr.strip().startswith("8064 rows scored as they arrived")


def test_a_followed_file_is_scored_as_lines_arrive_and_across_rotation(tmp_path):
    version = trained(tmp_path)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    log, out = tmp_path / "live.csv", tmp_path / "scored.csv"
    log.write_text(header + "".join(rows[:1000]))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}"}
    process = subprocess.Popen([sys.executable, "-m", "app", "stream", str(log), "--follow",
                                "--model", version, "--out", str(out)], env=env, cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True)

    def scored_rows(expected: int) -> pd.DataFrame:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size:
                frame = pd.read_csv(out)
                if len(frame) >= expected:
                    return frame
            time.sleep(0.1)
        raise AssertionError(f"{expected} rows were not scored in time: {process.stderr}")

    try:
        scored_rows(1000)
        with log.open("a") as handle:  # appended in two bursts, the second half a line
            handle.write("".join(rows[1000:3000]) + rows[3000][:10])
            handle.flush()
            time.sleep(0.5)
            handle.write(rows[3000][10:])
        scored_rows(3001)
        log.rename(tmp_path / "live.csv.1")  # rotation: a new file under the same name
        (tmp_path / "live.new").write_text(header + "".join(rows[3001:]))
        (tmp_path / "live.new").rename(log)
        got = scored_rows(len(rows))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    whole = vigil("score", ELEVATORS, "--model", version, tmp_path=tmp_path)
    expected = pd.read_csv(io.StringIO(whole.stdout))
    pd.testing.assert_frame_equal(got, expected)


def test_a_stream_whose_first_batch_is_one_row(tmp_path):
    version = trained(tmp_path)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}"}
    process = subprocess.Popen([sys.executable, "-m", "app", "stream", "-", "--model", version],
                               env=env, cwd=tmp_path, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write(lines[0] + lines[1])
    process.stdin.flush()
    time.sleep(1.0)  # a batch of its own
    out, err = process.communicate("".join(lines[2:]), timeout=120)
    assert process.returncode == 0, err
    whole = vigil("score", ELEVATORS, "--model", version, tmp_path=tmp_path)
    assert out == whole.stdout
