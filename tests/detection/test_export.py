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
