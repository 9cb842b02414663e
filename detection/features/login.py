"""Login features: what is new or odd about an event given the user's earlier events.

Every feature of an event uses only events at or before its time (its own outcome
included: a failed attempt counts as a failure in the last hour). Known countries,
IPs and devices come from earlier *successful* logins, so an attacker's failed
attempts never make a place look familiar. A model fitted on a baseline keeps the
last events of each user as history, so a new file is judged against it.

Two kinds of feature look beyond the user: a country, ASN or device no one's earlier
successful login had, and the numbers a file carries beside the login columns (latency,
bytes...), measured against everyone's usual values and the user's own. Those usual
values are learnt when fitting and kept, like the forest: the one exception to "earlier
events only", so a file scored on its own judges its numbers by the whole file.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from detection import places
from detection.dataset import Dataset, parse_success
from detection.features.base import (
    FeatureSet,
    fmt,
    rank_features,
    robust_center_scale,
    trained_metrics,
)

HOUR = np.int64(3600 * 10**9)
NOVELTY = ("country", "city", "ip", "network", "asn", "device")
# Values whose first use by anyone counts (not a network: a new home /24 is everyday).
UNSEEN = ("country", "asn", "device")
POPULATION_MIN = 100         # successful logins a file needs before "no one has" counts
POPULATION = "\x00anyone"    # the user of a stream state's rows of everyone's known values
SPREAD_FLOOR = 0.1           # a user's spread of a number: at least this share of everyone's
TRAVEL_KMH = 1000.0          # faster than an airliner
TRAVEL_MIN_KM = 500.0        # nearby cities can look fast with coarse geolocation
COUNTRY_HOP = 2 * HOUR       # a country change within this is travel no one makes
EARTH_KM = 6371.0
REASONS = 3                  # phrases a flagged login's reasons give, at most
BURST = 3                    # failures in an hour that reasons call an attack
# A success after a burst of failures with one of these is a takeover, scored at least:
TAKEOVER_SIGNS = ("new_country", "new_network", "new_asn", "new_device", "unseen_country",
                  "unseen_asn", "unseen_device", "impossible_travel")
TAKEOVER_SCORE = 100.0  # the top: it leads every list
NEW_USER_CEILING = 84.99     # a new user's first single failure: at most medium
TEXT = ("user", "ip", "country", "city", "device", "network", "asn")
NUMERIC = ("time", "failed", "latitude", "longitude")


# An address as some logs write it, and the address itself: with its port
# ("203.0.113.9:51234", "[2001:db8::1]:443"), an IPv4 one mapped into IPv6
# ("::ffff:203.0.113.9", as dual-stack servers log it).
ADDRESS_FORMS = (r"^(\d{1,3}(?:\.\d{1,3}){3}):\d+$", r"^\[([0-9A-Fa-f:.]+)\](?::\d+)?$",
                 r"^(?i:::ffff:)(\d{1,3}(?:\.\d{1,3}){3})$")


def addresses(ip: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each IP address as itself (out of ``ADDRESS_FORMS``: each login's source port is
    another) and its network, the /24 of an IPv4 address, the /48 of an IPv6 one, as text
    (never a number).

    Arrow's regular expressions work on each distinct address once: the first three
    dot-separated parts plus ``.0/24``, or the first three colon groups plus ``::/48``.
    """
    codes, distinct = pd.factorize(ip.astype("string").str.strip())
    given = pa.array(distinct.astype("string").array, type=pa.string())
    text = given
    for pattern in ADDRESS_FORMS:
        text = pc.replace_substring_regex(text, pattern, r"\1")
    v6 = pc.match_substring(text, ":")
    v4_net = pc.binary_join_element_wise(
        pc.replace_substring_regex(text, r"\.[^.]*$", ""), ".0/24", "")
    v6_net = pc.binary_join_element_wise(
        pc.replace_substring_regex(text, r"^([^:]*(?::[^:]*){0,2}).*$", r"\1"), "::/48", "")
    network = pd.array(pc.if_else(pc.fill_null(v6, False), v6_net, v4_net), dtype="string")
    address = ip if text.equals(given) else pd.Series(
        pd.array(text, dtype="string").take(codes, allow_fill=True), index=ip.index)
    return address, pd.Series(network.take(codes, allow_fill=True), index=ip.index)


def _text(column: pd.Series) -> pd.Series:
    """Text without surrounding spaces, blank as missing: the column as read (its memory
    shared with the file's, not a copy) when no value has either."""
    text = column.astype("string")
    trimmed = text.str.strip()
    if not trimmed.equals(text):
        text = trimmed
    del trimmed
    return text.replace("", pd.NA) if (text == "").any() else text


def _folded(names: pd.Index) -> pd.Index:
    """User names as identity providers compare them: regardless of case, and without a
    domain before a backslash or after an @ (JDoe, CORP\\jdoe, jdoe@corp.example: jdoe)."""
    text = pd.Series(names, dtype="string").str.casefold()
    return pd.Index(text.str.replace(r"^[^\\]*\\", "", regex=True)
                    .str.replace(r"@[^@]*$", "", regex=True))


def known_rows(known: pd.DataFrame | None) -> pd.DataFrame | None:
    """Values marked as normal for users (columns user, key, value) as earlier successful
    logins of theirs that carry no weight: known, without counting as logins."""
    if known is None or known.empty:
        return None
    known = known[known["key"].isin(NOVELTY)]
    rows = pd.DataFrame({"user": known["user"].to_numpy(), "time": 0, "weight": 0,
                         "failed": False, "latitude": np.nan, "longitude": np.nan})
    for key in NOVELTY:
        rows[key] = np.where(known["key"].to_numpy() == key, known["value"].to_numpy(), None)
    return rows


def row_values(row: dict, mapping: dict) -> tuple[str | None, list[tuple[str, str]]]:
    """A stored login row's user, and the (key, value) pairs its novelty is judged on:
    what reviewing it as a false positive makes known. ``mapping``: role -> column."""
    def cell(role):
        value = row.get(mapping.get(role)) if mapping.get(role) else None
        text = None if value is None else str(value).strip()
        return text or None

    values = {key: cell(key) for key in NOVELTY if key != "network"}
    city, country = places.split(*(pd.Series([values[k]], dtype="string")
                                   for k in ("city", "country")))
    values["city"], values["country"] = (None if pd.isna(v) else v
                                         for v in (city.iloc[0], country.iloc[0]))
    if values["ip"]:
        ip, network = addresses(pd.Series([values["ip"]]))
        values["ip"], values["network"] = ip.iloc[0], network.iloc[0]
    return cell("user"), [(k, v) for k, v in values.items() if v]


def _short(value) -> str:
    """A value as reasons quote it: at most 60 characters (user agents run to hundreds)."""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _records(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")`` (missing text as None), ten times quicker: a column
    at a time, where pandas boxes each Arrow value on its own."""
    names = list(frame.columns)
    columns = [frame[c].to_numpy(dtype=object, na_value=None).tolist()
               if isinstance(frame[c].dtype, pd.StringDtype) else frame[c].tolist()
               for c in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _clock(time: int) -> str:
    """``HH:MM`` of a time in UTC nanoseconds."""
    minutes = time // 60_000_000_000 % 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _haversine(lat1, lon1, lat2, lon2) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype="float64"))
                              for a in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + \
        np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _impossible(start: np.ndarray, end: np.ndarray):
    """Whether each journey from ``start`` to ``end`` (rows: time in ns, latitude,
    longitude, country code; NaN unknown) is one no one makes, with its km and km/h:
    faster than an airliner over more than TRAVEL_MIN_KM, or where no distance is known,
    a country change within COUNTRY_HOP."""
    minutes = (end[0] - start[0]) / 6e10
    # Most logins come from where the last one did: 0 km, the haversine's own answer.
    moved = ~((start[1] == end[1]) & (start[2] == end[2]))
    km = np.zeros(len(minutes))
    km[moved] = _haversine(start[1][moved], start[2][moved], end[1][moved], end[2][moved])
    speed = km / np.maximum(minutes / 60, 1 / 60)
    located = ~np.isnan(km)
    hop = ~np.isnan(start[3]) & ~np.isnan(end[3]) & (start[3] != end[3]) \
        & (minutes * 6e10 < COUNTRY_HOP)
    return (located & (speed > TRAVEL_KMH) & (km > TRAVEL_MIN_KM)) | (hop & ~located), km, speed


def _hour_ranks(time: np.ndarray, by_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each time's rank (how many times are earlier) and the count of times at or before
    it less an hour, from ``by_time``, an order that sorts ``time``: what
    :func:`_window_count` needs, computed once for every grouping of the same rows."""
    n = len(time)
    ordered = time[by_time]
    rank, since = np.empty(n, dtype="int64"), np.empty(n, dtype="int64")
    # Sorted queries: each search starts near the last one (three times quicker than
    # the same searches in the rows' order, on a million logins).
    rank[by_time] = np.searchsorted(ordered, ordered, side="left")
    since[by_time] = np.searchsorted(ordered, ordered - HOUR, side="right")
    return rank, since


def _window_count(group: np.ndarray, rank: np.ndarray, since: np.ndarray,
                  flags: np.ndarray) -> np.ndarray:
    """For rows sorted by (group, time): flagged rows of the same group in (t - 1h, t],
    up to the row itself (one at the same instant after it is not yet seen). ``rank``
    and ``since``: the rows' :func:`_hour_ranks`.

    Times are replaced by ranks, so the combined (group, rank) key stays below groups x
    rows: nanosecond times times thousands of groups overflow int64. A row j of the
    group is inside the window exactly when its rank reaches the count of times at or
    before t - 1h.
    """
    base = group.astype("int64") * np.int64(len(rank) + 1)
    start = np.searchsorted(base + rank, np.add(base, since, out=base), side="left")
    cumulative = np.concatenate([[0], np.cumsum(flags, dtype="int64")])
    return cumulative[1:] - cumulative[start]


def _earlier_same(key: np.ndarray, flags: np.ndarray,
                  weight: np.ndarray | None = None) -> np.ndarray:
    """For each position i: the flagged positions j < i with the same ``key`` (with
    ``weight``: the sum of their weights). A running sum per key: what
    :func:`_earlier_count` gives when ``wanted`` is ``key``, without its sort and searches.
    """
    counted = flags.astype("int64") if weight is None else flags * weight
    return pd.Series(counted).groupby(key).cumsum().to_numpy() - counted


def _earlier_count(key: np.ndarray, flags: np.ndarray, wanted: list[np.ndarray],
                   weight: np.ndarray) -> np.ndarray:
    """For each position i: the summed ``weight`` of the flagged positions j < i whose
    ``key`` is ``w[i]``, over the arrays ``w`` of ``wanted``. Keys are non-negative and
    below ``len(key) * 24`` (a user's code times 24 plus an hour).

    Keys and positions are combined into one sorted array, sorted once and searched twice
    per row and wanted array: a sort, not a column per key value.
    """
    n = np.int64(len(key))
    positions = np.flatnonzero(flags)
    combined = key[positions] * n + positions  # below 24 n**2: int64 to 600M rows
    order = np.argsort(combined)
    combined = combined[order]
    total = np.concatenate([[0], np.cumsum(weight[positions][order])])
    here = np.arange(n)
    return sum(total[np.searchsorted(combined, w * n + here)]
               - total[np.searchsorted(combined, w * n)] for w in wanted)


class _Usual:
    """The values a user's earlier successful logins had most often, from a model's
    history: the history's columns are taken out once per explanation, each user's rows
    found once, so a thousand flagged rows do not each slice the history."""

    def __init__(self, history: pd.DataFrame):
        self.history = history
        self.rows = history.groupby("user", sort=False).indices
        self.ok = ~history["failed"].to_numpy(dtype=bool)
        self.time = history["time"].to_numpy()
        self.columns: dict[str, np.ndarray] = {}

    def __call__(self, user: str, key: str, before: int) -> str:
        """`` (usual: a, b)``, the two values most often seen first; "" when none."""
        if key not in self.columns:
            self.columns[key] = self.history[key].to_numpy(dtype=object, na_value=None)
        rows = self.rows.get(user, np.zeros(0, dtype="int64"))
        rows = rows[self.ok[rows] & (self.time[rows] < before)]
        values = Counter(v for v in self.columns[key][rows] if v is not None)
        if not values:
            return ""
        return f" (usual: {', '.join(str(v) for v, _ in values.most_common(2))})"


class LoginFeatures:
    """Featurizer for login events.

    Parameters
    ----------
    min_history : int, default 5
        Successful logins a user needs before novelty (new country, IP, device, hour)
        counts: until then the user is *learning*.
    history_per_user : int, default 200
        Earlier events per user a fitted model keeps as history for new files.
    """

    # Evidence on its own (detection.envelope): a journey faster than an airliner, a
    # country no one has logged in from.
    DECISIVE = ("impossible_travel", "unseen_country")

    def __init__(self, min_history: int = 5, history_per_user: int = 200):
        self.min_history = min_history
        self.history_per_user = history_per_user

    # -- events -------------------------------------------------------------------
    def _events(self, dataset: Dataset, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The events of the dataset, or of ``rows`` (positions) only."""
        pick = slice(None) if rows is None else rows
        index = dataset.frame.index[pick]

        def column_of(role):
            column = dataset.column(role)
            return None if column is None else column.iloc[pick]

        def text(role):
            column = column_of(role)
            if column is None:
                return pd.Series(pd.NA, index=index, dtype="string")
            return _text(column)

        events = pd.DataFrame({
            "user": self._as_known(text("user").fillna("(unknown)")),
            "time": dataset.time.iloc[pick].astype("int64"),
            "ip": text("ip"),
            "country": text("country"),
            "city": text("city"),
            "device": text("device"),
            "asn": text("asn"),
        }, index=index)
        events["ip"], events["network"] = addresses(events["ip"])
        events["city"], events["country"] = places.split(events["city"], events["country"])
        if self._coordinates() == "places":  # named places, looked up in detection.places
            events["latitude"], events["longitude"] = places.coordinates(events["city"],
                                                                         events["country"])
        else:
            for role in ("latitude", "longitude"):
                column = column_of(role)
                events[role] = (np.nan if column is None
                                else pd.to_numeric(column, errors="coerce").astype("float64"))
        success = column_of("success")
        events["failed"] = (np.zeros(len(events), dtype=bool) if success is None
                            else ~parse_success(success, dataset.mapping.success).to_numpy())
        return events

    # -- learning -----------------------------------------------------------------
    def fit(self, dataset: Dataset) -> LoginFeatures:
        self.fit_transform(dataset)
        return self

    def fit_transform(self, dataset: Dataset) -> FeatureSet:
        m = dataset.mapping
        # Where travel distances come from: the file's coordinates, else the places it
        # names (city, country) looked up in a built-in table, else none.
        self.coordinates_ = ("columns" if m.latitude and m.longitude
                             else "places" if m.city or m.country else None)
        events = self._events(dataset)
        present = {"country": m.country, "city": m.city, "ip": m.ip, "network": m.ip,
                   "asn": m.asn, "device": m.device}
        self.novelty_ = [k for k in NOVELTY if present[k]]
        self.unseen_ = [k for k in UNSEEN if present[k]]
        located = self.coordinates_ is not None
        self.has_outcome_ = m.success is not None
        names = ["hour_rarity"] + [f"new_{k}" for k in self.novelty_] \
            + [f"unseen_{k}" for k in self.unseen_]
        if located:
            names += ["travel_speed", "impossible_travel"]
        if self.has_outcome_:
            names.append("user_failures_1h")
            if m.ip:
                names.append("ip_failed_users_1h")
        self._fit_numbers(dataset, events)
        self.feature_names_ = names + [n for c in self.numbers_ for n in (c, f"{c}_user")]
        features = self._with_numbers(dataset, events, self._features(
            events, history=None, known=dataset.known))
        # Each user's last events, in time order, copied once (not the whole file sorted
        # and then cut), once the features' working arrays are gone; the events
        # themselves (shared, not copied) when they are all kept, in time order already.
        order = np.argsort(events["time"].to_numpy(), kind="stable")
        users = pd.Series(pd.factorize(events["user"])[0][order])
        keep = order[users.groupby(users.to_numpy()).cumcount(ascending=False).to_numpy()
                     < self.history_per_user]
        whole = keep.size == len(events) and bool(np.all(keep[1:] > keep[:-1]))
        self.history_ = events.iloc[slice(None) if whole else keep].reset_index(drop=True)
        del events, order, users, keep
        # Mean and std (not median/MAD): most features are rare 0/1 flags. A column at a
        # time: the whole matrix in float64, and std's temporary of its size, were the
        # peak of a 1M-login run (320 MB).
        center, spread = [], []
        for name in features.X:
            column = features.X[name].to_numpy(dtype="float64")
            center.append(column.mean())
            spread.append(column.std())
        self.feature_center_, spread = np.array(center), np.array(spread)
        # A feature the baseline never moved on is the most unusual thing a row can show:
        # reasons rank it first.
        self.feature_scale_ = np.where(spread > 0, spread, 1e-3)
        return features

    def transform(self, dataset: Dataset, others: Dataset | None = None) -> FeatureSet:
        """Features of ``dataset``'s events after the model's history. ``others``: the
        events of other users that a part of a bigger file holding only some users needs
        to be scored as the whole file is (:meth:`population`), with their row numbers in
        that file; ``dataset``'s rows are numbered in it too."""
        events = self._events(dataset)
        own = None
        if others is not None and len(others):
            theirs = self._events(others)
            theirs = theirs[~theirs["user"].isin(events["user"].unique())]
            both = pd.concat([events, theirs]).sort_index(kind="stable")
            own = both.index.isin(events.index)
            events = both
        features = self._with_numbers(dataset, events[own] if own is not None else events,
                                      self._features(events, history=self.history_,
                                                     known=dataset.known, own=own))
        features.warnings = self._user_warnings(
            dataset, events["user"] if own is None else events["user"][own])
        return features

    def users(self, dataset: Dataset) -> pd.Series:
        """Each row's user as the model knows it (a name written otherwise is that user)."""
        return self._as_known(_text(dataset.column("user")).fillna("(unknown)")) \
            if dataset.column("user") is not None else \
            pd.Series("(unknown)", index=dataset.frame.index, dtype="string")

    def population(self, dataset: Dataset) -> np.ndarray:
        """The rows (positions) of ``dataset`` that other users' scores can depend on:
        every failure (the spray count), each user's first row (users are numbered in the
        order they appear) and the first successful login with each value no one may have
        used before (``unseen_``). A part of a file holding some users, scored with the
        other parts' such rows (``transform(part, others)``), scores as the whole file."""
        events = self._events(dataset)
        ok = ~events["failed"].to_numpy(dtype=bool)
        keep = ~ok | ~events["user"].duplicated().to_numpy()
        by_time = np.argsort(events["time"].to_numpy(), kind="stable")
        for key in getattr(self, "unseen_", ()):
            value = events[key].iloc[by_time]
            good = ok[by_time] & value.notna().to_numpy()
            first = np.zeros(len(events), dtype=bool)
            first[by_time[good]] = ~value[good].duplicated().to_numpy()
            keep |= first
        return np.flatnonzero(keep)

    # -- users as the model's history names them ----------------------------------
    def _spelling(self, users: pd.Series) -> dict[str, str]:
        """Each name of ``users`` the model's history lacks that one of its users has,
        written otherwise (:func:`_folded`): with that user's name as the history has
        it. A name two of its users share but for case (a system where case tells
        accounts apart) is neither's."""
        history = getattr(self, "history_", None)  # None: being fitted
        if history is None:
            return {}
        distinct = pd.Index(users.dropna().unique())
        known = pd.Index(history["user"].unique())
        unknown = distinct[~distinct.isin(known)]
        if unknown.empty:
            return {}
        folded = _folded(known)
        sole = ~folded.duplicated(keep=False)
        lookup = dict(zip(folded[sole], known[sole], strict=True))
        return {name: lookup[key] for name, key in zip(unknown, _folded(unknown), strict=True)
                if key and key in lookup}

    def _as_known(self, users: pd.Series) -> pd.Series:
        """``users`` with each name written otherwise than in the history as it is there
        (:meth:`_spelling`): the same user's logins, judged against that user's."""
        renamed = self._spelling(users)
        if not renamed:
            return users
        codes, distinct = pd.factorize(users)
        named = pd.array([renamed.get(name, name) for name in distinct], dtype="string")
        return pd.Series(named.take(codes, allow_fill=True), index=users.index)

    def _user_warnings(self, dataset: Dataset, users: pd.Series) -> list[str]:
        """What a file's users are to the model's history: names written otherwise there,
        and users it never saw, when theirs are most of the file's logins."""
        warnings = []
        written = dataset.column("user")
        renamed = {} if written is None else self._spelling(
            _text(pd.Series(written.unique())))
        if renamed:
            shown = ", ".join(f"'{a}' as '{b}'" for a, b in sorted(renamed.items())[:3])
            warnings.append(
                f"{len(renamed):,} user name(s) are written otherwise than in the model's "
                f"baseline ({shown}{', ...' if len(renamed) > 3 else ''}): each is judged "
                "as that user, names compared regardless of case and of a domain before a "
                "backslash or after an @")
        codes, distinct = pd.factorize(users)
        strange = np.flatnonzero(~pd.Index(distinct).isin(self.history_["user"].unique()))
        logins = int(np.isin(codes, strange).sum())
        if strange.size and 2 * logins >= len(users):
            shown = ", ".join(f"'{distinct[k]}'" for k in strange[:3])
            warnings.append(
                f"{logins:,} of {len(users):,} logins ({logins / len(users):.0%}) are by "
                f"{strange.size:,} user(s) the model's baseline never saw ({shown}"
                f"{', ...' if strange.size > 3 else ''}): a login is judged against its "
                f"user's history, and until a user has {self.min_history} successful logins "
                "there is none, so new devices, places and hours count for nothing. If the "
                "file comes from another organisation or system than the baseline, train a "
                "model on its history")
        return warnings

    def _coordinates(self) -> str | None:
        # A model saved before the places table knew coordinates only from columns, and
        # kept whether it had them in has_coordinates_.
        if hasattr(self, "coordinates_"):
            return self.coordinates_
        return "columns" if self.has_coordinates_ else None

    def level_columns(self, dataset: Dataset, features: FeatureSet) -> pd.DataFrame:
        # Login events have no plain value: a z-score compares the features themselves.
        return features.X

    # -- streaming ----------------------------------------------------------------
    def stream_state(self, events: pd.DataFrame | None = None,
                     latest: int | None = None) -> pd.DataFrame:
        """What later events need of ``events`` (the model's history when None; or a
        state and the events after it), in a few rows per user: one row per hour of day
        weighted by the successful logins at that hour, one row per value each novelty
        key has had, the last successful login (travel) and every failure of the last two
        hours (the failure windows). Scoring events after this state gives what scoring
        them after all the events it stands for gives. ``latest`` is the stream's newest
        time, from which the two hours of failures count (default: the events')."""
        events = self.history_ if events is None else events
        weight = (events["weight"].fillna(1).astype("int64") if "weight" in events
                  else pd.Series(1, index=events.index, dtype="int64"))
        ok = ~events["failed"].to_numpy(dtype=bool)
        good = events[ok]
        blank = {key: pd.NA for key in TEXT if key != "user"} | {
            "latitude": np.nan, "longitude": np.nan, "failed": False}
        hours = (good["time"] // HOUR) % 24
        counts = weight[ok].groupby([good["user"].to_numpy(), hours.to_numpy()]).sum()
        parts = [pd.DataFrame({**blank, "user": counts.index.get_level_values(0),
                               "time": counts.index.get_level_values(1) * HOUR,
                               "weight": counts.to_numpy()})]
        for key in (k for k in NOVELTY if k in good):  # a model older than a key lacks it
            known = good[["user", key]].dropna().drop_duplicates()
            parts.append(pd.DataFrame({**blank, "user": known["user"].to_numpy(),
                                       key: known[key].to_numpy(), "time": 0, "weight": 0}))
        # The last two: travel after an impossible jump is measured from the one before.
        last = good.sort_values("time", kind="stable").groupby("user").tail(2)
        latest = events["time"].max() if latest is None else latest
        recent = events[~ok & (events["time"] > latest - 2 * HOUR)]
        parts += [last.assign(weight=0), recent.assign(weight=0)]
        state = pd.concat([p for p in parts if len(p)], ignore_index=True)
        return state.reindex(columns=[*TEXT, *NUMERIC, "weight"]).astype(
            {"time": "int64", "weight": "int64"})

    def _everyone(self, state: pd.DataFrame) -> pd.DataFrame:
        """Every value of the ``unseen_`` keys that ``state``'s users have logged in with,
        once each, as rows of one user (:data:`POPULATION`): what "no one has used it"
        needs of the users a piece of a stream does not touch."""
        known = state[~state["failed"].to_numpy(dtype=bool)]
        parts = [pd.DataFrame({key: known[key].dropna().unique()})
                 for key in getattr(self, "unseen_", ())]
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return rows.assign(user=POPULATION, time=0, weight=0, failed=False,
                           latitude=np.nan, longitude=np.nan)

    def transform_after(self, dataset: Dataset, state: pd.DataFrame
                        ) -> tuple[FeatureSet, pd.DataFrame]:
        """Features of ``dataset``'s events after a stream ``state``, and the state
        after them."""
        events = self._events(dataset)
        # A user's features read only that user's rows, and the spray count everyone's
        # recent failures: the other users' summaries are neither read nor rewritten.
        mine = state["user"].isin(events["user"].unique()).to_numpy()
        failed = state["failed"].to_numpy(dtype=bool)
        features = self._with_numbers(dataset, events, self._features(
            events, history=pd.concat([state[mine | failed], self._everyone(state[~mine])],
                                      ignore_index=True), known=dataset.known))
        latest = max(int(state["time"].max()) if len(state) else 0,
                     int(events["time"].max()))
        others = state[~mine & (~failed | (state["time"] > latest - 2 * HOUR).to_numpy())]
        updated = self.stream_state(pd.concat([state[mine], events.reset_index(drop=True)],
                                              ignore_index=True), latest=latest)
        return features, pd.concat([others, updated], ignore_index=True)

    # -- features -----------------------------------------------------------------
    def _features(self, events: pd.DataFrame, history: pd.DataFrame | None,
                  known: pd.DataFrame | None = None, own: np.ndarray | None = None
                  ) -> FeatureSet:
        """Features of ``events`` (of those ``own`` marks, when given: the others are
        read, not scored) after ``history`` (a model's, or a stream's state) and the
        values analysts marked as ``known`` (see :func:`known_rows`)."""
        n_new = len(events)
        mine = np.ones(n_new, dtype=bool) if own is None else own
        index = events.index[mine]
        marked = known_rows(known)
        if marked is not None:  # marked on a file that wrote the names otherwise
            marked["user"] = self._as_known(marked["user"])
        earlier = [h for h in (history, marked) if h is not None and len(h)]
        events = (pd.concat([*earlier, events.reset_index(drop=True)], ignore_index=True)
                  if earlier else events.reset_index(drop=True))
        # However a file, the history or feedback writes a country (Germany, DE, DEU).
        events["country"] = places.country_names(events["country"])
        own = np.zeros(len(events), dtype=bool)
        own[len(events) - n_new:] = mine

        # Text becomes codes (-1 where missing) before sorting: a sorted copy of a million
        # events' strings would cost more than all the features.
        uniques = {}
        codes = {}
        for key in TEXT:
            codes[key], uniques[key] = pd.factorize(events[key])
        # Per user, in time order (history first on ties: it happened before the file).
        order = np.lexsort((np.arange(len(events)), events["time"].to_numpy(), codes["user"]))
        # A carried stream state stands for many earlier logins with one weighted row.
        weight = (events["weight"].fillna(1).to_numpy(dtype="int64") if "weight" in events
                  else np.ones(len(events), dtype="int64"))[order]
        # The sorted columns, a plain array each (a frame would copy them into one block
        # again); codes as int32 (no file has 2**31 distinct values): half the memory.
        ev = {key: codes.pop(key).astype("int32")[order] for key in TEXT} \
            | {key: events[key].to_numpy()[order] for key in NUMERIC}
        del events
        user_code = pd.factorize(ev["user"])[0]  # numbered in this order: groups ascend
        time = ev["time"]
        failed = ev["failed"]
        ok = ~failed
        counted = ok * weight
        by_user = pd.Series(counted).groupby(user_code)
        earlier_ok = (by_user.cumsum() - counted).to_numpy()
        learning = earlier_ok < self.min_history
        out: dict[str, np.ndarray] = {}  # float32, as the features are kept
        context: dict[str, np.ndarray] = {"learning": learning, "earlier_ok": earlier_ok}

        hours = (time // HOUR % 24).astype("int64")  # times are UTC nanoseconds
        user_hour = user_code.astype("int64") * 24 + hours
        near = _earlier_same(user_hour, ok, weight) + _earlier_count(
            user_hour, ok, [user_hour - hours + (hours + d) % 24 for d in (-1, 1)], weight)
        out["hour_rarity"] = np.where(learning, 0.0, 1.0 - near / np.maximum(earlier_ok, 1)
                                      ).astype("float32")

        for key in self.novelty_:
            value = ev[key]
            pair = user_code.astype("int64") * (len(uniques[key]) + 1) + value + 1
            out[f"new_{key}"] = ((_earlier_same(pair, ok) == 0) & ~learning & (value >= 0)
                                 ).astype("float32")

        by_time = np.lexsort((order, time))  # history first on ties, as in the file
        if getattr(self, "unseen_", None):
            self._unseen(ev, by_time, ok, out, mature=history is not None)

        if "impossible_travel" in self.feature_names_:
            self._travel(ev, uniques["country"], user_code, time, ok, out, context)

        if self.has_outcome_:
            rank, since = _hour_ranks(time, by_time)
            context["user_failures_1h"] = _window_count(user_code, rank, since, failed)
            out["user_failures_1h"] = np.log1p(context["user_failures_1h"]).astype("float32")
            context["failed"] = failed
            context |= self._takeovers(ev, uniques["ip"], user_code, time, failed,
                                       context["user_failures_1h"], out)
            if "ip_failed_users_1h" in self.feature_names_:
                context["ip_failed_users_1h"] = self._spray(ev, time, rank, since, failed)
                out["ip_failed_users_1h"] = np.log1p(
                    context["ip_failed_users_1h"]).astype("float32")

        # Back to the input's order, keeping only the rows of the file being scored; each
        # full-length array is let go as soon as its rows are taken.
        del ev, user_code, time, failed, ok, counted
        back = np.empty(len(order), dtype="int64")
        back[order] = np.arange(len(order))
        keep = back[own]
        del back, order, own
        X = pd.DataFrame({k: out.pop(k)[keep] for k in self.feature_names_
                          if k in out}, index=index)
        context = {k: v[keep] for k, v in context.items()}
        return FeatureSet(X=X, context=context)

    def _unseen(self, ev: dict[str, np.ndarray], by_time: np.ndarray, ok: np.ndarray,
                out: dict, mature: bool) -> None:
        """unseen_<key>: no one's earlier successful login had the event's value. A file
        scored on its own counts it once :data:`POPULATION_MIN` successful logins precede
        the event; a model's history is always enough."""
        ok_t = ok[by_time]
        enough = np.full(len(ok_t), True) if mature else \
            np.cumsum(ok_t) - ok_t >= POPULATION_MIN
        for key in self.unseen_:
            value = ev[key][by_time]
            unseen = (_earlier_same(value, ok_t) == 0) & (value >= 0) & enough
            out[f"unseen_{key}"] = np.empty(len(ok_t), dtype="float32")
            out[f"unseen_{key}"][by_time] = unseen

    # -- numbers beside the login columns ---------------------------------------------
    def _fit_numbers(self, dataset: Dataset, events: pd.DataFrame) -> None:
        """Each numeric column's usual values, everyone's and each user's (users with
        ``min_history`` values): median and spread of the log (the raw value when it can
        be negative), and the 5-95% range reasons quote. From successful logins when the
        file says which succeeded."""
        metrics = dataset.metrics
        self.numbers_ = [] if metrics is None else \
            [c for c in metrics.columns if metrics[c].notna().any()]
        self.number_log_, self.number_usual_, self.number_users_ = {}, {}, {}
        ok = ~events["failed"].to_numpy()
        for name in self.numbers_:
            raw = metrics[name].to_numpy(dtype="float64")
            self.number_log_[name] = bool(np.nanmin(raw) >= 0)
            value = self._scaled(name, raw)
            use = ok & ~np.isnan(value)
            if not use.any():
                use = ~np.isnan(value)
            center, scale = robust_center_scale(value[use])
            low, high = np.quantile(raw[use], [0.05, 0.95])
            self.number_usual_[name] = (center, scale, low, high)
            frame = pd.DataFrame({"user": events["user"].to_numpy()[use],
                                  "value": value[use], "raw": raw[use]})
            groups = frame.groupby("user", sort=False)
            median = groups["value"].transform("median")
            spread = 1.4826 * (frame["value"] - median).abs().groupby(frame["user"]).median()
            bounds = groups["raw"].quantile([0.05, 0.95]).unstack()
            users = pd.DataFrame({"center": groups["value"].median(),
                                  "scale": np.maximum(spread, SPREAD_FLOOR * scale),
                                  "low": bounds[0.05], "high": bounds[0.95],
                                  "count": groups.size()})
            self.number_users_[name] = users[users["count"] >= self.min_history]

    def _scaled(self, name: str, raw: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(raw, 0)) if self.number_log_[name] else raw

    def _with_numbers(self, dataset: Dataset, events: pd.DataFrame,
                      features: FeatureSet) -> FeatureSet:
        """``features`` plus two per numeric column: how far the value lies from
        everyone's usual (robust z) and from the user's own (everyone's where the user
        has too few values); 0 where the cell is empty."""
        numbers = getattr(self, "numbers_", [])
        if not numbers:
            return features
        metrics = trained_metrics(dataset, numbers)
        columns = {}
        for name in numbers:
            value = self._scaled(name, metrics[name].to_numpy(dtype="float64"))
            center, scale = self.number_usual_[name][:2]
            everyone = (value - center) / scale
            mine = self.number_users_[name].reindex(events["user"].to_numpy())
            known = mine["center"].notna().to_numpy()
            own = (value - mine["center"].to_numpy()) / mine["scale"].to_numpy()
            columns[name] = np.nan_to_num(everyone)
            columns[f"{name}_user"] = np.nan_to_num(np.where(known, own, everyone))
        X = pd.concat([features.X, pd.DataFrame(columns, index=features.X.index)
                       .astype("float32")], axis=1)
        return FeatureSet(X=X[self.feature_names_], context=features.context)

    @staticmethod
    def _previous_ok(user_code: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Each row's user's previous successful login (its row; -1 for none), for rows
        grouped by user."""
        rows = np.arange(len(ok))
        last = np.maximum.accumulate(np.where(ok, rows, -1))  # the latest up to each row
        previous = np.concatenate([[-1], last[:-1]])
        starts = np.flatnonzero(np.diff(user_code, prepend=-1))
        first = np.repeat(starts, np.diff(starts, append=len(ok)))  # the user's first row
        return np.where(previous >= first, previous, -1)

    def _travel(self, ev, countries, user_code, time, ok, out, context) -> None:
        """Travel from the user's previous successful login; after an impossible jump,
        from where the user was before it when this login is possible from there (the
        user back home after an attacker's login abroad: one excursion, one flag)."""
        country = (ev["country"] if "country" in self.novelty_
                   else np.full(len(time), -1))
        coords = self._coordinates() is not None
        here = np.stack([time.astype("float64"),
                         *(np.asarray(ev[c], dtype="float64") if coords
                           else np.full(len(time), np.nan) for c in ("latitude", "longitude")),
                         np.where(country >= 0, country, np.nan)])
        # The row of the user's previous successful login (-1: none), and its place.
        previous = self._previous_ok(user_code, ok)
        known = previous >= 0
        at = np.maximum(previous, 0)
        start = here.take(at, axis=1)  # take: ten times quicker than here[:, at]
        start[:, ~known] = np.nan
        impossible, km, speed = _impossible(start, here)
        jumped = np.flatnonzero(known & impossible[at])
        if jumped.size:  # after an impossible jump: from before it, where possible
            earlier = start[:, at[jumped]]
            back = ~_impossible(earlier, here[:, jumped])[0]
            rewound = jumped[back]
            start[:, rewound] = earlier[:, back]
            impossible[rewound], km[rewound], speed[rewound] = _impossible(
                start[:, rewound], here[:, rewound])
        # Travel is what a successful login proves; a failed try proves nothing.
        out["impossible_travel"] = (impossible & ok).astype("float32")
        context["travel_minutes"] = (here[0] - start[0]) / 6e10
        if coords:
            out["travel_speed"] = np.log1p(np.nan_to_num(np.where(ok, speed, 0.0))
                                           ).astype("float32")
            context["travel_km"] = km
        if "country" in self.novelty_:
            names = np.asarray(countries, dtype=object)
            context["previous_country"] = np.where(
                np.isnan(start[3]), None, names[np.nan_to_num(start[3]).astype("int64")])

    def _takeovers(self, ev: dict[str, np.ndarray], ips: pd.Index, user_code: np.ndarray,
                   time: np.ndarray, failed: np.ndarray, failures: np.ndarray,
                   out: dict) -> dict[str, np.ndarray]:
        """Successful logins after a burst of the user's failures (:data:`BURST` in the
        hour), from a place or device new to the user or to everyone: an account taken
        over. With the failures' count, how long they lasted and where they came from."""
        new = np.zeros(len(time), dtype=bool)
        for name in TAKEOVER_SIGNS:
            if name in out:
                new |= out[name] > 0
        found = np.flatnonzero(~failed & (failures >= BURST) & new)
        taken = np.zeros(len(time), dtype=bool)
        minutes = np.full(len(time), np.nan, dtype="float32")
        source = np.full(len(time), None, dtype=object)
        ip = ev["ip"]
        for i in found:  # rare: a loop over them reads best
            start = i
            while start > 0 and user_code[start - 1] == user_code[i] \
                    and time[start - 1] > time[i] - HOUR:
                start -= 1
            tries = np.flatnonzero(failed[start:i]) + start
            taken[i] = True
            minutes[i] = (time[i] - time[tries].min()) / 60e9
            codes = ip[tries][ip[tries] >= 0]
            if codes.size:
                source[i] = ips[np.bincount(codes).argmax()]
        return {"takeover": taken, "takeover_minutes": minutes, "takeover_source": source}

    def bounds(self, features: FeatureSet) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Least and most each login may score beside the detector: a takeover at least
        :data:`TAKEOVER_SCORE`; a new user's first single failure and the login after it
        (learning, nothing else failing around it, nothing no one has used, no travel no
        one makes) below high."""
        ctx = features.context
        if "takeover" not in ctx:
            return None, None
        floor = np.where(ctx["takeover"], TAKEOVER_SCORE, -np.inf)
        slip = ctx["learning"] & (ctx["user_failures_1h"] == 1)
        if "ip_failed_users_1h" in ctx:
            slip &= ctx["ip_failed_users_1h"] <= 1
        telling = [c for c in features.X.columns
                   if c.startswith("unseen_") or c == "impossible_travel"]
        if telling:
            slip &= ~(features.X[telling].to_numpy() > 0).any(axis=1)
        return floor, np.where(slip, NEW_USER_CEILING, np.inf)

    def _spray(self, ev: dict[str, np.ndarray], time: np.ndarray, rank: np.ndarray,
               since: np.ndarray, failed: np.ndarray) -> np.ndarray:
        """Distinct users failing from the event's IP in the last hour (a lower bound:
        a user whose failures began more than an hour earlier is not counted). ``rank``,
        ``since``: the rows' :func:`_hour_ranks`."""
        ip_code = ev["ip"]  # a missing IP (-1) is one group, as before
        user_code = ev["user"]
        # By IP, then time (ties as the rows come): one key, the time as its rank.
        order = np.argsort((ip_code + 1).astype("int64") * (len(rank) + 1) + rank,
                           kind="stable")
        t, ip, user, fail = time[order], ip_code[order], user_code[order], failed[order]
        pair = pd.factorize(ip.astype("int64") * (user.max() + 1) + user)[0]  # (IP, user)
        prev = pd.Series(np.where(fail, t, np.nan)).groupby(pair).shift(1)
        prev = prev.groupby(pair).ffill().to_numpy()
        first_in_hour = fail & ~(t - prev < HOUR)
        del t, user, fail, pair, prev  # the window's arrays come on top of what is kept
        counts = _window_count(ip, rank[order], since[order], first_in_hour)
        result = np.empty(len(order), dtype="int64")
        result[order] = np.where(ip < 0, 0, counts)
        return result

    # -- explaining -----------------------------------------------------------------
    def explain(self, dataset: Dataset, features: FeatureSet, rows: np.ndarray) -> list[str]:
        X = features.X.to_numpy()[rows].astype("float64")  # the rows, not all, converted
        # Two features can say one thing (travel speed and impossible travel): the
        # reasons are the first REASONS different phrases of the most unusual features.
        top = rank_features(X, self.feature_center_, self.feature_scale_, top=2 * REASONS)
        events = _records(self._events(dataset, rows))
        ctx = features.context
        usual = _Usual(self.history_)
        numbers = getattr(self, "numbers_", [])
        if numbers:
            raw = trained_metrics(dataset, numbers).iloc[rows]
            for i, event in enumerate(events):
                event |= {name: raw[name].iat[i] for name in numbers}
        # Indicators and counts explain a row when they are up; a number when it is off
        # its usual either way.
        signed = np.array([n in numbers or n.removesuffix("_user") in numbers
                           for n in self.feature_names_])
        takeover = ctx.get("takeover")
        reasons = []
        for i, row in enumerate(rows):
            event = events[i]
            phrases = (self._phrase(self.feature_names_[j], event, ctx, row, usual)
                       for j in top[i] if X[i, j] != self.feature_center_[j]
                       and (X[i, j] > 0 or signed[j]))
            parts = list(itertools.islice(dict.fromkeys(p for p in phrases if p), REASONS))
            if takeover is not None and takeover[row]:
                parts.insert(0, self._takeover_phrase(ctx, row))
            if ctx["learning"][row]:
                parts.append(f"{event['user']} is new (learning: "
                             f"{int(ctx['earlier_ok'][row])} earlier logins)")
            reasons.append("; ".join(parts) or "unusual combination of features")
        return reasons

    @staticmethod
    def _takeover_phrase(ctx: dict, row: int) -> str:
        count = int(ctx["user_failures_1h"][row])
        minutes = max(int(np.ceil(ctx["takeover_minutes"][row])), 1)
        source = ctx["takeover_source"][row]
        return (f"{count} failed sign-ins in {minutes} min"
                + (f" from {source}" if source else "") + ", then a success (account taken over?)")

    def _phrase(self, name: str, event: dict, ctx: dict, row: int, usual: _Usual) -> str:
        user = event["user"]
        if name in getattr(self, "numbers_", ()):
            low, high = self.number_usual_[name][2:]
            return f"{name} {fmt(event[name])}, usual {fmt(low)}-{fmt(high)} across users"
        if name.endswith("_user") and name[:-5] in getattr(self, "numbers_", ()):
            number = name[:-5]
            users = self.number_users_[number]
            if user not in users.index:
                return self._phrase(number, event, ctx, row, usual)
            low, high = users.loc[user, ["low", "high"]]
            return f"{number} {fmt(event[number])}, usual {fmt(low)}-{fmt(high)} for {user}"
        if name.startswith("unseen_"):
            key = name[7:]
            what = {"country": "country", "network": "network", "asn": "ASN",
                    "device": "device"}[key]
            return f"{what} {_short(event[key])}: no one has logged in with it before"
        if name == "hour_rarity":
            return f"login at {_clock(event['time'])}, an hour unusual for {user}"
        if name.startswith("new_"):
            key = name[4:]
            label = {"country": "first login from", "city": "first login from city",
                     "ip": "new IP", "network": "new network", "asn": "new ASN",
                     "device": "new device"}[key]
            return f"{label} {_short(event[key])} for {user}{usual(user, key, event['time'])}"
        if name in ("impossible_travel", "travel_speed"):
            if not ctx.get("travel_minutes", np.array([np.nan]))[row] >= 0:
                return ""
            minutes = ctx["travel_minutes"][row]
            km = ctx["travel_km"][row] if "travel_km" in ctx else np.nan
            if km >= 0:
                named = " between the places named" if self._coordinates() == "places" else ""
                speed = km / max(minutes / 60, 1 / 60)
                what = "impossible travel" if speed > TRAVEL_KMH and km > TRAVEL_MIN_KM \
                    else "travelled"
                return f"{what}: {fmt(km)} km in {fmt(minutes)} min ({fmt(speed)} km/h){named}"
            if ctx.get("previous_country") is None or ctx["previous_country"][row] is None:
                return ""
            return (f"country changed from {ctx['previous_country'][row]} to "
                    f"{event['country']} within {fmt(minutes)} min")
        if name == "user_failures_1h":
            count = int(ctx["user_failures_1h"][row])
            if count >= BURST:
                return f"{count} failed logins for {user} in the last hour (brute force?)"
            return f"failed login for {user}" if count else ""
        if name == "ip_failed_users_1h":
            count = int(ctx["ip_failed_users_1h"][row])
            if count >= BURST:
                return (f"{count} users failed to log in from {event['ip']} in the last hour "
                        "(password spray?)")
            return ""
        return name
