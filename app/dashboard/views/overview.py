"""Overview: what was found lately, what is still open, the latest runs."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from app import services
from app.dashboard import charts, ui

vigil = ui.vigil()

st.title("Overview")
days = st.segmented_control("Period", [7, 30], default=7, format_func=lambda d: f"Last {d} days")
since = datetime.now(UTC) - timedelta(days=days or 7)
open_incidents = services.IncidentFilter(stored_since=since, review_statuses=["new"])
with ui.user_errors():
    stats = services.overview(vigil, since=since)
    latest = services.list_runs(vigil, limit=10)
    open_count = services.count_incidents(vigil, open_incidents)
    worst = services.query_incidents(vigil, open_incidents, limit=10)

per_day, review, runs = stats["per_day"], stats["review"], stats["runs"]
open_rows = int(review.loc[review["state"] == "open", "anomalies"].sum())
cells = st.columns(5)
cells[0].metric("Runs", f"{int(runs['runs'].sum()):,}")
cells[1].metric("Rows scored", f"{int(runs['rows'].sum()):,}")
cells[2].metric("Anomalies", f"{int(per_day['anomalies'].sum()):,}")
cells[3].metric("Open (not reviewed)", f"{open_rows:,}")
cells[4].metric("Open incidents", f"{open_count:,}")

if per_day.empty:
    st.info("Nothing stored in this period. Analyze a CSV (a bundled sample works) and save "
            "the run.")
    if vigil.actor.may("analyst"):  # the page a viewer has not got
        st.page_link("views/analyze.py", label="Analyze a CSV",
                     icon=":material/upload_file:")
else:
    st.subheader("Anomalies per day")
    st.caption("By the day they happened (UTC), in the runs stored in the period.")
    st.altair_chart(charts.per_day(per_day), width="content")
    st.subheader("Open versus reviewed")
    st.altair_chart(charts.review_state(review), width="stretch")

base = vigil.settings.dashboard_url.rstrip("/")
if not worst.empty:
    st.subheader("Open incidents, worst first")
    st.dataframe(ui.severity_styler(worst.assign(
        run=[f"{base}/explore?run={r}" for r in worst["run_id"]])[
        ["run", "entity", "started_at", "ended_at", "row_count", "peak_score", "severity",
         "summary"]]), hide_index=True, width="stretch", column_config={
        "run": st.column_config.LinkColumn("run", display_text=r"explore\?run=(\d+)"),
        "peak_score": st.column_config.NumberColumn("peak", format="%.1f")})

if latest:
    st.subheader("Latest runs")
    table = pd.DataFrame([{
        "run": f"{base}/explore?run={run.id}", "stored": run.created_at,
        "file": run.source_name, "profile": run.profile, "rows": run.total_rows,
        "flagged": run.anomaly_count,
        **{s: (run.severity_counts or {}).get(s, 0) for s in ("critical", "high")},
    } for run in latest])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "run": st.column_config.LinkColumn("run", display_text=r"explore\?run=(\d+)"),
        "stored": st.column_config.DatetimeColumn("stored", format="YYYY-MM-DD HH:mm")})
