"""Alert digests: built, claimed once, sent (SMTP or the outbox), retried.

An alert takes two units of work: one reads what it covers, claims its dedupe key and
writes the subject (or records it held back); the other records how delivery went.
Nothing holds a transaction open while a mail server is talked to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from alerts import policy
from alerts.delivery import SmtpConfig, send_smtp, write_outbox
from alerts.errors import AlertError, DeliveryError
from alerts.message import Digest, RunSummary, build_message, probe_message, render_html, subject
from app.settings import Settings
from app.vigil import Vigil
from detection import SEVERITIES
from storage import anomalies, audit, incidents, notifications, routing, runs
from storage.anomalies import AnomalyFilter
from storage.errors import StorageError
from storage.incidents import IncidentFilter
from storage.schema import CLOSED_STATUSES, AlertNotification, DetectionRun


@dataclass(frozen=True)
class AlertReport:
    """What happened to a run's alert, in words for the user."""

    status: str  # sent, queued (held by the throttle), failed, skipped or duplicate
    message: str
    notification_id: int | None = None


@dataclass(frozen=True)
class _Claimed:
    """A digest claimed for sending: its notifications (the first is its own; the rest
    were held back earlier and go with it), what it says, and to whom."""

    rows: list[AlertNotification]
    digest: Digest
    recipients: list[str]
    team: str


def _smtp_config(settings: Settings) -> SmtpConfig | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port,
                      security=settings.smtp_security, username=settings.smtp_username,
                      password=password)


def _deliver(settings: Settings, message, *, name: str) -> tuple[str, int]:
    """SMTP when SMTP_HOST is set, else the outbox folder. Returns (transport, attempts)."""
    config = _smtp_config(settings)
    if config is None:
        return "outbox:" + write_outbox(message, settings.alert_outbox_dir, name=name), 1
    return send_smtp(message, config)


# An address as a person types one: something@domain.tld, no spaces.
ADDRESS = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


@dataclass(frozen=True)
class Routing:
    """Who receives alerts, from the least severity up: the Alerts page's values, or the
    environment's where the page set none (``set_here`` names the keys it set)."""

    to_security: str
    to_maintenance: str
    min_severity: str
    set_here: frozenset[str] = frozenset()

    @property
    def severities(self) -> list[str]:
        return policy.severities_from(self.min_severity)


def _routing(settings: Settings, session: Session) -> Routing:
    stored = routing.routes(session)
    return Routing(
        to_security=stored.get("to_security", settings.alert_to_security),
        to_maintenance=stored.get("to_maintenance", settings.alert_to_maintenance),
        min_severity=stored.get("min_severity", settings.alert_min_severity),
        set_here=frozenset(stored))


def alert_routing(vigil: Vigil) -> Routing:
    """Who receives alerts now (the Alerts page shows it)."""
    vigil.require("admin")
    with vigil.unit() as session:
        return _routing(vigil.settings, session)


def set_alert_routing(vigil: Vigil, *, to_security: str, to_maintenance: str,
                      min_severity: str) -> Routing:
    """Set who receives alerts (admin), audited with what it was before. Addresses are
    checked before anything is stored."""
    actor = vigil.require("admin")
    wanted = {"to_security": ", ".join(_addresses(to_security, "security")),
              "to_maintenance": ", ".join(_addresses(to_maintenance, "maintenance")),
              "min_severity": min_severity}
    if min_severity not in SEVERITIES[1:]:
        raise StorageError(f"the least severity alerted is one of "
                           f"{', '.join(SEVERITIES[1:])}; got {min_severity!r}")
    with vigil.unit() as session:
        before = _routing(vigil.settings, session)
        routing.set_routes(session, wanted, actor=actor.name)
        audit.record(session, actor=actor.name, action="alert.routing", target="alert routing",
                     before={k: getattr(before, k) for k in wanted}, after=wanted)
        return _routing(vigil.settings, session)


def _addresses(value: str, team: str) -> list[str]:
    """The e-mail addresses of ``value`` (comma-separated), each checked for its shape."""
    found = policy.parse_recipients(value)
    bad = [a for a in found if not ADDRESS.fullmatch(a)]
    if bad:
        raise StorageError(f"the {team} team's recipients must be e-mail addresses "
                           f"(name@example.org), separated by commas; not: {', '.join(bad)}")
    return found


def _digest(settings: Settings, session: Session, parts: list[tuple[int, list[int]]],
            route: Routing) -> Digest:
    """The digest of (run id, anomaly ids) parts, the run it is for first."""
    ids = [i for _, part_ids in parts for i in part_ids]
    found = anomalies.query_anomalies(session, filters=AnomalyFilter(ids=ids), limit=None,
                                      with_data=True)
    summaries = []
    for run_id, _ in parts:
        run = runs.get_run(session, run_id=run_id)
        summaries.append(RunSummary(run.id, run.source_name, run.profile, run.created_at,
                                    run.total_rows, run.anomaly_count, run.threshold_note))
    notes = []
    if len(parts) > 1:
        notes.append(f"Includes {len(parts) - 1} digest(s) held back earlier: at most "
                     f"{settings.alert_max_per_hour} emails per hour go to this team.")
    found_incidents = incidents.query_incidents(
        session, filters=IncidentFilter(ids=found["incident_id"].dropna().unique().tolist()),
        limit=None)
    return Digest(summaries, found, settings.dashboard_url, route.min_severity, notes,
                  incidents=found_incidents)


def notify(vigil: Vigil, run_id: int) -> AlertReport:
    """Email a stored run's digest to its team, exactly once.

    The dedupe key (run and recipients) makes a rerun or a second click a no-op; the
    throttle holds a digest back (``queued``) when the team had ALERT_MAX_PER_HOUR emails
    in the last hour, and the next digest includes it.
    """
    vigil.require("analyst")
    settings = vigil.settings
    with vigil.unit() as session:
        run = runs.get_run(session, run_id=run_id)
        if run is None:
            raise StorageError(f"no stored run with id {run_id}")
        route = _routing(settings, session)
        ids = anomalies.open_anomaly_ids(session, run_id=run_id, severities=route.severities)
        if not ids:
            return AlertReport("skipped", f"No alert sent: run {run_id} has no open anomaly "
                                          f"at {route.min_severity} severity or above.")
        claimed = _claim(settings, session, route, run, ids, f"Run {run_id}'s alert",
                         lambda to: policy.dedupe_key(run_id, to))
    return _send(vigil, claimed)


def notify_incident(vigil: Vigil, incident_id: int) -> AlertReport:
    """Email one incident of a live run to its team: once when it reaches
    ALERT_MIN_SEVERITY, once more if its severity rises, never twice for the same."""
    vigil.require("analyst")
    settings = vigil.settings
    with vigil.unit() as session:
        found = incidents.query_incidents(session, filters=IncidentFilter(ids=[incident_id]),
                                          limit=1)
        if found.empty:
            raise StorageError(f"no stored incident with id {incident_id}")
        incident = found.iloc[0]
        route = _routing(settings, session)
        if incident["severity"] not in route.severities \
                or incident["review_status"] in CLOSED_STATUSES:
            return AlertReport("skipped", f"No alert sent: incident {incident_id} is "
                                          f"{incident['severity']}, {incident['review_status']}.")
        run = runs.get_run(session, run_id=int(incident["run_id"]))
        ids = anomalies.query_anomalies(session, filters=AnomalyFilter(
            incident_ids=[incident_id]), limit=None)["id"].tolist()
        claimed = _claim(
            settings, session, route, run, ids, f"Incident {incident_id}'s alert",
            lambda to: policy.incident_dedupe_key(incident_id, incident["severity"], to))
    return _send(vigil, claimed)


def _claim(settings: Settings, session: Session, route: Routing, run: DetectionRun,
           ids: list[int], what: str, dedupe: Callable[[list[str]], str]
           ) -> _Claimed | AlertReport:
    """Claim the digest of ``ids`` (anomalies of ``run``) for sending, with its subject;
    or say why not: nobody to send to, claimed before, or held back by the hourly limit."""
    team = policy.team_for(run.profile)
    recipients = policy.recipients_for(run.profile, security=route.to_security,
                                       maintenance=route.to_maintenance)
    if not recipients:
        return AlertReport("skipped", f"No alert sent: nobody receives {run.profile} alerts "
                                      f"(the {team} team has no address): set one on the "
                                      f"Alerts page, or ALERT_TO_{team.upper()}.")
    group = policy.group_key(recipients)
    row, created = notifications.claim_notification(
        session, run_id=run.id, dedupe_key=dedupe(recipients), recipients=group,
        subject="", anomaly_ids=ids)
    if not created:
        when = f" on {row.sent_at:%Y-%m-%d %H:%M}" if row.sent_at else ""
        return AlertReport("duplicate", f"{what} to the {team} team was already handled "
                           f"({row.status}{when}): nothing was sent again.", row.id)
    since = datetime.now(UTC) - timedelta(hours=1)
    if policy.throttled(notifications.sent_since(session, recipients=group, since=since),
                        settings.alert_max_per_hour):
        notifications.record_attempt(
            session, notification_id=row.id, status="queued", attempts=0,
            error=f"held back: {settings.alert_max_per_hour} emails went to this team in the "
                  "last hour; it joins the next digest")
        return AlertReport("queued", f"{what} is held back: the {team} team had "
                           f"{settings.alert_max_per_hour} emails in the last hour. It joins "
                           "the next digest.", row.id)
    rows = [row, *notifications.held_back(session, recipients=group, exclude_id=row.id)]
    return _claimed(settings, session, route, rows, recipients, team)


def _claimed(settings: Settings, session: Session, route: Routing,
             rows: list[AlertNotification], recipients: list[str], team: str) -> _Claimed:
    digest = _digest(settings, session, [(row.run_id, row.anomaly_ids) for row in rows],
                     route)
    notifications.set_subject(session, notification_id=rows[0].id, subject=subject(digest))
    return _Claimed(rows, digest, recipients, team)


def _send(vigil: Vigil, claimed: _Claimed | AlertReport) -> AlertReport:
    """Deliver a claimed digest and record how it went (in a unit of its own)."""
    if isinstance(claimed, AlertReport):
        return claimed
    settings, rows, digest = vigil.settings, claimed.rows, claimed.digest
    try:
        try:
            message = build_message(digest, sender=settings.smtp_from,
                                    recipients=claimed.recipients)
        except ValueError as exc:  # the email library refused a header (SMTP_FROM, ...)
            raise DeliveryError(f"the message could not be built ({exc})", temporary=False,
                                attempts=0) from None
        transport, attempts = _deliver(settings, message, name=f"run-{digest.run.run_id}")
    except DeliveryError as exc:
        with vigil.unit() as session:
            notifications.record_attempt(session, notification_id=rows[0].id, status="failed",
                                         error=str(exc), attempts=exc.attempts)
        return AlertReport("failed", f"The alert for run {digest.run.run_id} was not sent: "
                           f"{exc}. It is recorded; `vigil alerts retry` sends it again.",
                           rows[0].id)
    with vigil.unit() as session:
        for row in rows:
            notifications.record_attempt(
                session, notification_id=row.id, status="sent", transport=transport,
                attempts=attempts if row is rows[0] else 0)
        audit.record(session, actor=vigil.actor.name, action="alert.send",
                     target=f"run {digest.run.run_id}",
                     after={"team": claimed.team, "recipients": claimed.recipients,
                            "notifications": [row.id for row in rows], "via": transport})
    where = transport.removeprefix("outbox:") if transport.startswith("outbox:") else transport
    return AlertReport("sent", f"Alert for run {digest.run.run_id} sent to the "
                       f"{claimed.team} team ({', '.join(claimed.recipients)}) via {where}: "
                       f"{message['Subject']}", rows[0].id)


def retry_failed(vigil: Vigil) -> list[AlertReport]:
    """Send each failed notification once more."""
    vigil.require("analyst")
    reports = []
    for row in notifications.notifications(vigil.engine, status="failed"):
        with vigil.unit() as session:
            run = runs.get_run(session, run_id=row.run_id)
            claimed = _claimed(vigil.settings, session, _routing(vigil.settings, session),
                               [row], row.recipients.split(","), policy.team_for(run.profile))
        reports.append(_send(vigil, claimed))
    return reports


def send_test_email(vigil: Vigil, to: str) -> str:
    """Send a short test message; returns where it went. Raises DeliveryError. The
    audit log keeps who sent one to which addresses (it can go to any address)."""
    actor = vigil.require("admin")
    settings = vigil.settings
    recipients = policy.parse_recipients(to)
    if not recipients:
        raise AlertError("give at least one address to send the test message to")
    message = probe_message(sender=settings.smtp_from, recipients=recipients,
                            dashboard_url=settings.dashboard_url)
    where = _deliver(settings, message, name="test")[0]
    with vigil.unit() as session:
        audit.record(session, actor=actor.name, action="alert.test",
                     target=", ".join(recipients)[:255], after={"transport": where})
    return where


def notification_log(vigil: Vigil, *, limit: int = 200):
    vigil.require("admin")
    return notifications.notifications_frame(vigil.engine, limit=limit)


def preview_digest(vigil: Vigil, run_id: int) -> tuple[str, str]:
    """(subject, HTML) of the digest the run would send now, without sending it."""
    vigil.require("admin")
    settings = vigil.settings
    with vigil.unit() as session:
        route = _routing(settings, session)
        ids = anomalies.open_anomaly_ids(session, run_id=run_id, severities=route.severities)
        digest = _digest(settings, session, [(run_id, ids)], route)
    return subject(digest), render_html(digest)
