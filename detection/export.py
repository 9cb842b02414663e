"""Write scored rows as CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

from typing import TextIO

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would read as a formula with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot start a formula; numbers stay numbers."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            text = column.astype("object")
            risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            if risky.any():
                out[name] = text.where(~risky, "'" + text.astype(str))
    return out


def write_csv(frame: pd.DataFrame, out: TextIO, chunk_rows: int = 100_000) -> None:
    """Stream ``frame`` to ``out`` in chunks, formula-safe, without the index."""
    for start in range(0, max(len(frame), 1), chunk_rows):
        chunk = safe_frame(frame.iloc[start:start + chunk_rows])
        chunk.to_csv(out, index=False, header=start == 0, lineterminator="\n")
