"""Live: what the streams (`vigil stream --save`) find now, refreshed every few seconds."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from app import services
from app.dashboard import charts, ui
from app.text import markdown

vigil = ui.vigil()

REFRESH_S = 3
WINDOWS = {"5 minutes": 5, "15 minutes": 15, "1 hour": 60, "4 hours": 240, "1 day": 1440}
OPEN = ["new", "acknowledged"]
ACTIONS = {"acknowledged": "Acknowledge", "confirmed": "Confirm",
           "false_positive": "False positive"}

st.title("Live")
with ui.user_errors():
    streams = services.live_streams(vigil)
if streams.empty:
    st.info("No live stream yet. Start one, for example:")
    st.code("vigil replay sample_data/elevators.csv --rate 50 \\\n"
            "  | vigil stream - --model active --save --alert --source lifts", language="bash")
    st.stop()

left, right = st.columns([2, 1])
source = left.selectbox("Stream", streams["source"].tolist())
window = right.select_slider("Last", list(WINDOWS), value="1 hour")


@st.fragment(run_every=REFRESH_S)
def live_view(source: str, window: str) -> None:
    minutes = WINDOWS[window]
    with ui.user_errors():
        stream = services.live_streams(vigil).set_index("source").loc[source]
        run_id = int(stream["run_id"])
        open_incidents = services.query_incidents(vigil,
            services.IncidentFilter(run_ids=[run_id], review_statuses=OPEN), limit=50)
        end = services.latest_event_time(vigil, run_id)
    # The window ends at the stream's newest flagged row: a replayed stream has old times.
    seen = st.session_state.setdefault("live_seen", {})
    now = datetime.now(UTC)
    before = seen.get(source)
    rate = ((stream["position"] - before[0]) / max((now - before[1]).total_seconds(), 1e-9)
            if before else None)
    seen[source] = (int(stream["position"]), now)
    age = (now - stream["updated_at"]).total_seconds()
    cells = st.columns(5)
    cells[0].metric("Rows stored", f"{int(stream['position']):,}")
    cells[1].metric("Rows/s", "…" if rate is None else f"{rate:,.0f}")
    cells[2].metric("Flagged rows", f"{int(stream['flagged']):,}")
    cells[3].metric("Open incidents", f"{len(open_incidents):,}")
    cells[4].metric("Last batch", f"{age:,.0f} s ago")
    if end is not None:
        with ui.user_errors():
            start = end - timedelta(minutes=minutes)
            recent = services.query_anomalies(vigil, services.AnomalyFilter(
                run_ids=[run_id], since=start), limit=None)
            series = services.run_series(vigil, [run_id])
        readings(series, recent, start, end, source)
        st.altair_chart(charts.live_scores(recent, start, end), width="stretch")
        st.caption(f"Flagged rows in the {window} up to the newest one "
                   f"({end:%Y-%m-%d %H:%M:%S}). Grey: the usual band, where the stream's "
                   "normal rows score (up to 50); above it, the severity bands.")
    st.subheader("Open incidents")
    if open_incidents.empty:
        st.caption("None open.")
    for incident in open_incidents.itertuples():
        cols = st.columns([5, 1, 1, 1])
        when = _span(incident.started_at, incident.ended_at)
        cols[0].markdown(f"**{incident.severity}** · peak {incident.peak_score:.1f} · "
                         f"{markdown(incident.entity or '')} · {when} · "
                         f"{incident.row_count} row(s) · {incident.review_status}  \n"
                         f"{markdown(incident.summary)}")
        if not vigil.actor.may("analyst"):
            continue  # viewers read; the use case refuses them too
        for col, (status, label) in zip(cols[1:], ACTIONS.items(), strict=True):
            # Applied in the click's callback, before the view reads the incidents again.
            col.button(label, key=f"{status}-{incident.id}", on_click=review,
                       args=(incident.id, status))


def readings(series: pd.DataFrame, recent: pd.DataFrame, start, end, source: str) -> None:
    """The stream's metric in the window, its usual band and the flags on it (as
    Analyze draws a file), opened on the metric the worst recent flag is about."""
    shown = series[(series["x"] >= start.replace(tzinfo=None))
                   & (series["x"] <= end.replace(tzinfo=None))] if len(series) else series
    metrics = sorted(shown["metric"].unique())
    if not metrics:
        return
    worst = str(recent.nlargest(1, "anomaly_score")["reasons"].iloc[0]) if len(recent) else ""
    metric = st.selectbox("Metric", metrics, index=charts.named_first(metrics, worst),
                          key=f"live_metric-{source}")
    st.altair_chart(charts.metric_over_time(shown, recent, metric), width="stretch")
    st.caption("Line: the stream's normal readings, binned; grey band: their usual range "
               "(5th–95th percentile); dots: flagged rows by severity.")


def _span(start, end) -> str:
    if pd.isna(start):
        return ""
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M:%S}–{end:%H:%M:%S}"
    return f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}"


def review(incident_id: int, status: str) -> None:
    with ui.user_errors():
        services.review_incidents(vigil, [incident_id], status)


live_view(source, window)
