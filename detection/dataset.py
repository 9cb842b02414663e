"""Turn a raw frame into a validated Dataset: profile, roles, timestamps, metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property

import bottleneck as bn
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from detection.columns import (
    LABELS,
    ROW_NUMBERS,
    SCORE_COLUMNS,
    SERIES_NAMES,
    SYNONYMS,
    ColumnMapping,
    map_columns,
    normalise,
)
from detection.errors import (
    ColumnMappingError,
    NoNumericColumnError,
    ParameterError,
    TimestampError,
    describe_rows,
)
from detection.names import PROFILES
from detection.reading import CHECK_CELLS, DATE_TEXT, every_cell_matches

# A column with text cells counts as numeric (the text cells missing, with a warning)
# when more than this share of its filled cells are numbers: `ERR` in one row of seven,
# `x` in one row of three.
NUMERIC_SHARE = 0.5
# Epoch times' unit by the median's magnitude, and the last time each unit can hold.
EPOCH_UNITS = (("ns", 1e17), ("us", 1e14), ("ms", 1e11))
LAST_EPOCH = {"s": 9.2e9, "ms": 9.2e12, "us": 9.2e15, "ns": 9.2e18}

# Numeric columns of a login file that name things rather than measure them: "id",
# "session_id", "requestId", "port", "pid", "Sign-in error code", "errorCode" (a code
# 50126 is no larger than a code 0: as a measurement, every failure was "unusual").
IDENTIFIER = re.compile(r"(?i:(^|[\s_\-.])(id|port|pid|uid|code|number|no|nr)$)"
                        r"|[a-z](Id|ID|Code|Number)$")

# Outcomes of a login. A cell is one of these words, or holds one among its words ("Login
# failure", "FAILURE: INVALID_CREDENTIALS"), a failure word first. An interrupted sign-in
# (Entra ID's, at a second factor, say) did not succeed: it makes no place familiar.
TRUE_WORDS = {"true", "1", "yes", "y", "success", "succeeded", "successful", "ok", "pass",
              "passed", "t", "allow", "allowed", "accepted", "granted"}
FALSE_WORDS = {"false", "0", "no", "n", "failure", "failed", "fail", "error", "denied", "f",
               "deny", "blocked", "rejected", "invalid", "unsuccessful", "interrupted",
               "locked", "lockout"}


@dataclass
class Dataset:
    """A validated input: the file's frame plus what the detectors need from it.

    ``frame`` keeps every column of the file in file order; its index is the data row
    number (1 = first line after the header). All other attributes share that index.
    """

    frame: pd.DataFrame
    profile: str
    mapping: ColumnMapping
    time: pd.Series | None = None
    entity: pd.Series | None = None
    metrics: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    # Metric columns with one value throughout: nothing to learn from when fitting, but a
    # model trained where they varied still scores them (a sensor stuck all file long).
    constant: pd.DataFrame | None = None
    # Login files: values analysts marked as normal for the file's users (columns user,
    # key, value; keys as detection.features.login.NOVELTY), counted as known history.
    known: pd.DataFrame | None = None
    # Sensor files: the metric cells the file left blank (True), for the metrics with
    # any; filled from the reading before, which reasons then do not quote as a reading.
    blank: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def entity_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """An integer code per row and the entity names ("" alone when there is none)."""
        if self.entity is None:
            return np.zeros(len(self.frame), dtype="int64"), np.array([""], dtype=object)
        codes, names = pd.factorize(self.entity)
        return codes, names.to_numpy(dtype=object)

    @cached_property
    def readings(self) -> tuple[np.ndarray, np.ndarray]:
        """Sensor files: the positions of the distinct readings in (entity, time) order,
        and each row's place among them. A row with the entity, time and metrics of an
        earlier row is that reading again (a file exported twice, two exports that
        overlap), not a second one: counted twice, every reading would look like a sensor
        holding still."""
        codes, time = self.entity_codes[0], self.time.to_numpy()
        order = np.lexsort((time, codes))
        place = np.empty(order.size, dtype="int64")
        after = order[1:]
        same = (codes[after] == codes[order[:-1]]) & (time[after] == time[order[:-1]])
        if not same.any():
            place[order] = np.arange(order.size)
            return order, place
        keys = pd.DataFrame(self.metrics.to_numpy(dtype="float64")[order])
        keys["entity"], keys["time"] = codes[order], time[order]
        # Numbered by first appearance: reading k is the k-th distinct one in order.
        group = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
        place[order] = group
        return order[np.unique(group, return_index=True)[1]], place

    def with_constant_metrics(self) -> Dataset:
        """This dataset with its constant columns back among the metrics (in file order),
        for scoring with a model fitted where they varied."""
        if self.constant is None or self.constant.empty:
            return self
        both = pd.concat([self.metrics, self.constant], axis=1)
        metrics = both[[c for c in self.frame.columns if c in both.columns]]
        names = ", ".join(repr(c) for c in self.constant.columns)
        warnings = [CONSTANT_NOTE.format(names=names) if w.startswith("constant column(s)")
                    else w for w in self.warnings]
        return replace(self, metrics=metrics, constant=None, warnings=warnings)

    def rows(self, keep: np.ndarray) -> Dataset:
        """The dataset of the rows ``keep`` (a boolean mask) picks."""
        def part(values):
            return None if values is None else values[keep]
        return replace(self, frame=self.frame[keep], time=part(self.time),
                       entity=part(self.entity), metrics=part(self.metrics),
                       constant=part(self.constant), blank=part(self.blank))

    def column(self, role: str) -> pd.Series | None:
        name = getattr(self.mapping, role)
        return None if name is None else self.frame[name]


# Share of a sensor file's rows that must share their time with another row before a
# column telling them apart is read as the machine (``_entity_by_layout``).
SHARED_TIMES = 0.5
RECUR = 3  # rows of each of its values, at least, on average

CONSTANT_NOTE = ("constant column(s) {names}: the same value throughout, scored against the "
                 "model's baseline")


def _naive_iso(text: pd.Series) -> pd.Series | None:
    """Text that is all ISO 8601 without a zone ("2024-01-01 08:00:00"), parsed by Arrow
    (ten times faster than pandas' parser, to the same instants); None for anything else."""
    try:
        parsed = pc.cast(pa.array(text.array), pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index)


# Loggers and spreadsheets export a reading's date and its time of day apart ("Date",
# "Time"): a column of times of day beside a column named so is joined to it.
TIME_OF_DAY = r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*"
DATE_NAMES = ("date", "day")


def row_times(frame: pd.DataFrame, column: str) -> pd.Series:
    """Each row's time from its timestamp ``column``: where that holds times of day
    only, joined to the date in the column beside it named ``date`` or ``day``."""
    values = frame[column]
    date = _date_beside(frame, column)
    if date is None:
        return parse_timestamps(values, column)
    joined = frame[date].astype("string").str.strip() + " " + values.astype("string").str.strip()
    return parse_timestamps(joined, f"{date} {column}")


def _date_beside(frame: pd.DataFrame, column: str) -> str | None:
    dates = [c for c in frame.columns if c != column and normalise(c) in DATE_NAMES]
    return dates[0] if dates and every_cell_matches(frame[column], TIME_OF_DAY) else None


def _day_first(text: pd.Series) -> bool:
    """Whether dates written with the day and month as numbers (01.02.2025, 01/02/2025)
    put the day first: the column's own dates tell where one of the two passes 12; where
    none does, dots put the day first (as in Europe) and slashes the month (as pandas)."""
    pattern = r"^\s*(\d{1,2})([./-])(\d{1,2})[./-]\d{2,4}\b"
    if text.iloc[:CHECK_CELLS].str.extract(pattern).dropna().empty:
        return False  # ISO dates, names of months, epochs: a file keeps to one format
    parts = text.str.extract(pattern).dropna()
    first, second = parts[0].astype(int), parts[2].astype(int)
    if (first > 12).any() or (second > 12).any():
        return bool((first > 12).any())
    return parts[1].iloc[0] == "."


def parse_timestamps(values: pd.Series, column: str) -> pd.Series:
    """Parse dates (ISO, common formats, epoch seconds, milli-, micro- or nanoseconds) to
    naive UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):  # a Parquet file's own times
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values):
        # Epoch time as loggers and InfluxDB write it: the unit by the magnitude (today is
        # 1.7e9 seconds, 1.7e18 nanoseconds); a number no unit makes a date is no date.
        size = values.abs().median()
        unit = next((u for u, above in EPOCH_UNITS if size > above), "s")
        within = values.abs() < LAST_EPOCH[unit]
        parsed = pd.to_datetime(values.where(within), unit=unit, errors="coerce")
    else:
        text = values.astype("string").str.strip()
        parsed = _naive_iso(text)
        if parsed is None:
            dayfirst = _day_first(text)
            try:
                parsed = pd.to_datetime(text, utc=True, dayfirst=dayfirst)
            except (ValueError, TypeError):
                # Mixed formats or a few bad cells: parse each value on its own.
                parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed",
                                        dayfirst=dayfirst)
            parsed = parsed.dt.tz_localize(None)
    # Times are held to the nanosecond: from 1677 to 2262 (a year 1500 or 2999 was a
    # traceback).
    outside = (parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max)
    bad = parsed.isna() | outside
    if bad.any():
        raise TimestampError(
            f"column {column!r}: {int(bad.sum())} value(s) are not dates"
            f"{' between the years 1678 and 2261' if outside.any() else ''} "
            f"({describe_rows(values.index[bad])}), for example {values[bad].iloc[0]!r}"
        )
    return parsed.astype("datetime64[ns]")


def parse_success(values: pd.Series, column: str) -> pd.Series:
    """Map success/outcome cells (true/false, 1/0, success/failed, ...) to booleans."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    codes, distinct = pd.factorize(values.astype("string").str.strip().str.lower())
    outcome = np.array([_outcome(word) for word in distinct] + [None], dtype=object)
    result = pd.Series(outcome[codes], index=values.index, dtype="object")
    unknown = result.isna() & values.notna()
    if unknown.any():
        raise ColumnMappingError(
            f"column {column!r}: {int(unknown.sum())} value(s) are neither success nor failure "
            f"({describe_rows(values.index[unknown])}), for example {values[unknown].iloc[0]!r}; "
            "expected true/false, 1/0, success/failed"
        )
    return result.fillna(True).astype(bool)


def _outcome(word: str) -> bool | None:
    if word in FALSE_WORDS or word in TRUE_WORDS:
        return word in TRUE_WORDS
    words = set(re.findall(r"[a-z]{2,}", word))
    return False if words & FALSE_WORDS else True if words & TRUE_WORDS else None


def _timestamp_by_content(frame: pd.DataFrame, mapping: ColumnMapping,
                          warnings: list[str]) -> ColumnMapping:
    """A time column under a name no synonym knows (``Zeit``, ``tid``, ``recorded``):
    the first column of text whose every cell is a date (``DATE_TEXT``)."""
    used = mapping.used()
    for name in frame.columns:
        if name not in used and every_cell_matches(frame[name], DATE_TEXT):
            warnings.append(f"column {name!r} holds dates: it is the rows' timestamp")
            return replace(mapping, timestamp=name)
    return mapping


def _not_measurements(frame: pd.DataFrame, exclude: set[str], warnings: list[str]) -> set[str]:
    """Columns that are no measurements: an earlier scoring's (a file scored
    again moved by 27 points), 0/1 labels of which rows are anomalous (the answer would
    decide the new verdict) and row numbers (a pandas index saved with the file: a
    later file's numbers lie beyond any the model saw)."""
    kinds = {
        "of an earlier scoring ignored: the rows are scored afresh":
            # (Okta's severity, INFO or WARN, is no earlier scoring's)
            lambda name, _: name in SCORE_COLUMNS and SCORE_COLUMNS[0] in frame.columns,
        "ignored: 0/1 labels of which rows are anomalous, not measurements":
            lambda name, column: normalise(name) in LABELS and _zero_one(column),
        "ignored: row numbers, not measurements":
            lambda name, column: (str(name).startswith("Unnamed: ")
                                  or normalise(name) in ROW_NUMBERS) and _counts_rows(column),
    }
    left_out = set()
    for said, test in kinds.items():
        found = [c for c in frame.columns
                 if c not in exclude and c not in left_out and test(c, frame[c])]
        if found:
            warnings.append(f"column(s) {', '.join(map(repr, found))} {said}")
            left_out.update(found)
    return left_out


def _series_column(frame: pd.DataFrame, mapping: ColumnMapping) -> str | None:
    """A long file's column naming each row's metric (``SERIES_NAMES``): text, since a
    number under such a name is a reading ("signal" in dBm)."""
    return next((c for c in frame.columns if c not in mapping.used()
                 and normalise(c) in SERIES_NAMES
                 and not pd.api.types.is_numeric_dtype(frame[c])), None)


def _names_machines(column: pd.Series) -> bool:
    """Text or whole numbers, each value on many rows (a note or an id on every row, a
    counter, tell nothing apart)."""
    if pd.api.types.is_float_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    distinct = column.nunique()
    return distinct >= 2 and column.count() >= RECUR * distinct


def _entity_by_layout(frame: pd.DataFrame, time: pd.Series, series: str | None,
                      exclude: set[str], metrics: pd.DataFrame,
                      warnings: list[str]) -> str | None:
    """A sensor file's column naming each row's machine under a name no synonym knows
    (``unit``, ``pump``, ``Anlage``; ``1``, ``2``, ``3``): the first column, text before
    whole numbers, that tells apart the rows sharing a time, where most rows share one.
    Unknown, every machine's readings were one series, jumping from machine to machine,
    without a word (and a machine's number was a reading)."""
    # (A number is a machine's only beside another reading.) The rows' times, parsed: a
    # logger's Date column beside its times of day is part of them, not a machine.
    named = sorted((c for c in frame.columns if c not in exclude
                    and (c not in metrics.columns or metrics.shape[1] > 1)
                    and _names_machines(frame[c])),
                   key=lambda c: pd.api.types.is_numeric_dtype(frame[c]))
    when = pd.DataFrame({"time": time.to_numpy()}
                        | ({"series": frame[series].to_numpy()} if series else {}))
    # Rows exported twice share their times too: the cheap check before setting them aside.
    if not named or when.duplicated(keep=False).mean() < SHARED_TIMES:
        return None
    distinct = ~frame.duplicated().to_numpy()  # a row exported twice tells nothing apart
    when = when[distinct]
    shared = when.duplicated(keep=False).to_numpy()
    if shared.mean() < SHARED_TIMES:
        return None
    for name in named:
        machine = frame[name].to_numpy()[distinct][shared]
        if not when[shared].assign(machine=machine).duplicated().any():
            warnings.append(f"column {name!r} tells apart the readings that share a time: it "
                            f"names the machine of each row, and each of its "
                            f"{frame[name].nunique()} values is a series of its own")
            return name
    return None


def _zero_one(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return not values.empty and bool(values.isin((0, 1)).all())


def _counts_rows(column: pd.Series) -> bool:
    """Whole numbers going up by one from row to row."""
    return pd.api.types.is_integer_dtype(column) and bool((column.diff().iloc[1:] == 1).all())


def _numeric_columns(frame: pd.DataFrame, exclude: set[str], warnings: list[str],
                     rejected: list[str]) -> pd.DataFrame:
    """The metric columns, as floats; why each other candidate is not one goes to
    ``rejected`` (for the error when none is left)."""
    numeric = {}
    for name in frame.columns:
        if name in exclude:
            continue
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            rejected.append(f"column {name!r} is true/false")
            continue
        if not column.notna().any():  # a trailing delimiter's column, say
            rejected.append(f"column {name!r} is empty")
            continue
        if pd.api.types.is_numeric_dtype(column):
            values = column.astype("float64")
        else:
            present = column.notna()
            parsed = pd.to_numeric(column, errors="coerce")
            ok = parsed.notna()
            if ok[present].mean() <= NUMERIC_SHARE:
                text = present & ~ok
                rejected.append(f"column {name!r}: {int(text.sum())} of {int(present.sum())} "
                                f"cells are not numbers ({describe_rows(frame.index[text])})")
                continue
            bad = present & ~ok
            if bad.any():
                warnings.append(
                    f"column {name!r}: {int(bad.sum())} non-numeric value(s) treated as missing "
                    f"({describe_rows(frame.index[bad])})"
                )
            values = parsed.astype("float64")
        # "inf" is no reading, like a spreadsheet's #DIV/0!, and it would break the scales.
        infinite = np.isinf(values.to_numpy())
        if infinite.any():
            warnings.append(
                f"column {name!r}: {int(infinite.sum())} infinite value(s) treated as missing "
                f"({describe_rows(frame.index[infinite])})"
            )
            values = values.mask(infinite)
        numeric[name] = values
    return pd.DataFrame(numeric, index=frame.index)


def _in_time_order(time: pd.Series, entity: pd.Series | None) -> bool:
    """Whether each entity's rows (every row, without an entity) are in time order: a
    file of one machine's readings after another's is in order."""
    if time.is_monotonic_increasing:
        return True
    if entity is None:
        return False
    return bool(time.groupby(pd.factorize(entity)[0]).is_monotonic_increasing.all())


def _fill_missing(metrics: pd.DataFrame, entity: pd.Series | None, warnings: list[str]) -> pd.DataFrame:
    missing = metrics.isna()
    if not missing.to_numpy().any():
        return metrics
    for name in metrics.columns[missing.any()]:
        warnings.append(
            f"column {name!r}: {int(missing[name].sum())} missing value(s) filled from the "
            f"previous reading ({describe_rows(metrics.index[missing[name]])})"
        )
    if entity is None:
        return metrics.ffill().fillna(metrics.median())
    # Before an entity's first reading: its own median (the file's mixed every entity's:
    # a room's first "unavailable" temperature became 32.9, the mean of it and a humidity).
    groups = metrics.groupby(entity.to_numpy(), sort=False)
    return groups.ffill().fillna(groups.transform("median")).fillna(metrics.median())


def _why(rejected: list[str]) -> str:
    return f" ({'; '.join(rejected[:5])}{'; …' if len(rejected) > 5 else ''})" \
        if rejected else ""


def _check_profile_columns(profile: str, mapping: ColumnMapping, n_metrics: int,
                           rejected: list[str]) -> None:
    if profile == "login":
        missing = [r for r in ("user", "timestamp") if getattr(mapping, r) is None]
        if not (mapping.ip or mapping.country or mapping.city or mapping.latitude):
            missing.append("ip or location")
        if missing:
            found = ", ".join(f"{role} {column!r}" for role, column in mapping.as_dict().items()
                              if column is not None)
            examples = SYNONYMS[missing[0].split()[0]][:3]  # "ip or location": an IP's
            raise ColumnMappingError(
                f"the login profile needs a {' and a '.join(missing)} column; none was found "
                f"(name it, for example {', '.join(map(repr, examples))}, or map it "
                "explicitly)" + (f"; found {found}" if found else "")
            )
    elif profile == "sensor" and mapping.timestamp is None:
        raise ColumnMappingError(
            "the sensor profile needs a timestamp column (for example 'timestamp'); none was found"
        )
    if profile in ("sensor", "generic") and n_metrics == 0:
        raise NoNumericColumnError(
            f"no usable numeric column for the {profile} profile: every column is text, "
            "a date, an id or empty" + _why(rejected)
        )


def _has_place(mapping: ColumnMapping) -> bool:
    return bool(mapping.ip or mapping.country or mapping.city or mapping.latitude)


def is_login(mapping: ColumnMapping) -> bool:
    """Whether columns mapped so make a login file: a user, a timestamp, an IP or a place.
    Told by the columns alone (their names, or a file's header: detection.reading.
    column_names), before any row is read."""
    return bool(mapping.user and mapping.timestamp and _has_place(mapping))


def detect_profile(mapping: ColumnMapping, n_metrics: int,
                   rejected: list[str] | None = None) -> str:
    """login: user + timestamp + IP or location; sensor: timestamp + numbers; else generic."""
    has_place = _has_place(mapping)
    if is_login(mapping):
        return "login"
    if mapping.timestamp and n_metrics:
        return "sensor"
    if n_metrics:
        return "generic"
    if sum(map(bool, (mapping.user, mapping.timestamp, has_place))) == 2:
        # A login file short of one column: say which
        _check_profile_columns("login", mapping, n_metrics, rejected or [])
    raise NoNumericColumnError(
        "no usable numeric column and no login columns (user, timestamp, IP or location): "
        "nothing to score" + _why(rejected or [])
    )


def prepare(
    frame: pd.DataFrame,
    *,
    profile: str = "auto",
    columns: dict[str, str | None] | None = None,
) -> Dataset:
    """Validate ``frame`` and extract what the ``profile`` needs.

    Parameters
    ----------
    frame
        As returned by :func:`detection.read_csv` (index = data row numbers).
    profile
        ``"auto"`` (detect), ``"sensor"``, ``"login"`` or ``"generic"``.
    columns
        Role -> column overrides for the synonym mapping, e.g. ``{"user": "login_name"}``.
    """
    if profile not in ("auto", *PROFILES):
        raise ParameterError(
            f"profile must be one of auto, {', '.join(PROFILES)}; got {profile!r}"
        )
    warnings: list[str] = list(frame.attrs.get("warnings", ()))  # from reading it
    mapping = map_columns(list(frame.columns), columns)
    if mapping.timestamp is None and "timestamp" not in (columns or {}):
        mapping = _timestamp_by_content(frame, mapping, warnings)
    series = _series_column(frame, mapping)
    # Coordinates are features of the login profile, never metrics of a sensor.
    roles = mapping.used() | ({series} if series else set())
    exclude = roles | _not_measurements(frame, roles, warnings)
    rejected: list[str] = []
    metrics = _numeric_columns(frame, exclude, warnings, rejected)
    if profile == "auto":
        profile = detect_profile(mapping, metrics.shape[1], rejected)
    _check_profile_columns(profile, mapping, metrics.shape[1], rejected)

    time = None
    if mapping.timestamp is not None and profile != "generic":
        time = row_times(frame, mapping.timestamp)
    entity = None
    if profile == "sensor" and mapping.entity is None and "entity" not in (columns or {}):
        found = _entity_by_layout(frame, time, series, exclude, metrics, warnings)
        if found is not None:
            mapping = replace(mapping, entity=found)
            metrics = metrics.drop(columns=[found], errors="ignore")
    if profile == "sensor" and series is not None:
        warnings.append(f"column {series!r} names the metric of each row's value: each of its "
                        f"{frame[series].nunique()} metrics is a series of its own")
        mapping = mapping if mapping.entity else replace(mapping, entity=series)
    if profile == "sensor" and mapping.entity is not None:
        entity = frame[mapping.entity].astype("string").fillna("(none)")
        if series not in (None, mapping.entity):  # one series per machine and metric
            entity = entity + " · " + frame[series].astype("string").fillna("(none)")
    if time is not None and not _in_time_order(time, entity):
        whose = "rows" if entity is None else f"rows of some {mapping.entity!r} values"
        warnings.append(
            f"column {mapping.timestamp!r}: {whose} are not in time order; they were "
            "scored in time order and are returned in file order"
        )

    if profile == "login":
        # Numbers beside the login columns (latency, bytes...) are features; an id or a
        # port is a label written in digits, not a measurement.
        labels = [c for c in metrics.columns if IDENTIFIER.search(str(c))]
        if labels:
            warnings.append(f"column(s) {', '.join(repr(c) for c in labels)} ignored: "
                            "identifiers, not measurements")
        return Dataset(frame, profile, mapping, time=time, metrics=metrics.drop(columns=labels),
                       warnings=warnings)

    blank = metrics.isna()  # of the constant columns too: blank, then held, is constant
    blank = blank.loc[:, blank.any()] if blank.to_numpy().any() else None
    # max > min fails for one distinct value and for no value at all (bottleneck: NaN).
    values = metrics.to_numpy(dtype="float64")
    varies = bn.nanmax(values, axis=0) > bn.nanmin(values, axis=0) if len(values) \
        else np.zeros(values.shape[1], dtype=bool)
    constant = [c for c, v in zip(metrics.columns, varies, strict=True) if not v]
    kept = None
    if constant:
        warnings.append(
            f"constant column(s) {', '.join(repr(c) for c in constant)} ignored: "
            "a value that never changes cannot be unusual"
        )
        kept = _fill_missing(metrics[constant], entity, [])
        metrics = metrics.drop(columns=constant)
    metrics = _fill_missing(metrics, entity, warnings)
    dataset = Dataset(frame, profile, mapping, time=time, entity=entity, metrics=metrics,
                      warnings=warnings, constant=kept, blank=blank)
    if profile == "sensor":
        _note_repeated_rows(dataset)
    return dataset


def _note_repeated_rows(dataset: Dataset) -> None:
    again = np.ones(len(dataset), dtype=bool)
    again[dataset.readings[0]] = False
    if again.any():
        whose = "" if dataset.entity is None else f"{dataset.mapping.entity}, "
        dataset.warnings.append(
            f"{int(again.sum())} row(s) repeat an earlier row's {whose}time and readings "
            f"({describe_rows(dataset.frame.index[again])}): each is scored as the reading "
            "it repeats, not as a second one")
