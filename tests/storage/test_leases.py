"""One writer a live stream: the lease, and batches that never vanish in silence."""

import pandas as pd
import pytest

from storage import leases, live
from storage.errors import StreamConflictError
from storage.runs import RunToSave

ELSEWHERE = leases.Writer("vigil stream (pid 1 on another-host, ab12cd34)", "another-host", 1)


def batch(rows: int) -> RunToSave:
    empty = pd.DataFrame(columns=["row_number", "event_time", "entity", "anomaly_score",
                                  "severity", "reasons", "data"])
    return RunToSave(source_name="lifts", file_sha256="", profile="sensor",
                     detector="isolation_forest", model_version="v1", parameters={},
                     threshold=50.0, threshold_note="", total_rows=rows, anomalies=empty)


def test_a_held_lease_refuses_another_writer_until_it_expires(engine):
    me = leases.Writer.this_process("vigil stream")
    leases.acquire(engine, source="lifts", writer=ELSEWHERE)
    with pytest.raises(StreamConflictError, match="is being written by vigil stream "
                                                  r"\(pid 1 on another-host"):
        leases.acquire(engine, source="lifts", writer=me)
    leases.acquire(engine, source="lifts", writer=ELSEWHERE, seconds=-1)  # it lapsed
    leases.acquire(engine, source="lifts", writer=me)
    with pytest.raises(StreamConflictError):
        leases.acquire(engine, source="lifts", writer=ELSEWHERE)
    leases.release(engine, source="lifts", writer=me)
    leases.acquire(engine, source="lifts", writer=ELSEWHERE)


def test_a_lease_of_a_process_gone_from_this_host_is_free_at_once(engine):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    me = leases.Writer.this_process("vigil stream")
    dead = leases.Writer("vigil stream (dead)", me.host, int(gone.stdout))
    leases.acquire(engine, source="lifts", writer=dead)
    leases.acquire(engine, source="lifts", writer=me)  # kill -9, then a restart


def test_a_batch_is_stored_only_by_the_writer_and_only_after_the_checkpoint(engine):
    me = leases.Writer.this_process("vigil stream")
    with pytest.raises(StreamConflictError, match="does not hold the stream"):
        live.append(engine, source="lifts", writer=me, batch=batch(10), start=0, end=10,
                    carried=b"")
    leases.acquire(engine, source="lifts", writer=me)
    live.append(engine, source="lifts", writer=me, batch=batch(10), start=0, end=10,
                carried=b"")
    for start in (0, 5, 20):  # resent, overlapping, leaving a gap: refused in words
        with pytest.raises(StreamConflictError, match="has 10 rows stored; a batch of rows"):
            live.append(engine, source="lifts", writer=me, batch=batch(10), start=start,
                        end=start + 10, carried=b"")
    assert live.checkpoint(engine, source="lifts").position == 10
    leases.release(engine, source="lifts", writer=me)
    leases.acquire(engine, source="lifts", writer=ELSEWHERE)
    with pytest.raises(StreamConflictError, match="is being written by"):
        live.append(engine, source="lifts", writer=me, batch=batch(10), start=10, end=20,
                    carried=b"")


def test_a_model_activated_mid_stream_moves_the_checkpoint_to_its_run(engine):
    """Its new rows went to a new run while the checkpoint kept the old run's id: Live
    showed 0 flagged, and a restart's catch-up looked at the old run."""
    from dataclasses import replace

    me = leases.Writer.this_process("vigil stream")
    leases.acquire(engine, source="lifts", writer=me)
    first = live.append(engine, source="lifts", writer=me, batch=batch(10), start=0, end=10,
                        carried=b"")
    later = live.append(engine, source="lifts", writer=me,
                        batch=replace(batch(10), model_version="v2"), start=10, end=20,
                        carried=b"")
    assert later.run_id != first.run_id
    assert live.checkpoint(engine, source="lifts").run_id == later.run_id
    streams = live.streams(engine)
    assert streams["run_id"].tolist() == [later.run_id]
