"""Incidents: flagged rows of one entity that follow each other closely are one event.

A burst of 40 failed logins, or a humidity sensor out of range for twenty minutes, is
one thing for an analyst to look at, not forty. Rows of the same entity (user, elevator,
sensor; the whole file when there is none) join the current incident while each comes
within ``gap`` of the previous one; files without timestamps use row numbers instead.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from detection.calibration import SEVERITIES

# Flagged rows further apart than this start a new incident (settings may change it).
DEFAULT_GAP = {"sensor": pd.Timedelta(minutes=30), "generic": pd.Timedelta(minutes=30),
               "login": pd.Timedelta(hours=2)}
GAP_ROWS = 5  # no timestamps: flagged rows at most this many rows apart join
RANK = {severity: i for i, severity in enumerate(SEVERITIES)}
NO_ENTITY = "(file)"
CAMPAIGN_USERS = 3  # users with flagged failures from one source that make it a campaign's
USERS_NAMED = 3  # a campaign's summary names this many of its users


def group(anomalies: pd.DataFrame, gap: pd.Timedelta,
          sources: list[np.ndarray] | None = None) -> np.ndarray:
    """The incident number (0, 1, ...) of each flagged row.

    ``anomalies`` has ``row_number``, ``event_time`` (may be all missing) and ``entity``
    (may be missing). Incidents are numbered by their first row in (entity, time) order.
    ``sources``: each row's source of each kind (a login's address, its network; None
    where unknown): rows of different entities from one source, each within the gap of
    the last, make their incidents one campaign (:func:`campaigns`).
    """
    numbers = _by_entity(anomalies, gap)
    if sources is None or len(anomalies) == 0:
        return numbers
    return campaigns(anomalies, numbers, gap, sources)


def _position(anomalies: pd.DataFrame, gap: pd.Timedelta) -> tuple[np.ndarray, int]:
    """Each row's place on the incident axis (time, else row number) and the gap on it."""
    times = _utc(anomalies["event_time"])
    if times.notna().all():
        return times.to_numpy(dtype="datetime64[ns]").astype("int64"), int(
            pd.Timedelta(gap).value)
    return anomalies["row_number"].to_numpy(dtype="int64"), GAP_ROWS


def campaigns(anomalies: pd.DataFrame, numbers: np.ndarray, gap: pd.Timedelta,
              sources: list[np.ndarray]) -> np.ndarray:
    """``numbers`` with incidents that share a source joined: rows from one source (an
    address, a network), in time order, each within the gap of the one before, join
    their incidents, whoever the rows are about. Numbered again by first member."""
    position, limit = _position(anomalies, gap)
    parent = np.arange(int(numbers.max()) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for source in sources:
        known = pd.notna(source)
        rows = np.flatnonzero(known)
        if rows.size < 2:
            continue
        codes = pd.factorize(pd.Series(source[rows], dtype="string"))[0]
        ranked = np.lexsort((position[rows], codes))
        order, codes = rows[ranked], codes[ranked]
        close = (codes[1:] == codes[:-1]) & (np.diff(position[order]) <= limit)
        for a, b in zip(order[:-1][close], order[1:][close], strict=True):
            ra, rb = root(numbers[a]), root(numbers[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    joined = np.array([root(i) for i in range(parent.size)])
    return pd.factorize(joined[numbers], sort=True)[0]


def login_sources(anomalies: pd.DataFrame, mapping: dict | None) -> list[np.ndarray] | None:
    """The sources that join flagged sign-ins of different users into a campaign: each
    row's address and network (``mapping`` names the file's IP column; the row is in
    ``data``), kept where at least :data:`CAMPAIGN_USERS` users have a flagged failure
    from it (an office's shared address, where a few users flagged for other reasons
    meet, is no campaign); None without an IP column."""
    from detection.dataset import parse_success
    from detection.features.login import addresses

    ip, success = (mapping or {}).get("ip"), (mapping or {}).get("success")
    if not ip or len(anomalies) == 0:
        return None
    rows = [d if isinstance(d, dict) else {} for d in anomalies["data"]]
    found, network = addresses(pd.Series([r.get(ip) for r in rows], dtype="string"))
    failed = np.ones(len(rows), dtype=bool)
    if success:
        with contextlib.suppress(ValueError):  # an outcome not told: every row counts
            failed = ~parse_success(pd.Series([r.get(success) for r in rows]),
                                    success).fillna(True).to_numpy(dtype=bool)
    users = pd.Series(anomalies["entity"], dtype="string").to_numpy()
    kept = []
    for keys in (found, network):
        attempts = pd.DataFrame({"key": keys.to_numpy(), "user": users})[failed].dropna()
        many = attempts.groupby("key")["user"].nunique()
        many = many[many >= CAMPAIGN_USERS].index
        kept.append(keys.where(keys.isin(many)).to_numpy(dtype=object))
    return kept


def _by_entity(anomalies: pd.DataFrame, gap: pd.Timedelta) -> np.ndarray:
    """Incidents of one entity each (see :func:`group`)."""
    n = len(anomalies)
    if n == 0:
        return np.zeros(0, dtype="int64")
    entity = pd.Series(anomalies["entity"], dtype="string").fillna(NO_ENTITY).to_numpy()
    rows = anomalies["row_number"].to_numpy(dtype="int64")
    # No timestamps (or some missing): distance in rows.
    position, limit = _position(anomalies, gap)
    entity_code = pd.factorize(entity)[0]
    order = np.lexsort((rows, position, entity_code))
    same_entity = entity_code[order][1:] == entity_code[order][:-1]
    close = np.diff(position[order]) <= limit
    starts = np.concatenate([[True], ~(same_entity & close)])
    numbers = np.empty(n, dtype="int64")
    numbers[order] = np.cumsum(starts) - 1
    return numbers


def _utc(values) -> pd.Series:
    """Times as UTC without a zone (NaT where missing)."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.tz_convert(None)


def summarize(anomalies: pd.DataFrame, numbers: np.ndarray,
              sources: list[np.ndarray] | None = None) -> pd.DataFrame:
    """One row per incident: ``number``, ``entity``, ``started_at``, ``ended_at``,
    ``row_count``, ``peak_score``, ``severity`` (the highest) and ``summary`` (the peak
    row's leading reason, with the incident's extent). A campaign (rows of several
    entities, joined by their ``sources``) is named by its source, its summary names and
    counts its users."""
    columns = ["number", "entity", "started_at", "ended_at", "row_count", "peak_score",
               "severity", "summary"]
    if len(anomalies) == 0:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({
        "number": numbers,
        "entity": pd.Series(anomalies["entity"], dtype="object").to_numpy(),
        "time": _utc(anomalies["event_time"]).to_numpy(dtype="datetime64[ns]"),
        "row": anomalies["row_number"].to_numpy(dtype="int64"),
        "score": anomalies["anomaly_score"].to_numpy(dtype="float64"),
        "rank": pd.Series(anomalies["severity"]).map(RANK).fillna(0).to_numpy(dtype="int64"),
        "reasons": pd.Series(anomalies["reasons"], dtype="object").fillna("").to_numpy(),
    })
    by = frame.groupby("number", sort=True)
    # The peak row of each incident (the first of equal scores), in incident order.
    peak = frame.loc[frame.sort_values(["number", "score", "row"],
                                       ascending=[True, False, True])
                     .drop_duplicates("number").index]
    started, ended, count = by["time"].min(), by["time"].max(), by.size().to_numpy()
    first, last = by["row"].min().to_numpy(), by["row"].max().to_numpy()
    out = pd.DataFrame({
        "number": by.size().index.to_numpy(),
        "entity": peak["entity"].to_numpy(),
        "started_at": started.dt.tz_localize("UTC").to_numpy(dtype=object),
        "ended_at": ended.dt.tz_localize("UTC").to_numpy(dtype=object),
        "row_count": count,
        "peak_score": by["score"].max().to_numpy(),
        "severity": [SEVERITIES[i] for i in by["rank"].max().to_numpy()],
    })
    minutes = np.maximum((ended - started).dt.total_seconds().to_numpy() // 60, 1)
    timed = started.notna().to_numpy()
    out["summary"] = [
        (f"{lead} ({n} rows over {int(m)} min)" if on_clock
         else f"{lead} ({n} rows, rows {a}-{b})") if n > 1 else lead
        for lead, n, m, on_clock, a, b in zip(
            [r.split("; ")[0] or "unusual combination of features" for r in peak["reasons"]],
            count.tolist(), minutes, timed, first.tolist(), last.tolist(), strict=True)]
    _name_campaigns(out, frame, sources)
    return out[columns]


def _name_campaigns(out: pd.DataFrame, frame: pd.DataFrame,
                    sources: list[np.ndarray] | None) -> None:
    """Incidents of several entities: the source their rows share as the entity (the
    most frequent; the first seen of equals), and the users (or machines) in the
    summary, counted and the first few named in the order they came."""
    members = frame.dropna(subset=["entity"])
    several = members.groupby("number")["entity"].nunique()
    several = several[several > 1].index
    if several.empty:
        return
    members = members[members["number"].isin(several)]
    names = _in_order(members.drop_duplicates(["number", "entity"]))
    shared = pd.Series(None, index=several, dtype=object)
    if sources is not None:
        keys = pd.concat([pd.DataFrame({"number": frame["number"], "key": k})
                          for k in sources]).dropna()
        counts = (keys[keys["number"].isin(several)]
                  .groupby(["number", "key"], sort=False).size().reset_index(name="rows"))
        top = counts.loc[counts.groupby("number", sort=False)["rows"].idxmax()]
        shared.loc[top["number"].to_numpy()] = top["key"].to_numpy()
    at = out["number"].isin(several).to_numpy()  # in number order, as ``several``
    out.loc[at, "summary"] = [
        f"campaign{f' from {source}' if source else ''}: {len(users)} users "
        f"({_first_named(users)}); {lead}"
        for source, users, lead in zip(shared, names[several], out.loc[at, "summary"],
                                       strict=True)]
    out.loc[at, "entity"] = [entity if source is None else source for source, entity
                             in zip(shared, out.loc[at, "entity"], strict=True)]


def _in_order(rows: pd.DataFrame) -> pd.Series:
    """Each incident's ``entity`` values as a list, in the rows' order, by ``number``
    (a stable sort and a split: a groupby's list per group runs a Python loop over the
    thousands of campaigns shared addresses make)."""
    numbers = rows["number"].to_numpy()
    order = np.argsort(numbers, kind="stable")
    numbers, entities = numbers[order], rows["entity"].to_numpy(dtype=object)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(numbers)) + 1]
    return pd.Series([entities[a:b].tolist() for a, b in
                      zip(starts, np.r_[starts[1:], len(numbers)], strict=True)],
                     index=numbers[starts], dtype=object)


def _first_named(users: list[str]) -> str:
    more = len(users) - USERS_NAMED
    return ", ".join(users[:USERS_NAMED]) + (f" and {more} more" if more > 0 else "")
