"""Write scored rows as CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

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
            text = column.astype("string")
            risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool)
            if risky.any():
                out[name] = text.where(~risky, "'" + text)
    return out


def _arrow(chunk: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(chunk, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A column mixing numbers and text: write it as the text it was read as.
        mixed = chunk.select_dtypes(include="object").columns
        return pa.Table.from_pandas(chunk.astype({c: "string" for c in mixed}),
                                    preserve_index=False)


def write_csv(frame: pd.DataFrame, out: BinaryIO, chunk_rows: int = 100_000) -> None:
    """Stream ``frame`` as UTF-8 CSV to a binary stream in chunks, formula-safe."""
    for start in range(0, max(len(frame), 1), chunk_rows):
        chunk = _arrow(safe_frame(frame.iloc[start:start + chunk_rows]))
        options = pa_csv.WriteOptions(include_header=start == 0, quoting_style="needed")
        pa_csv.write_csv(chunk, out, write_options=options)
