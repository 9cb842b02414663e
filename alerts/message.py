"""The digest email: subject, HTML and text bodies, CSV attachment. Pure: no I/O.

Every value that came from an uploaded file (usernames, user agents, reasons quoting
them) is untrusted: the HTML template autoescapes it, and the CSV attachment neutralises
cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pandas as pd

from detection import SEVERITIES
from detection.export import write_csv

TOP_IN_BODY = 20
MAX_REASON_CHARS = 300
ZIP_ABOVE_BYTES = 1_000_000  # attachments larger than this are zipped
SEVERITY_COLOURS = {"critical": "#b91c1c", "high": "#ea580c", "medium": "#ca8a04",
                    "low": "#2563eb"}
ATTACHMENT_COLUMNS = ("run_id", "incident_id", "row_number", "event_time", "entity",
                      "anomaly_score", "severity", "reasons")
INCIDENT_FIELDS = ("entity", "started_at", "ended_at", "row_count", "peak_score", "severity",
                   "summary")

@functools.cache
def _templates():
    """The digest's templates, made on first use: Jinja2 is not imported by every process
    that imports this module (every command that loads the use cases)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("alerts", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    source_name: str
    profile: str
    created_at: datetime
    total_rows: int
    anomaly_count: int
    threshold_note: str = ""


@dataclass
class Digest:
    """One email: the anomalies of ``runs[0]`` plus any held back from earlier runs.

    ``anomalies`` has :data:`ATTACHMENT_COLUMNS` and, optionally, ``data`` (the original
    row as a dict) which the attachment spreads into columns. ``incidents`` (``id`` and
    :data:`INCIDENT_FIELDS`) are what the body lists; a row without an incident (stored
    before incidents existed) is listed as one of its own.
    """

    runs: list[RunSummary]
    anomalies: pd.DataFrame
    dashboard_url: str
    minimum_severity: str = "high"
    notes: list[str] = field(default_factory=list)
    incidents: pd.DataFrame | None = None

    @property
    def run(self) -> RunSummary:
        return self.runs[0]

    def items(self) -> pd.DataFrame:
        """Incidents of the alerted rows, plus lone rows without one, worst first."""
        known = self.incidents if self.incidents is not None else \
            pd.DataFrame(columns=["id", *INCIDENT_FIELDS])
        rows = self.anomalies
        if "incident_id" in rows:
            known = known[known["id"].isin(rows["incident_id"])]
            rows = rows[~rows["incident_id"].isin(known["id"])]
        lone = pd.DataFrame({
            "entity": rows["entity"], "started_at": rows["event_time"],
            "ended_at": rows["event_time"], "row_count": 1,
            "peak_score": rows["anomaly_score"], "severity": rows["severity"],
            "summary": rows["reasons"], "row_number": rows["row_number"]})
        parts = [part for part in (known.drop(columns="id"), lone) if len(part)]
        if not parts:
            return lone
        items = pd.concat(parts, ignore_index=True)
        return items.sort_values("peak_score", ascending=False, kind="stable")

    def severity_counts(self) -> list[tuple[str, int]]:
        counts = self.items()["severity"].value_counts()
        return [(s, int(counts[s])) for s in reversed(SEVERITIES[1:]) if counts.get(s, 0)]

    def run_link(self, run_id: int) -> str:
        return f"{self.dashboard_url.rstrip('/')}/explore?run={run_id}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_text(value: str) -> str:
    """A value fit for one email header line: control characters (CR, LF, tab...) from
    a file name become one space, so a name can never break or add a header."""
    return _CONTROL.sub(" ", value).strip()


def subject(digest: Digest) -> str:
    """``[Vigil] 3 critical, 9 high anomalies in logins_2025-06.csv``."""
    counts = ", ".join(f"{n} {s}" for s, n in digest.severity_counts()) or "no"
    where = header_text(digest.run.source_name)
    if len(digest.runs) > 1:
        where += f" and {len(digest.runs) - 1} earlier file(s)"
    noun = "incident" if len(digest.items()) == 1 else "incidents"
    return f"[Vigil] {counts} {noun} in {where}"


def _when(item) -> str:
    if pd.isna(item.started_at):
        return f"row {item.row_number}" if pd.notna(getattr(item, "row_number", None)) else ""
    start, end = pd.Timestamp(item.started_at), pd.Timestamp(item.ended_at)
    if end == start:
        return f"{start:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M} – {end:%H:%M}" if end.date() == start.date() \
        else f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"


def _top(items: pd.DataFrame) -> list[dict]:
    rows = []
    for item in items.head(TOP_IN_BODY).itertuples(index=False):
        summary = str(item.summary or "")
        if len(summary) > MAX_REASON_CHARS:
            summary = summary[:MAX_REASON_CHARS - 1] + "…"
        rows.append({
            "entity": item.entity if isinstance(item.entity, str) else "",
            "time": _when(item),
            "rows": int(item.row_count),
            "score": f"{item.peak_score:.1f}",
            "severity": item.severity,
            "colour": SEVERITY_COLOURS.get(item.severity, "#6b7280"),
            "summary": summary,
        })
    return rows


def _context(digest: Digest) -> dict:
    items = digest.items()
    return {
        "digest": digest,
        "subject": subject(digest),
        "counts": digest.severity_counts(),
        "colours": SEVERITY_COLOURS,
        "top": _top(items),
        "total": len(items),
        "rows": len(digest.anomalies),
        "shown": min(TOP_IN_BODY, len(items)),
    }


def render_html(digest: Digest) -> str:
    return _templates().get_template("digest.html").render(_context(digest))


def render_text(digest: Digest) -> str:
    return _templates().get_template("digest.txt").render(_context(digest))


def attachment_frame(anomalies: pd.DataFrame,
                     columns: tuple[str, ...] = ATTACHMENT_COLUMNS) -> pd.DataFrame:
    """Our ``columns``, then the original row's columns (prefixed when a name clashes)."""
    ours = anomalies.reindex(columns=list(columns)).reset_index(drop=True)
    if "data" not in anomalies:
        return ours
    original = pd.DataFrame(list(anomalies["data"]), index=ours.index)
    original.columns = [f"file_{c}" if c in columns else c
                        for c in map(str, original.columns)]
    return pd.concat([ours, original], axis=1)


def attachment(digest: Digest) -> tuple[str, bytes, str, str]:
    """(file name, bytes, maintype, subtype): CSV, zipped when large."""
    buffer = io.BytesIO()
    write_csv(attachment_frame(digest.anomalies), buffer)
    stem = f"vigil-run-{digest.run.run_id}-anomalies"
    data = buffer.getvalue()
    if len(data) <= ZIP_ABOVE_BYTES:
        return f"{stem}.csv", data, "text", "csv"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}.csv", data)
    return f"{stem}.zip", zipped.getvalue(), "application", "zip"


def build_message(digest: Digest, *, sender: str, recipients: list[str]) -> EmailMessage:
    """multipart/mixed: multipart/alternative (text, HTML) and the CSV attachment."""
    message = EmailMessage()
    message["Subject"] = subject(digest)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="vigil.local")
    message.set_content(render_text(digest))
    message.add_alternative(render_html(digest), subtype="html")
    name, data, maintype, subtype = attachment(digest)
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def probe_message(*, sender: str, recipients: list[str], dashboard_url: str) -> EmailMessage:
    """A short message proving the mail settings work."""
    message = EmailMessage()
    message["Subject"] = "[Vigil] test message"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="vigil.local")
    sent = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    message.set_content(f"Vigil can send email with these settings ({sent}).\n"
                        f"Dashboard: {dashboard_url}\n")
    return message
