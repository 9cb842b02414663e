"""The digest's content, built without any I/O."""

import io
import zipfile
from datetime import UTC, datetime

import pandas as pd
import pytest

from alerts.message import (
    TOP_IN_BODY,
    Digest,
    RunSummary,
    attachment,
    build_message,
    render_html,
    render_text,
    subject,
)

SCRIPT = "<script>alert(1)</script>"


def digest(n: int = 12, **kwargs) -> Digest:
    severities = ["critical"] * 3 + ["high"] * (n - 3)
    anomalies = pd.DataFrame({
        "id": range(1, n + 1), "run_id": 4, "row_number": range(10, 10 + n),
        "event_time": pd.date_range("2025-06-01 08:00", periods=n, freq="min", tz="UTC"),
        "entity": [SCRIPT] + [f"user{i:03d}" for i in range(1, n)],
        "anomaly_score": [99 - i * 0.001 for i in range(n)],
        "severity": severities,
        "reasons": ["first login from Brazil for user (usual: Norway)"] * n,
        "data": [{"user": SCRIPT if i == 0 else f"user{i:03d}",
                  "device": "=HYPERLINK(\"http://evil\")" if i == 0 else "Firefox"}
                 for i in range(n)],
    })
    run = RunSummary(4, "logins_2025-06.csv", "login", datetime(2025, 6, 2, tzinfo=UTC),
                     10_111, n, "Rows scoring above 50 are flagged.")
    return Digest([run], anomalies, "https://vigil.example.org", **kwargs)


def test_subject_counts_by_severity_and_names_the_file():
    # Rows without an incident (stored before incidents) count as one each.
    assert subject(digest()) == "[Vigil] 3 critical, 9 high incidents in logins_2025-06.csv"


def test_html_escapes_values_from_the_upload():
    html = render_html(digest())
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="https://vigil.example.org/explore?run=4"' in html


def test_text_alternative_has_the_same_facts():
    text = render_text(digest())
    assert "12 incidents (12 flagged rows) at high severity or above in logins_2025-06.csv" \
        in text
    assert "3 critical, 9 high" in text and SCRIPT in text  # plain text: shown as text
    assert "https://vigil.example.org/explore?run=4" in text


def test_message_is_alternative_plus_csv_attachment():
    message = build_message(digest(), sender="vigil@x.org", recipients=["a@x.org", "b@x.org"])
    assert message["To"] == "a@x.org, b@x.org"
    body = message.get_body(("html",))
    assert body.get_content_type() == "text/html"
    assert message.get_body(("plain",)).get_content_type() == "text/plain"
    (csv_part,) = list(message.iter_attachments())
    assert csv_part.get_filename() == "vigil-run-4-anomalies.csv"
    rows = pd.read_csv(io.BytesIO(csv_part.get_payload(decode=True)))
    assert len(rows) == 12
    assert rows.loc[0, "device"] == "'=HYPERLINK(\"http://evil\")"


def test_body_shows_top_rows_only_and_large_attachments_are_zipped():
    big = digest(100_000)
    html = render_html(big)
    assert html.count("<tr style=\"vertical-align:top;\">") == TOP_IN_BODY
    assert "99980 more in the attached CSV" in html
    assert len(html) < 40_000
    name, data, maintype, subtype = attachment(big)
    assert (name, maintype, subtype) == ("vigil-run-4-anomalies.zip", "application", "zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = pd.read_csv(archive.open("vigil-run-4-anomalies.csv"))
    assert len(rows) == 100_000
    assert len(data) < 3_000_000


@pytest.mark.parametrize("held", [1, 2])
def test_digest_with_held_back_runs(held):
    base = digest()
    extra = [RunSummary(i, f"earlier{i}.csv", "login", datetime(2025, 6, 1, tzinfo=UTC), 10, 1)
             for i in range(1, held + 1)]
    joined = Digest(base.runs + extra, base.anomalies, base.dashboard_url,
                    notes=["Includes held back digests."])
    assert subject(joined).endswith(f"in logins_2025-06.csv and {held} earlier file(s)")
    assert "Includes held back digests." in render_html(joined)


def incident_digest(incidents: int = 25, rows_each: int = 3) -> Digest:
    """``incidents`` incidents of ``rows_each`` rows, incident i peaking at 60 + i."""
    n = incidents * rows_each
    number = [i // rows_each for i in range(n)]
    anomalies = pd.DataFrame({
        "id": range(1, n + 1), "run_id": 4, "incident_id": [100 + k for k in number],
        "row_number": range(1, n + 1),
        "event_time": pd.date_range("2025-06-01 08:00", periods=n, freq="min", tz="UTC"),
        "entity": [f"elevator-{k}" for k in number],
        "anomaly_score": [60.0 + k - (i % rows_each) for i, k in enumerate(number)],
        "severity": ["critical" if k >= 35 else "high" for k in number],
        "reasons": ["vibration 68.2, usual 20.1 ± 3.0"] * n,
    })
    found = pd.DataFrame({
        "id": [100 + k for k in range(incidents)],
        "entity": [f"elevator-{k}" for k in range(incidents)],
        "started_at": pd.date_range("2025-06-01 08:00", periods=incidents, freq="3min", tz="UTC"),
        "ended_at": pd.date_range("2025-06-01 08:02", periods=incidents, freq="3min", tz="UTC"),
        "row_count": rows_each, "peak_score": [60.0 + k for k in range(incidents)],
        "severity": ["critical" if k >= 35 else "high" for k in range(incidents)],
        "summary": [f"incident {k}: vibration 68.2, usual 20.1 ± 3.0 (3 rows over 2 min)"
                    for k in range(incidents)],
    })
    run = RunSummary(4, "elevators.csv", "sensor", datetime(2025, 6, 2, tzinfo=UTC), 8064, n)
    return Digest([run], anomalies, "https://vigil.example.org", incidents=found)


def test_the_digest_lists_the_top_incidents_by_peak_and_attaches_every_row():
    found = incident_digest()
    assert subject(found) == "[Vigil] 25 high incidents in elevators.csv"
    html = render_html(found)
    assert "25 incidents at high severity or above (75 flagged rows)" in html
    listed = [k for k in range(25) if f"incident {k}:" in html]
    assert listed == list(range(5, 25))  # the 20 with the highest peaks
    assert "5 more in the attached CSV" in html
    assert "2025-06-01 09:12 – 09:14" in html  # incident 24, the worst
    (part,) = list(build_message(found, sender="v@x.org", recipients=["o@x.org"])
                   .iter_attachments())
    rows = pd.read_csv(io.BytesIO(part.get_payload(decode=True)))
    assert len(rows) == 75 and rows["incident_id"].tolist() == found.anomalies["incident_id"].tolist()
