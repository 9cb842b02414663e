"""Find the columns that play a role (timestamp, user, IP, ...) by their names."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from detection.errors import ColumnMappingError

# Names are compared after lower-casing and dropping spaces, dashes and underscores,
# so "Login Timestamp", "login_timestamp" and "login-timestamp" are one synonym. A name
# with dots is a path in the event an export flattened (Okta's "client.ipAddress",
# "actor.alternateId"): where no column's whole name matches, its last part does. A unit
# or note in brackets at the end is no part of a name: "Date (UTC)" is a date.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp", "time", "date", "datetime", "event_time", "login timestamp",
        "login_time", "ts", "created_at", "occurred_at",
    ),
    "user": ("user", "user_id", "username", "user id", "account", "login", "user_name",
             "account_name", "login_name", "email", "email_address", "user_email", "mail",
             "actor", "user_principal_name", "upn", "alternate_id"),
    "ip": ("ip", "ip_address", "ip address", "src_ip", "source_ip", "client_ip", "ipaddr",
           "source_ip_address", "client_ip_address"),
    "asn": ("asn", "as_number", "as number", "autonomous_system", "autonomous_system_number",
            "client_asn", "isp"),
    "country": ("country", "country_code", "country_name", "location", "region"),
    "city": ("city", "city_name"),
    "latitude": ("lat", "latitude"),
    "longitude": ("lon", "lng", "long", "longitude"),
    "device": (
        # The raw user agent first: Okta's client.device is "Computer" or "Mobile".
        "raw_user_agent", "device", "device_type", "user_agent", "user agent string",
        "useragent", "browser",
    ),
    "success": ("success", "login successful", "status", "outcome", "result", "successful",
                "console_login"),
    "entity": (
        "sensor_id", "elevator_id", "device_id", "machine", "machine_id", "asset",
        "asset_id", "sensor", "elevator", "entity", "entity_id",  # Home Assistant's history
        "host", "hostname",
    ),
}


# Names (normalised) of a column saying which metric a row's value is, in a "long" file:
# one row per reading, "timestamp,metric,value" (InfluxDB's _field, Grafana's Series).
SERIES_NAMES = frozenset(("metric", "metricname", "field", "variable", "signal", "channel",
                          "series", "parameter", "sensortype"))

# The columns Vigil adds to every scored row (DESIGN.md); a file scored before and
# uploaded again has them.
SCORE_COLUMNS = ("anomaly_score", "is_anomaly", "severity", "reasons")
# 0/1 columns under these names (normalised) say which rows are anomalous: the answer
# an evaluation file carries (NAB, SKAB, ODDS' exports), not a measurement.
LABELS = frozenset(("anomaly", "anomalies", "anomalous", "label", "labels", "outlier",
                    "isoutlier", "isanomaly", "changepoint", "groundtruth", "attack", "isattack",
                    "class", "target"))
# Names (normalised) of a column that numbers the rows, when its numbers go up by one;
# pandas names a saved index without a name "Unnamed: 0".
# A datalogger's "RECORD" counts its lines.
ROW_NUMBERS = frozenset(("index", "row", "rownumber", "no", "nr", "#", "id", "record"))


def normalise(name: str) -> str:
    bare = re.sub(r"\s*(\([^()]*\)|\[[^\[\]]*\])\s*$", "", str(name).strip())
    return re.sub(r"[\s_\-]+", "", (bare or str(name)).lower())


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file plays which role; ``None`` when absent."""

    timestamp: str | None = None
    user: str | None = None
    ip: str | None = None
    asn: str | None = None
    country: str | None = None
    city: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    device: str | None = None
    success: str | None = None
    entity: str | None = None

    def used(self) -> set[str]:
        return {c for c in asdict(self).values() if c is not None}

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


ROLES = tuple(f.name for f in fields(ColumnMapping))


def map_columns(columns: list[str], overrides: dict[str, str | None] | None = None) -> ColumnMapping:
    """Map roles to columns by synonyms; ``overrides`` (role -> column or None) win.

    Raises
    ------
    ColumnMappingError
        An override names an unknown role or a column the file does not have.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(ROLES)
    if unknown:
        raise ColumnMappingError(
            f"unknown column role {sorted(unknown)[0]!r}: expected one of {', '.join(ROLES)}"
        )
    by_norm = {normalise(c): c for c in reversed(columns)}
    by_norm = {**{normalise(str(c).rsplit(".", 1)[-1]): c for c in reversed(columns)
                  if "." in str(c)}, **by_norm}
    found: dict[str, str | None] = {}
    taken: set[str] = set()
    for role in ROLES:
        if role in overrides:
            column = overrides[role]
            if column is not None and column not in columns:
                raise ColumnMappingError(
                    f"column {column!r} given for {role} is not in the file "
                    f"(columns: {', '.join(columns)})"
                )
        else:
            column = next(
                (by_norm[normalise(s)] for s in SYNONYMS[role]
                 if normalise(s) in by_norm and by_norm[normalise(s)] not in taken),
                None,
            )
        found[role] = column
        if column is not None:
            taken.add(column)
    return ColumnMapping(**found)
