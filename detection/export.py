"""Write scored rows as CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from detection.threads import THREADS

CHUNK_ROWS = 100_000
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would read as a formula with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose header and text cells cannot start a formula; numbers stay numbers."""
    out = frame.copy()
    out.columns = [neutralise(str(name)) for name in out.columns]
    for name in out.columns:
        column = out[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            text = column.astype("string")
            risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool)
            if risky.any():
                out[name] = text.where(~risky, "'" + text)
    return out


def arrow_table(frame: pd.DataFrame, *, index: bool = False) -> pa.Table:
    """``frame`` as an Arrow table (``index``: with its index); a column mixing numbers
    and text is kept as the text it was read as."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=index)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = [c for c, kind in frame.dtypes.items() if pd.api.types.is_object_dtype(kind)]
        return pa.Table.from_pandas(frame.astype({c: "string" for c in mixed}),
                                    preserve_index=index)


def _csv_bytes(chunk: pd.DataFrame, header: bool) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    options = pa_csv.WriteOptions(include_header=header, quoting_style="needed")
    pa_csv.write_csv(arrow_table(safe_frame(chunk)), sink, write_options=options)
    return sink.getvalue()


def write_csv(frame: pd.DataFrame, out: BinaryIO, chunk_rows: int = CHUNK_ROWS, *,
              header: bool = True) -> None:
    """Stream ``frame`` as UTF-8 CSV to a binary stream in chunks, formula-safe
    (``header=False``: rows only, to continue a file).

    Chunks are formatted in ``THREADS`` threads (formatting numbers is most of the
    work) and written in order as they are done; at most ``THREADS + 1`` wait in memory.
    """
    with ThreadPoolExecutor(THREADS) as pool:
        pending: deque = deque()
        for start in range(0, max(len(frame), 1), chunk_rows):
            chunk = frame.iloc[start:start + chunk_rows]
            pending.append(pool.submit(_csv_bytes, chunk, header and start == 0))
            if len(pending) > THREADS:
                out.write(pending.popleft().result())
        while pending:
            out.write(pending.popleft().result())
