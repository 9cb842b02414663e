"""Who is alerted, about what, and how often. Pure functions."""

from __future__ import annotations

import hashlib

from detection import SEVERITIES

TEAM_BY_PROFILE = {"login": "security", "sensor": "maintenance", "generic": "maintenance"}


def parse_recipients(value: str) -> list[str]:
    """``"a@x, b@y"`` -> ``["a@x", "b@y"]``: trimmed, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for part in value.replace(";", ",").split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return list(seen)


def team_for(profile: str) -> str:
    """Login runs go to security; sensor and generic runs to maintenance."""
    return TEAM_BY_PROFILE[profile]


def recipients_for(profile: str, *, security: str, maintenance: str) -> list[str]:
    return parse_recipients(security if team_for(profile) == "security" else maintenance)


def severities_from(minimum: str) -> list[str]:
    """The severities at or above ``minimum``, e.g. high -> [high, critical]."""
    flagged = SEVERITIES[1:]
    if minimum not in flagged:
        raise ValueError(f"minimum severity must be one of {', '.join(flagged)}; "
                         f"got {minimum!r}")
    return list(flagged[flagged.index(minimum):])


def group_key(recipients: list[str]) -> str:
    """One recipient group, however its addresses were ordered."""
    return ",".join(sorted(recipients, key=str.lower))


def dedupe_key(run_id: int, recipients: list[str]) -> str:
    """Stable for a run and its recipients: a rerun or a second click finds the same key."""
    group = group_key(recipients).lower()
    return hashlib.sha256(f"run:{run_id}|to:{group}".encode()).hexdigest()


def incident_dedupe_key(incident_id: int, severity: str, recipients: list[str]) -> str:
    """One email per incident and severity: it goes out when the incident opens at the
    minimum severity, and once more only when the severity rises."""
    group = group_key(recipients).lower()
    return hashlib.sha256(f"incident:{incident_id}|{severity}|to:{group}".encode()).hexdigest()


def throttled(sent_last_hour: int, max_per_hour: int) -> bool:
    return sent_last_hour >= max_per_hour
