"""Altair charts for the dashboard: plain functions from frames to charts.

Every chart gets bounded data: binned normal rows (see :mod:`app.chart_data`) plus at
most :data:`MAX_ANOMALY_POINTS` anomalies, so a million-row run draws as fast as a small
one. Pages call these and hand the result to ``st.altair_chart``.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from detection.calibration import FLAG_SCORE
from detection.columns import map_columns

MAX_ANOMALY_POINTS = 5_000
SEVERITY_ORDER = ["low", "medium", "high", "critical"]
SEVERITY_COLOURS = ["#60a5fa", "#facc15", "#f97316", "#b91c1c"]
SEVERITY_SCALE = alt.Scale(domain=SEVERITY_ORDER, range=SEVERITY_COLOURS)
# Entities' lines in neutral tones (slate, darkest first): colour on a metric chart means
# severity, and a blue or red line would read as a low or critical one.
ENTITY_TONES = ["#334155", "#64748b", "#0f172a", "#94a3b8", "#475569", "#1e293b"]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# We bound the data ourselves (MAX_POINTS, MAX_ANOMALY_POINTS); Altair's 5,000-row
# guard would refuse legitimate charts.
alt.data_transformers.disable_max_rows()


def _severity_colour(title: str = "Severity") -> alt.Color:
    return alt.Color("severity:N", scale=SEVERITY_SCALE, title=title,
                     sort=SEVERITY_ORDER)


def data_fields(anomalies: pd.DataFrame) -> pd.DataFrame:
    """The original rows of ``anomalies`` (its ``data`` column) as columns."""
    if "data" not in anomalies or anomalies.empty:
        return pd.DataFrame(index=anomalies.index)
    return pd.DataFrame(list(anomalies["data"]), index=anomalies.index)


def numeric_fields(anomalies: pd.DataFrame) -> list[str]:
    fields = data_fields(anomalies).apply(pd.to_numeric, errors="coerce")
    return [c for c in fields.columns if fields[c].notna().mean() > 0.5]


def named_first(metrics: list[str], reasons: str) -> int:
    """The index of the metric ``reasons`` (the worst anomaly's) names first, else 0: a
    chart opens on what the top anomaly is about, not the first metric by name."""
    named = [(reasons.find(m), i) for i, m in enumerate(metrics) if m in reasons]
    return min(named)[1] if named else 0


def metric_over_time(series: pd.DataFrame, anomalies: pd.DataFrame, metric: str,
                     *, time_based: bool = True) -> alt.LayerChart:
    """The metric's binned line with its usual band shaded, anomalies marked by severity.
    Drag on the chart to zoom (scroll to zoom, double-click to reset)."""
    x_type = "T" if time_based else "Q"
    x_title = "time" if time_based else "row"
    lines = series[series["metric"] == metric]
    zoom = alt.selection_interval(encodings=["x"], bind="scales")
    base = alt.Chart(lines).encode(x=alt.X(f"x:{x_type}", title=x_title))
    band = base.mark_area(opacity=0.25, color="#94a3b8").encode(
        y=alt.Y("lo:Q", title=metric), y2="hi:Q",
        tooltip=[alt.Tooltip("entity:N"), alt.Tooltip("lo:Q", title="usual from", format=".2f"),
                 alt.Tooltip("hi:Q", title="usual to", format=".2f")])
    line = base.mark_line(strokeWidth=1).encode(
        y="value:Q", detail="entity:N",
        color=alt.Color("entity:N", scale=alt.Scale(range=ENTITY_TONES),
                        legend=alt.Legend(title="entity") if
                        lines["entity"].nunique() <= 12 else None))
    points = anomaly_points(anomalies, metric, time_based=time_based)
    marks = alt.Chart(points).mark_circle(size=60, opacity=0.9).encode(
        x=alt.X(f"x:{x_type}"), y=alt.Y("value:Q"), color=_severity_colour(),
        tooltip=["entity:N", alt.Tooltip("x:T" if time_based else "x:Q", title=x_title),
                 alt.Tooltip("value:Q", format=".2f"),
                 alt.Tooltip("anomaly_score:Q", format=".1f"), "severity:N", "reasons:N"])
    return (alt.layer(band, line, marks).resolve_scale(color="independent")
            .add_params(zoom).properties(height=320))


def anomaly_points(anomalies: pd.DataFrame, metric: str, *,
                   time_based: bool = True) -> pd.DataFrame:
    """Anomalies as (x, value) points of ``metric``; the worst first, capped."""
    top = anomalies.nlargest(MAX_ANOMALY_POINTS, "anomaly_score")
    fields = data_fields(top)
    if metric == "anomaly_score":
        value = top["anomaly_score"]
    elif metric in fields:
        value = pd.to_numeric(fields[metric], errors="coerce")
    else:
        value = pd.Series(float("nan"), index=top.index)
    # A run without flagged rows has an untyped, empty event_time column.
    x = pd.to_datetime(top["event_time"], utc=True).dt.tz_convert(None) if time_based \
        else top["row_number"]
    return pd.DataFrame({"x": x, "value": value, "entity": top["entity"].fillna(""),
                         "anomaly_score": top["anomaly_score"], "severity": top["severity"],
                         "reasons": top["reasons"]}).dropna(subset=["value"])


HISTOGRAM_BIN = 5  # score points a bar: 20 bars, wide enough to read as bars


def score_distribution(histogram: pd.DataFrame, threshold: float = FLAG_SCORE) -> alt.LayerChart:
    """Rows per 5-point score bin, on a log-like axis ticked at 1, 10, 100, ... (the
    flagged tail is small), the threshold drawn."""
    width = HISTOGRAM_BIN
    data = (histogram.assign(bin=histogram["bin"] // width * width)
            .groupby("bin", as_index=False)["rows"].sum())
    data = data.assign(flagged=data["bin"] >= threshold, end=data["bin"] + width)
    top = max(1, int(data["rows"].max()) if len(data) else 1)
    ticks = [0] + [10 ** k for k in range(len(str(top)) + 1)]
    bars = alt.Chart(data).mark_bar(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("bin:Q", title="anomaly score", scale=alt.Scale(domain=[0, 100]),
                axis=alt.Axis(values=list(range(0, 101, 10)))),
        x2="end:Q",
        y=alt.Y("rows:Q", scale=alt.Scale(type="symlog"), title="rows",
                axis=alt.Axis(values=ticks, format="~s")),
        color=alt.Color("flagged:N", scale=alt.Scale(domain=[False, True],
                                                     range=["#94a3b8", "#dc2626"]),
                        legend=alt.Legend(title="flagged")),
        tooltip=[alt.Tooltip("bin:Q", title="from score"),
                 alt.Tooltip("end:Q", title="to score"), alt.Tooltip("rows:Q", format=",")])
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(
        color="black", strokeDash=[4, 3]).encode(x="threshold:Q")
    label = alt.Chart(pd.DataFrame({"threshold": [threshold],
                                    "text": [f"threshold {threshold:g}"]})).mark_text(
        align="left", dx=4, dy=-100).encode(x="threshold:Q", text="text:N")
    return alt.layer(bars, rule, label).properties(height=240)


def per_entity(counts: pd.DataFrame, *, label: str = "entity") -> alt.Chart:
    """Anomalies per user, elevator or sensor, most first."""
    return alt.Chart(counts).mark_bar().encode(
        y=alt.Y("entity:N", sort="-x", title=label),
        x=alt.X("anomalies:Q", title="anomalies"),
        color=alt.Color("max_score:Q", scale=alt.Scale(scheme="orangered", domain=[50, 100]),
                        title="worst score"),
        tooltip=["entity:N", "anomalies:Q", alt.Tooltip("max_score:Q", format=".1f")],
    ).properties(height=alt.Step(24))  # a row per entity, its label readable


def hour_weekday_heatmap(anomalies: pd.DataFrame) -> alt.Chart:
    """When anomalies happen: hour of day × weekday."""
    times = anomalies["event_time"].dropna()
    data = pd.DataFrame({"hour": times.dt.hour, "weekday": times.dt.day_of_week.map(
        dict(enumerate(WEEKDAYS)))}).value_counts().rename("anomalies").reset_index()
    return alt.Chart(data).mark_rect().encode(
        # Every hour and weekday, those without anomalies too: 3 stands three columns
        # from 6, and each weekday has a row tall enough for its label.
        x=alt.X("hour:O", title="hour (UTC)", scale=alt.Scale(domain=list(range(24)))),
        y=alt.Y("weekday:O", title=None, scale=alt.Scale(domain=WEEKDAYS)),
        color=alt.Color("anomalies:Q", scale=alt.Scale(scheme="reds")),
        tooltip=["weekday:N", "hour:O", "anomalies:Q"]).properties(height=alt.Step(20))


def scatter_fields(numeric: list[str]) -> tuple[str, str]:
    """The two fields the scatter starts with: longitude and latitude where the rows have
    them (a map of where flagged logins came from), else the first two."""
    mapping = map_columns(numeric)
    if mapping.longitude and mapping.latitude:
        return mapping.longitude, mapping.latitude
    return numeric[0], numeric[1]


def country_field(anomalies: pd.DataFrame) -> str | None:
    """The original rows' country column, found by the same synonyms as detection."""
    fields = data_fields(anomalies)
    return map_columns([str(c) for c in fields.columns]).country


def by_country(anomalies: pd.DataFrame) -> alt.Chart | None:
    column = country_field(anomalies)
    if column is None:
        return None
    counts = (data_fields(anomalies)[column].fillna("(unknown)").astype(str)
              .to_frame("country").assign(severity=anomalies["severity"].to_numpy())
              .value_counts().rename("anomalies").reset_index())
    return alt.Chart(counts).mark_bar().encode(
        y=alt.Y("country:N", sort="-x", title="country"), x="anomalies:Q",
        color=_severity_colour(), tooltip=["country:N", "severity:N", "anomalies:Q"],
    ).properties(height=max(120, 18 * counts["country"].nunique()))


def feature_scatter(anomalies: pd.DataFrame, x: str, y: str) -> alt.Chart:
    """Two fields of the flagged rows against each other, coloured by severity."""
    top = anomalies.nlargest(MAX_ANOMALY_POINTS, "anomaly_score")
    fields = data_fields(top).apply(pd.to_numeric, errors="coerce")
    data = pd.DataFrame({"x": fields[x], "y": fields[y], "severity": top["severity"],
                         "entity": top["entity"].fillna(""),
                         "anomaly_score": top["anomaly_score"]}).dropna()
    return alt.Chart(data).mark_circle(size=50, opacity=0.8).encode(
        x=alt.X("x:Q", title=x, scale=alt.Scale(zero=False)),
        y=alt.Y("y:Q", title=y, scale=alt.Scale(zero=False)), color=_severity_colour(),
        tooltip=["entity:N", "x:Q", "y:Q", alt.Tooltip("anomaly_score:Q", format=".1f")],
    ).interactive().properties(height=300)


def per_day(counts: pd.DataFrame) -> alt.Chart:
    """Anomalies per day, stacked by severity, one column per profile."""
    return alt.Chart(counts).mark_bar().encode(
        x=alt.X("yearmonthdate(day):O", title="day stored"),
        y=alt.Y("sum(anomalies):Q", title="anomalies"),
        color=_severity_colour(),
        column=alt.Column("profile:N", title=None),
        tooltip=["yearmonthdate(day):T", "profile:N", "severity:N", "sum(anomalies):Q"],
    ).properties(height=220, width=260)


def review_state(review: pd.DataFrame) -> alt.Chart:
    """Open versus reviewed anomalies per severity."""
    return alt.Chart(review).mark_bar().encode(
        y=alt.Y("severity:N", sort=list(reversed(SEVERITY_ORDER)), title=None),
        x=alt.X("sum(anomalies):Q", title="anomalies"),
        color=alt.Color("state:N", scale=alt.Scale(domain=["open", "reviewed"],
                                                   range=["#dc2626", "#16a34a"])),
        tooltip=["severity:N", "state:N", "sum(anomalies):Q"]).properties(height=160)



def live_scores(anomalies: pd.DataFrame, start: pd.Timestamp,
                end: pd.Timestamp) -> alt.LayerChart:
    """Flagged rows of a live stream from ``start`` to ``end`` by score and severity,
    over the usual band (scores up to the flag threshold, where normal rows lie) and the
    severity bands above it. The time axis spans the whole window: two flags ten minutes
    apart do not fill an hour's chart."""
    points = anomalies.nlargest(MAX_ANOMALY_POINTS, "anomaly_score").assign(
        time=lambda f: f["event_time"].dt.tz_convert(None),
        entity=lambda f: f["entity"].fillna(""))
    bands = pd.DataFrame({"from": [0, FLAG_SCORE, 70, 85, 95],
                          "to": [FLAG_SCORE, 70, 85, 95, 100],
                          "band": ["usual", *SEVERITY_ORDER]})
    band = alt.Chart(bands).mark_rect(opacity=0.1).encode(
        # Up to 104: a dot at 100 is drawn whole, not cut by the top edge.
        y=alt.Y("from:Q", title="score", scale=alt.Scale(domain=[0, 104]),
                axis=alt.Axis(values=[0, FLAG_SCORE, 70, 85, 95, 100])), y2="to:Q",
        color=alt.Color("band:N", legend=None, scale=alt.Scale(
            domain=["usual", *SEVERITY_ORDER], range=["#9ca3af", *SEVERITY_COLOURS])),
        tooltip=[alt.Tooltip("band:N", title="band")])
    marks = alt.Chart(points).mark_circle(size=55, opacity=0.9).encode(
        x=alt.X("time:T", title="time", scale=alt.Scale(domain=[alt.DateTime(
            year=t.year, month=t.month, date=t.day, hours=t.hour, minutes=t.minute,
            seconds=t.second, milliseconds=t.microsecond // 1000, utc=True)
            for t in (start, end)])),
        y=alt.Y("anomaly_score:Q"),
        color=_severity_colour(),
        tooltip=["entity:N", alt.Tooltip("time:T", format="%Y-%m-%d %H:%M:%S"),
                 alt.Tooltip("anomaly_score:Q", format=".1f"), "severity:N", "reasons:N"])
    return alt.layer(band, marks).properties(height=300)
