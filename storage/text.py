"""Text from uploaded files, made storable on every database.

PostgreSQL refuses the NUL character in text and JSON, and ``varchar(255)`` columns
refuse longer values: either would fail a whole save (and jam the journal). Values are
cleaned once, when a run is built for storing: NUL removed, over-long names cut with a
visible marker.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

NAME_CHARS = 255  # the varchar columns: entity, file and column names, reviewer
CUT = "…"


def clean(value: str | None, limit: int | None = None) -> str | None:
    """``value`` without NUL characters, cut to ``limit`` characters with a marker."""
    if value is None:
        return None
    value = str(value).replace("\x00", "")
    if limit is not None and len(value) > limit:
        value = value[:limit - len(CUT)] + CUT
    return value


def clean_column(values: pd.Series, limit: int | None = None) -> pd.Series:
    """:func:`clean` over a column of text, missing values kept missing."""
    text = values.astype("string").str.replace("\x00", "", regex=False)
    if limit is not None:
        text = text.where(~(text.str.len() > limit).fillna(False),
                          text.str.slice(0, limit - len(CUT)) + CUT)
    return text


def clean_json(value: object) -> object:
    """Strings in a JSON-ready value (keys included) without NUL characters."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def json_safe(value: object) -> object:
    """A cell as JSON: NaN and NaT become null, timestamps ISO text, numpy scalars Python,
    text without NUL characters (PostgreSQL refuses them)."""
    if isinstance(value, str):
        return clean(value)
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
