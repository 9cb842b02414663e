"""Errors raised by the detection package.

Every message says what was wrong and where (column, data rows), so the dashboard and
the CLI can show it to the user as it is. Row numbers count data rows from 1: row 1 is
the first line after the header.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_ROWS_NAMED = 5


def describe_rows(rows: Iterable[int]) -> str:
    """Return "rows 3, 8, 9" (at most five numbers, then "and N more")."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_NAMED])
    more = len(rows) - MAX_ROWS_NAMED
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")


class DetectionError(ValueError):
    """Base class: bad input or a model that does not fit the input."""


class EmptyFileError(DetectionError):
    """The file has no content at all, or a header and no data rows."""


class MalformedCsvError(DetectionError):
    """The text is not well-formed CSV: a line with extra values, an unclosed quote."""


class DuplicateColumnError(DetectionError):
    """Two columns share one name."""


class NoNumericColumnError(DetectionError):
    """Nothing the chosen profile could score."""


class TimestampError(DetectionError):
    """A timestamp column holds values that are not dates."""


class ColumnMappingError(DetectionError):
    """A column named by the caller, or needed by the profile, is missing."""


class TooFewRowsError(DetectionError):
    """Not enough rows to fit a model."""


class ModelMismatchError(DetectionError):
    """A saved model does not fit the file it is asked to score."""


class ParameterError(DetectionError):
    """A detector or pipeline parameter is out of its allowed range."""
