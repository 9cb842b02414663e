"""Values analysts marked as normal for a login user (table ``known_values``).

Reviewing a login row as a false positive says its country, city, IP, network, ASN and
device are the user's own: later login runs count them as known history, so the same
trip or the same new laptop is not flagged again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from sqlalchemy import or_, select

from storage.db import Bind, insert_of, transaction
from storage.schema import KNOWN_VALUE_CHARS, Anomaly, DetectionRun, KnownValue
from storage.text import NAME_CHARS, clean

KNOWN_COLUMNS = ("user_name", "key", "value", "added_by", "added_at", "anomaly_id")
CHUNK = 5000  # user names per IN (...) list: SQLite allows 32,766 parameters


def reviewed_logins(bind: Bind, *, anomaly_ids: Sequence[int] = (),
                    incident_ids: Sequence[int] = ()) -> pd.DataFrame:
    """The flagged rows of login runs among ``anomaly_ids`` or in ``incident_ids``:
    ``id``, ``data`` (the original row) and their run's ``mapping``, ``columns`` and
    ``entity_column`` (to map the rows of runs stored before the mapping was kept)."""
    query = (select(Anomaly.id, Anomaly.data, DetectionRun.mapping, DetectionRun.columns,
                    DetectionRun.entity_column)
             .join(DetectionRun, DetectionRun.id == Anomaly.run_id)
             .where(DetectionRun.profile == "login",
                    or_(Anomaly.id.in_([int(i) for i in anomaly_ids]),
                        Anomaly.incident_id.in_([int(i) for i in incident_ids]))))
    with transaction(bind) as session:
        rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=["id", "data", "mapping", "columns", "entity_column"])


def add(bind: Bind, values: pd.DataFrame, *, added_by: str) -> None:
    """Remember ``values`` (columns ``user_name``, ``key``, ``value``, ``anomaly_id``);
    a value known already stays as first added. Values longer than the column are not
    remembered (a login with such a user agent is judged as before)."""
    values = values[values["value"].str.len() <= KNOWN_VALUE_CHARS]
    values = values.assign(user_name=[clean(u, NAME_CHARS) for u in values["user_name"]],
                           added_by=clean(added_by, NAME_CHARS))
    values = values.drop_duplicates(["user_name", "key", "value"])
    if values.empty:
        return
    insert_row = insert_of(bind)
    statement = insert_row(KnownValue).on_conflict_do_nothing(
        index_elements=["user_name", "key", "value"])
    rows = values[["user_name", "key", "value", "added_by", "anomaly_id"]]
    with transaction(bind) as session:
        session.execute(statement, rows.astype(object).where(rows.notna(), None)
                        .to_dict("records"))


def for_users(bind: Bind, users: Iterable[str]) -> pd.DataFrame:
    """The known values of ``users``: columns ``user_name``, ``key``, ``value``."""
    users = sorted({clean(u, NAME_CHARS) for u in users})
    rows = []
    with transaction(bind) as session:
        for start in range(0, len(users), CHUNK):
            rows += session.execute(
                select(KnownValue.user_name, KnownValue.key, KnownValue.value)
                .where(KnownValue.user_name.in_(users[start:start + CHUNK]))).all()
    return pd.DataFrame(rows, columns=["user_name", "key", "value"])


def every_known(bind: Bind) -> pd.DataFrame:
    """Every known value (a dataset's users are not listed before it is read): columns
    ``user_name``, ``key``, ``value``."""
    with transaction(bind) as session:
        rows = session.execute(
            select(KnownValue.user_name, KnownValue.key, KnownValue.value)).all()
    return pd.DataFrame(rows, columns=["user_name", "key", "value"])


def list_known(bind: Bind, *, limit: int = 1000) -> pd.DataFrame:
    """The latest known values, newest first, columns :data:`KNOWN_COLUMNS`."""
    query = (select(*(getattr(KnownValue, c) for c in KNOWN_COLUMNS))
             .order_by(KnownValue.added_at.desc(), KnownValue.id.desc()).limit(limit))
    with transaction(bind) as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(KNOWN_COLUMNS))
    frame["added_at"] = pd.to_datetime(frame["added_at"], utc=True)
    return frame
