"""The digest email: subject, HTML and text bodies, CSV attachment. Pure: no I/O.

Every value that came from an uploaded file (usernames, user agents, reasons quoting
them) is untrusted: the HTML template autoescapes it, and the CSV attachment neutralises
cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from detection import SEVERITIES
from detection.export import write_csv

TOP_IN_BODY = 20
MAX_REASON_CHARS = 300
ZIP_ABOVE_BYTES = 1_000_000  # attachments larger than this are zipped
SEVERITY_COLOURS = {"critical": "#b91c1c", "high": "#ea580c", "medium": "#ca8a04",
                    "low": "#2563eb"}
ATTACHMENT_COLUMNS = ("run_id", "row_number", "event_time", "entity", "anomaly_score",
                      "severity", "reasons")

_templates = Environment(
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
    row as a dict) which the attachment spreads into columns.
    """

    runs: list[RunSummary]
    anomalies: pd.DataFrame
    dashboard_url: str
    minimum_severity: str = "high"
    notes: list[str] = field(default_factory=list)

    @property
    def run(self) -> RunSummary:
        return self.runs[0]

    def severity_counts(self) -> list[tuple[str, int]]:
        counts = self.anomalies["severity"].value_counts()
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
    noun = "anomaly" if len(digest.anomalies) == 1 else "anomalies"
    return f"[Vigil] {counts} {noun} in {where}"


def _top(digest: Digest) -> list[dict]:
    top = digest.anomalies.nlargest(TOP_IN_BODY, "anomaly_score")
    rows = []
    for row in top.itertuples(index=False):
        reasons = str(row.reasons or "")
        if len(reasons) > MAX_REASON_CHARS:
            reasons = reasons[:MAX_REASON_CHARS - 1] + "…"
        time = pd.Timestamp(row.event_time) if pd.notna(row.event_time) else None
        rows.append({
            "entity": row.entity if isinstance(row.entity, str) else "",
            "time": f"{time:%Y-%m-%d %H:%M}" if time is not None else f"row {row.row_number}",
            "score": f"{row.anomaly_score:.1f}",
            "severity": row.severity,
            "colour": SEVERITY_COLOURS.get(row.severity, "#6b7280"),
            "reasons": reasons,
        })
    return rows


def _context(digest: Digest) -> dict:
    return {
        "digest": digest,
        "subject": subject(digest),
        "counts": digest.severity_counts(),
        "colours": SEVERITY_COLOURS,
        "top": _top(digest),
        "total": len(digest.anomalies),
        "shown": min(TOP_IN_BODY, len(digest.anomalies)),
    }


def render_html(digest: Digest) -> str:
    return _templates.get_template("digest.html").render(_context(digest))


def render_text(digest: Digest) -> str:
    return _templates.get_template("digest.txt").render(_context(digest))


def attachment_frame(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Our columns, then the original row's columns (prefixed when a name clashes)."""
    ours = anomalies[list(ATTACHMENT_COLUMNS)].reset_index(drop=True)
    if "data" not in anomalies:
        return ours
    original = pd.DataFrame(list(anomalies["data"]), index=ours.index)
    original.columns = [f"file_{c}" if c in ATTACHMENT_COLUMNS else c
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
