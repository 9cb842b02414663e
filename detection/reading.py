"""Read an uploaded CSV into a DataFrame: encoding, delimiter and header checks."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from detection.errors import DuplicateColumnError, EmptyFileError, MalformedCsvError

DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
DECODE_SLICE = 8 * 1024 * 1024
_VISIBLE = re.compile(rb"\S")
# Numbers as spreadsheets write them: perhaps with a percent sign ("45%", "12.5 %",
# read as 45 and 12.5) and, where values are not separated by commas, with a decimal
# comma and dots between thousands, as in much of Europe ("10,5", "-0,75", "1.200,5").
_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)"
_COMMA_NUMBER = r"[+-]?(\d{1,3}(\.\d{3})+(,\d*)?|\d+(,\d*)?|,\d+)"
_PERCENT = r"(\s*%)?"


def _written(number: str) -> str:
    """A cell holding ``number`` as spreadsheets write it: spaces, perhaps a percent sign."""
    return rf"\s*{number}{_PERCENT}\s*"


CHECK_CELLS = 1000  # a column's first cells are checked before the whole column
UNITS_LINES = 3  # lines under a header that may name units ("Deg C") or kinds ("Avg")
# A date written with day, month and year as numbers, then perhaps a time of day, AM/PM
# and a zone: "2024-03-01 08:00:00", "01.03.2024 08:00", "3/1/2024 8:00:00 PM UTC".
DATE_TEXT = (r"\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
             r"(?: ?[AaPp][Mm])?(?: ?(?:Z|UTC|[+-]\d{2}:?\d{2}))?)?\s*")

Source = str | Path | bytes | BinaryIO


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def _encoding(slices: Iterable[bytes]) -> str:
    """UTF-8 (with or without BOM) when every byte decodes as UTF-8, else latin-1.

    Checked in slices, so a file of hundreds of MB is never held a second time as text.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for piece in slices:
            decoder.decode(piece)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        # latin-1 maps every byte, so it never fails; it is the usual spreadsheet export.
        return "latin-1"
    return "utf-8-sig"


def _head(data: bytes, encoding: str) -> str:
    """The first SAMPLE_BYTES of the file as text (a character cut at the end dropped)."""
    return data[:SAMPLE_BYTES].decode(encoding, errors="ignore")


def sniff_delimiter(sample: str) -> str:
    """Pick the delimiter among , ; tab | from the first lines of the file."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    # The usual file: one candidate in the header, as often on every line after it (no
    # quoting to weigh up). The sniffer's answer then, in a fraction of its time.
    used = [d for d in DELIMITERS if d in lines[0]]
    if len(used) == 1 and all(line.count(used[0]) == lines[0].count(used[0])
                              for line in lines[1:] if '"' not in line):
        return used[0]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on single-column files and ragged quoting: count instead.
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _malformed(exc: pd.errors.ParserError, delimiter: str,
               names: list[str] | None) -> MalformedCsvError:
    """pandas' tokenizer error in the words of someone who exported the file."""
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = fields.groups()
        return MalformedCsvError(
            f"line {line} of the file has {saw} values but the "
            f"{'header names' if names is None else 'first line has'} {expected} "
            f"columns: a value that contains {delimiter!r} must be in double quotes"
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:  # pandas counts lines from 0 here
        return MalformedCsvError(
            f"the quoted value that starts on line {int(quote.group(1)) + 1} of the file is "
            'never closed: a double quote (") is missing'
        )
    return MalformedCsvError(f"the file is not well-formed CSV ({text})")


def _header(raw: BinaryIO, encoding: str, delimiter: str) -> list[str]:
    """The column names of the first record, however long it is (the bytes are decoded
    lazily: only the header is read)."""
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    try:
        header = next(csv.reader(text, delimiter=delimiter))
    except csv.Error as exc:  # a name beyond the csv module's field size limit
        raise MalformedCsvError(f"the header line cannot be read: {exc}") from None
    return [name.strip() for name in header]


def header_names(header: list[str]) -> list[str] | None:
    """Names for the columns of a file without a header line, whose first line already
    holds values (every cell a number or a date: no column is named that way):
    ``timestamp`` for the first column of dates, ``column_<n>`` for the others. None
    for a file whose first line names its columns."""
    kinds = [_value_kind(cell) for cell in header]
    if not header or None in kinds:
        return None
    dates = [i for i, kind in enumerate(kinds) if kind == "date"]
    return ["timestamp" if dates and i == dates[0] else f"column_{i + 1}"
            for i in range(len(header))]


def _value_kind(cell: str) -> str | None:
    """"number" or "date" for a cell that reads as one; None for a name. A date is
    written with its day, month and year (pandas also reads names such as ``T1`` or
    ``5m`` as dates)."""
    if not any(c.isdigit() for c in cell):
        return None
    try:
        float(cell)
        return "number"
    except ValueError:
        pass
    if not re.fullmatch(DATE_TEXT, cell):
        return None
    try:
        pd.Timestamp(cell)
        return "date"
    except (ValueError, TypeError, OverflowError):
        return None


def headerless_warning(names: list[str]) -> str:
    shown = names if len(names) <= 4 else [*names[:2], "...", names[-1]]
    return (f"the file has no header line (its first line holds values): its columns are "
            f"read as {', '.join(shown)}")


def holds_values(line: bytes) -> bool:
    """Whether a CSV's first line holds values rather than column names."""
    encoding = _encoding([line])
    delimiter = sniff_delimiter(_head(line, encoding))
    return header_names(_header(io.BytesIO(line), encoding, delimiter)) is not None


PARQUET_MAGIC = b"PAR1"


def is_parquet(source: Source) -> bool:
    """Whether ``source`` (a path, bytes or a seekable binary file) is a Parquet file: by
    its first bytes, whatever its name says."""
    if isinstance(source, bytes):
        return source[:4] == PARQUET_MAGIC
    if isinstance(source, str | Path):
        with open(source, "rb") as raw:
            return raw.read(4) == PARQUET_MAGIC
    where = source.tell()
    head = source.read(4)
    source.seek(where)
    return head == PARQUET_MAGIC


def _parquet_file(source: Source):
    import pyarrow.parquet as pq

    raw = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return pq.ParquetFile(raw)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise MalformedCsvError(f"the Parquet file cannot be read: {exc}") from None


def _parquet_frame(table, before: int) -> pd.DataFrame:
    """A Parquet table's rows as :func:`read_csv` gives a CSV's: columns with their own
    types (no text parsed), names stripped, the index the data row numbers from 1."""
    frame = table.to_pandas(ignore_metadata=True, split_blocks=True, self_destruct=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(set(frame.columns)) < len(frame.columns):
        seen = [c for c in frame.columns if list(frame.columns).count(c) > 1]
        raise DuplicateColumnError(f"column {seen[0]!r} appears more than once")
    frame.index = pd.RangeIndex(before + 1, before + len(frame) + 1, name="row")
    return frame.dropna(how="all")


def read_parquet(source: Source) -> pd.DataFrame:
    """Read a Parquet file (path, bytes or binary file) as :func:`read_csv` reads a CSV."""
    frame = _parquet_frame(_parquet_file(source).read(), 0)
    if frame.empty:
        raise EmptyFileError("the Parquet file has no data rows")
    return frame


def column_names(path: str | Path) -> list[str]:
    """A file's column names as :func:`read_table` would name them, from its header (a
    Parquet file's schema) alone, its rows unread: what telling its profile by its
    columns needs, in milliseconds whatever the file's size or width. The encoding is
    the one its first bytes show."""
    if is_parquet(path):
        with open(path, "rb") as raw:
            return [str(name).strip() for name in _parquet_file(raw).schema_arrow.names]
    with open(path, "rb") as raw:
        head = raw.read(SAMPLE_BYTES)
        if not head:
            return []
        encoding = _encoding([head])
        delimiter = sniff_delimiter(_head(head, encoding))
        raw.seek(0)
        try:
            header = _header(raw, encoding, delimiter)
        except UnicodeDecodeError:  # a header longer than the head, not UTF-8 beyond it:
            raw.seek(0)  # the file is not UTF-8, and is read as latin-1 (_encoding)
            header = _header(raw, "latin-1", delimiter)
    return header_names(header) or header


def read_table(source: Source) -> pd.DataFrame:
    """A CSV or a Parquet file, told apart by its first bytes."""
    if not isinstance(source, str | Path | bytes):
        source = _read_bytes(source)
    return read_parquet(source) if is_parquet(source) else read_csv(source)


def read_csv(source: Source) -> pd.DataFrame:
    """Read a CSV from a path, bytes or a binary file object.

    Columns keep their names and order; values are parsed by pandas' type inference. A
    file whose first line holds values rather than names (:func:`header_names`) is read
    without a header, its columns named ``timestamp`` and ``column_<n>``, and the frame's
    ``attrs["warnings"]`` says so.

    Raises
    ------
    EmptyFileError
        The file is empty or has a header and no data rows.
    DuplicateColumnError
        Two columns share a name.
    MalformedCsvError
        A line has more values than the header, or a quote is never closed.
    """
    data = _read_bytes(source)
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if not _VISIBLE.search(data, start):
        raise EmptyFileError("the file is empty: expected a header line and data rows")
    view = memoryview(data)
    encoding = _encoding(view[i:i + DECODE_SLICE] for i in range(0, len(view), DECODE_SLICE))
    delimiter, names = _layout(io.BytesIO(data), data[:SAMPLE_BYTES], encoding)
    # pandas decodes the bytes itself, faster than parsing the decoded text.
    try:
        frame = pd.read_csv(io.BytesIO(data), encoding=encoding, sep=delimiter,
                            skipinitialspace=True, low_memory=False,
                            **_header_options(names))
    except pd.errors.ParserError as exc:
        raise _malformed(exc, delimiter, names) from None
    frame = _numbered(frame, 0, names, delimiter)
    if frame.empty:
        raise EmptyFileError("the file has a header but no data rows")
    return frame


def read_pieces(source: str | Path | bytes, rows: int) -> Iterator[pd.DataFrame]:
    """Read a CSV file (a path, or bytes already in memory) ``rows`` rows at a time, as
    :func:`read_csv` would read it whole (same checks and messages; row numbers continue
    from piece to piece), never holding more than a piece of parsed rows: for files
    larger than memory, and uploads many times smaller than what reading them whole takes.

    Type inference works per piece: a column that is numbers in one piece and text in
    another is read as each piece has it (the scoring treats text in a numeric column
    as missing either way).
    """
    if is_parquet(source):
        yield from _parquet_pieces(source, rows)
        return

    def opened() -> BinaryIO:
        return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")

    with opened() as raw:
        head = raw.read(SAMPLE_BYTES)
        start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        if not _VISIBLE.search(head, start) and not _has_visible(raw):
            raise EmptyFileError("the file is empty: expected a header line and data rows")
        raw.seek(0)
        encoding = _encoding(iter(lambda: raw.read(DECODE_SLICE), b""))
        raw.seek(0)
        delimiter, names = _layout(raw, head, encoding)
    done = 0
    try:
        with opened() as raw, pd.read_csv(raw, encoding=encoding, sep=delimiter,
                                          skipinitialspace=True, low_memory=False,
                                          chunksize=rows, **_header_options(names)) as reader:
            for piece in reader:
                done += len(piece)
                piece = _numbered(piece, done - len(piece), names, delimiter)
                if not piece.empty:
                    yield piece
    except pd.errors.ParserError as exc:
        raise _malformed(exc, delimiter, names) from None
    if done == 0:
        raise EmptyFileError("the file has a header but no data rows")


def _parquet_pieces(source: str | Path | bytes, rows: int) -> Iterator[pd.DataFrame]:
    """A Parquet file ``rows`` rows at a time (its own types, row numbers continuing)."""
    done = 0
    import pyarrow as pa

    for batch in _parquet_file(source).iter_batches(batch_size=rows):
        piece = _parquet_frame(pa.Table.from_batches([batch]), done)
        done += batch.num_rows
        if not piece.empty:
            yield piece
    if done == 0:
        raise EmptyFileError("the Parquet file has no data rows")


def _has_visible(raw: BinaryIO) -> bool:
    return any(_VISIBLE.search(piece) for piece in iter(lambda: raw.read(DECODE_SLICE), b""))


def _layout(raw: BinaryIO, head: bytes, encoding: str) -> tuple[str, list[str] | None]:
    """The delimiter, once the header is checked for duplicate names, and the column
    names of a file without a header line."""
    delimiter = sniff_delimiter(_head(head, encoding))
    header = _header(raw, encoding, delimiter)
    names = header_names(header)
    if names:
        return delimiter, names
    duplicates = [name for name, n in Counter(header).items() if n > 1]
    if duplicates:
        raise DuplicateColumnError(
            f"column {duplicates[0]!r} appears {Counter(header)[duplicates[0]]} times in the "
            "header: rename one so every column has its own name"
        )
    return delimiter, None


def every_cell_matches(column: pd.Series, pattern: str) -> bool:
    """Whether ``column`` holds text whose every cell (missing ones aside) matches
    ``pattern`` whole; the first ``CHECK_CELLS`` are tried first, so a column of other
    text costs little. A column of numbers, or of nothing, does not."""
    def matches(cells: pd.Series) -> bool:
        return bool(cells.astype("string").str.fullmatch(pattern).all())

    head = column.iloc[:CHECK_CELLS].dropna()
    if head.empty:  # its first cells are missing: the first present ones
        head = column.dropna().iloc[:CHECK_CELLS]
    if head.empty or not isinstance(head.iloc[0], str) or not matches(head):
        return False
    return matches(column.dropna())


def _read_written_numbers(frame: pd.DataFrame, delimiter: str) -> None:
    """Text columns whose every cell is a number as spreadsheets write it become numbers.
    A decimal comma only where values are not separated by commas: there a quoted
    "1,000" is a thousand."""
    forms = [(_NUMBER, False)] if delimiter == "," else [(_COMMA_NUMBER, True), (_NUMBER, False)]
    for i, (_, column) in enumerate(frame.items()):
        for number, comma in forms:
            if every_cell_matches(column, _written(number)):
                text = column.astype("string").str.replace("%", "", regex=False).str.strip()
                if comma:
                    text = text.str.replace(".", "", regex=False).str.replace(",", ".",
                                                                             regex=False)
                numbers = pd.to_numeric(text)  # whole numbers stay whole: row numbers count
                whole = pd.api.types.is_integer_dtype(numbers) and not numbers.isna().any()
                frame.isetitem(i, numbers.astype("int64" if whole else "float64"))
                break


def _units_lines(frame: pd.DataFrame) -> int:
    """How many of the first lines under the header name units or kinds of reading
    ("Deg C", "Volts", "Avg": dataloggers write them) rather than values: lines with
    neither a number nor a date in them, above a column of dates and a column of numbers
    (a time series' first reading with "ERR" in it has its date)."""
    count = 0
    for _, line in frame.iloc[:UNITS_LINES].iterrows():
        cells = line.dropna().astype("string")
        if cells.empty or cells.str.fullmatch(rf"{_written(_NUMBER)}|{DATE_TEXT}").any():
            break
        count += 1
    if count == 0 or count == len(frame):
        return 0
    rest = frame.iloc[count:]
    held = any(not pd.api.types.is_numeric_dtype(frame[c])
               and every_cell_matches(rest[c], _written(_NUMBER)) for c in frame.columns)
    dated = any(every_cell_matches(rest[c], DATE_TEXT) for c in frame.columns)
    return count if held and dated else 0


def _header_options(names: list[str] | None) -> dict:
    return {} if names is None else {"header": None, "names": names}


def _numbered(frame: pd.DataFrame, before: int, names: list[str] | None,
              delimiter: str) -> pd.DataFrame:
    """Names stripped, the index the data row numbers users see in messages (row 1
    follows the header, or is the first line of a file without one), numbers written
    as spreadsheets write them read as numbers, rows with no value at all left out."""
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(before + 1, before + len(frame) + 1, name="row")
    warnings = [headerless_warning(names)] if names is not None else []
    units = _units_lines(frame) if before == 0 and names is None else 0
    if units:
        said = ", ".join(repr(str(v)) for v in frame.iloc[:units].stack().unique()[:4])
        warnings.append(f"row(s) {', '.join(map(str, frame.index[:units]))} under the header "
                        f"name units or kinds of reading ({said}), not values: skipped")
        frame = frame.iloc[units:].copy()
    _read_written_numbers(frame, delimiter)
    frame = frame.dropna(how="all")
    if warnings:
        frame.attrs["warnings"] = warnings
    return frame
