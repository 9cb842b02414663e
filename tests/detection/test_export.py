"""Scored rows written as CSV: every row once, in order, formula-safe."""

import io

import numpy as np
import pandas as pd
import pytest

from detection.export import write_csv


def _written(frame: pd.DataFrame, chunk_rows: int) -> bytes:
    out = io.BytesIO()
    write_csv(frame, out, chunk_rows=chunk_rows)
    return out.getvalue()


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 10_000])
def test_chunks_are_written_in_order_with_one_header(chunk_rows):
    n = 1_000
    frame = pd.DataFrame({
        "row": np.arange(n),
        "value": np.linspace(-1.5, 2.5, n),
        "name": [f"sensor {i % 13}" for i in range(n)],
    })
    data = _written(frame, chunk_rows)
    assert data.count(b"row") == 1
    back = pd.read_csv(io.BytesIO(data))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    # Chunk size changes nothing in the bytes.
    assert data == _written(frame, 10_000)


def test_formula_cells_are_neutralised_in_every_chunk():
    frame = pd.DataFrame({"user": ["=cmd|' /C calc'!A0", "bob", "+1+1", "@SUM(A1)"] * 3,
                          "score": [-5.0, 1.0, 2.0, 3.0] * 3})
    back = pd.read_csv(io.BytesIO(_written(frame, 5)))
    assert back["user"].tolist() == ["'=cmd|' /C calc'!A0", "bob", "'+1+1", "'@SUM(A1)"] * 3
    # Numbers stay numbers: a negative score is not a formula.
    assert back["score"].tolist() == [-5.0, 1.0, 2.0, 3.0] * 3


def test_an_empty_frame_writes_its_header():
    assert _written(pd.DataFrame({"a": [], "b": []}), 100).decode().strip() == '"a","b"'


def test_formula_column_headers_are_neutralised():
    frame = pd.DataFrame({'=HYPERLINK("http://x","y")': ["a"], "@SUM(A1)": [1.0], "-x": [2]})
    header = _written(frame, 100).decode().splitlines()[0]
    assert header == '"\'=HYPERLINK(""http://x"",""y"")","\'@SUM(A1)","\'-x"'


def test_attachment_headers_from_the_original_row_are_neutralised():
    from alerts.message import attachment_frame

    anomalies = pd.DataFrame({"run_id": [1], "row_number": [1], "event_time": [None],
                              "entity": ["u"], "anomaly_score": [90.0], "severity": ["high"],
                              "reasons": ["r"], "data": [{"=cmd()": "v", "+evil": 1}]})
    out = io.BytesIO()
    write_csv(attachment_frame(anomalies), out)
    header = out.getvalue().decode().splitlines()[0]
    assert header.endswith('"\'=cmd()","\'+evil"')
