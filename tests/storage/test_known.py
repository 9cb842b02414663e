"""Known values of login users (table known_values)."""

import pandas as pd

from detection.features.login import NOVELTY
from storage import known
from storage.schema import KNOWN_KEYS, KNOWN_VALUE_CHARS


def values(*rows):
    return pd.DataFrame(rows, columns=["user_name", "key", "value", "anomaly_id"])


def test_values_are_kept_once_and_read_per_user(engine):
    known.add(engine, values(("ana", "country", "Peru", None), ("ana", "country", "Peru", None),
                             ("bob", "device", "curl/8", None)), added_by="ana")
    known.add(engine, values(("ana", "country", "Peru", None),
                             ("ana", "ip", "190.2.3.4", None)), added_by="bo")
    found = known.for_users(engine, ["ana"])
    assert sorted(zip(found["key"], found["value"], strict=True)) == [
        ("country", "Peru"), ("ip", "190.2.3.4")]
    listed = known.list_known(engine)
    assert len(listed) == 3
    assert listed.loc[listed["value"] == "Peru", "added_by"].tolist() == ["ana"]  # first kept


def test_a_value_longer_than_the_column_is_not_remembered(engine):
    known.add(engine, values(("ana", "device", "x" * (KNOWN_VALUE_CHARS + 1), None),
                             ("ana", "device", "curl/8", None)), added_by="ana")
    assert known.list_known(engine)["value"].tolist() == ["curl/8"]


def test_many_users_are_read_in_chunks(engine):
    users = [f"u{i}" for i in range(known.CHUNK + 7)]
    known.add(engine, values(*[(u, "country", "Peru", None) for u in users]), added_by="a")
    assert len(known.for_users(engine, users)) == len(users)


def test_the_keys_are_what_login_novelty_judges():
    assert set(KNOWN_KEYS) == set(NOVELTY)
