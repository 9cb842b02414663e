"""Explore stored runs: one set of filters drives every chart, the table and the download."""

from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

from app import services
from app.dashboard import charts, ui
from app.text import counted, markdown, words
from detection.calibration import SEVERITIES

vigil = ui.vigil()

TABLE_ROWS = 1_000

st.title("Explore")
with ui.user_errors():
    stored = services.list_runs(vigil, limit=500)
if not stored:
    st.info("No stored runs yet: analyze a file and save it.")
    if vigil.actor.may("analyst"):  # the page a viewer has not got
        st.page_link("views/analyze.py", label="Analyze a CSV",
                     icon=":material/upload_file:")
    st.stop()

by_id = {run.id: run for run in stored}
wanted = [int(v) for v in st.query_params.get_all("run") if v.isdigit() and int(v) in by_id]
run_ids = st.multiselect("Runs", list(by_id), default=wanted or [stored[0].id],
                         format_func=lambda i: ui.run_label(by_id[i]))
if not run_ids:
    st.stop()
st.query_params["run"] = [str(i) for i in run_ids]
runs = [by_id[i] for i in run_ids]
profiles = {run.profile for run in runs}

with ui.user_errors():
    series = services.run_series(vigil, run_ids)
    entities = services.entity_counts(vigil, services.AnomalyFilter(run_ids=run_ids), limit=500)["entity"]

# The filters belong to the runs shown: other runs, other filters, each from its defaults
# (a key of their own; a filter kept from the previous runs matched none of these rows).
scope = "-".join(map(str, run_ids))
with st.sidebar:
    st.header("Filters")
    time_based = series.empty or pd.api.types.is_datetime64_any_dtype(series["x"])
    since = until = None
    if time_based and not series.empty:
        first, last = series["x"].min().date(), series["x"].max().date()
        picked = st.date_input("Time range", value=(first, last), key=f"time-{scope}")
        if isinstance(picked, tuple) and len(picked) == 2:
            since = datetime.combine(picked[0], time.min, tzinfo=UTC)
            until = datetime.combine(picked[1], time.max, tzinfo=UTC)
    severities = st.multiselect("Severity", SEVERITIES[1:], default=list(SEVERITIES[1:]),
                                key=f"severity-{scope}")
    chosen_entities = st.multiselect("Entity (user, elevator, sensor)", list(entities),
                                     key=f"entity-{scope}")
    low, high = st.slider("Score", 50.0, 100.0, (50.0, 100.0), step=0.5, key=f"score-{scope}")
    reason_text = st.text_input("Reasons contain", placeholder="e.g. first login, vibration",
                                key=f"reasons-{scope}")
    statuses = st.multiselect("Review status", services.REVIEW_STATUSES,
                              default=list(services.REVIEW_STATUSES), key=f"status-{scope}")

filters = services.AnomalyFilter(run_ids=run_ids, since=since, until=until, severities=severities,
                        entities=chosen_entities, min_score=low, max_score=high,
                        review_statuses=statuses, reason_text=reason_text or None)
with ui.user_errors():
    total = services.count_anomalies(vigil, filters)
    found = services.query_anomalies(vigil, filters, limit=charts.MAX_ANOMALY_POINTS, with_data=True)

st.markdown(f"**{total:,}** anomalies match the filters in {len(runs)} run(s) "
            f"({sum(r.total_rows for r in runs):,} rows scored).")

if chosen_entities:
    series = series[series["entity"].isin(chosen_entities) | (series["entity"] == "all")]
if since is not None and not series.empty:
    series = series[(series["x"] >= since.replace(tzinfo=None)) &
                    (series["x"] <= until.replace(tzinfo=None))]

st.subheader("Incidents")
incident_filters = services.IncidentFilter(run_ids=run_ids, severities=severities,
                                           entities=chosen_entities, review_statuses=statuses)
with ui.user_errors():
    incident_count = services.count_incidents(vigil, incident_filters)
    incident_table = services.query_incidents(vigil, incident_filters, limit=TABLE_ROWS)
st.caption(f"{counted(incident_count, 'incident')}: flagged rows of one entity that follow "
           "each other closely are one incident. A review applies to every row in it."
           + (f" Showing the {len(incident_table):,} with the highest peaks."
              if incident_count > len(incident_table) else ""))
picked = st.dataframe(
    ui.severity_styler(ui.readable(incident_table, ["review_status", "severity", "peak_score",
                                                    "entity", "started_at", "summary"])),
    width="stretch", hide_index=True, on_select="rerun", selection_mode="multi-row",
    key="incident_table",
    column_config={"peak": st.column_config.ProgressColumn(
        "peak", min_value=0, max_value=100, format="%.1f"),
        "summary": st.column_config.TextColumn("summary", width="large")})
selected = incident_table.iloc[picked.selection.rows]["id"].tolist() if picked else []

labels = {row.id: f"#{row.id} {row.entity or ''} · {row.row_count} row(s) · peak "
                  f"{row.peak_score:.1f} {row.severity}" for row in incident_table.itertuples()}
if vigil.actor.may("analyst"):  # viewers read; the use case refuses them too
    with st.form("review"):
        st.markdown(f"**Review** as {markdown(vigil.actor.name)}: select incidents in the "
                    "table, or pick them here")
        selected = st.multiselect("Incidents", list(labels), default=selected,
                                  format_func=labels.get,
                                  key=f"review_rows_{hash(tuple(selected))}")
        cols = st.columns([2, 6])
        status = cols[0].selectbox("Mark as", services.REVIEW_STATUSES[1:],
                                   format_func=words)
        note = cols[1].text_input("Note")
        if st.form_submit_button("Apply"):
            if not selected:
                st.warning("Select incidents in the table first.")
            else:
                with ui.user_errors():
                    changed = services.review_incidents(vigil, selected, status,
                                                        note=note or None)
                st.session_state["reviewed"] = (f"{counted(changed, 'incident')} marked "
                                                f"{words(status)}.")
                st.rerun()
if "reviewed" in st.session_state:
    st.success(st.session_state.pop("reviewed"))


metrics = sorted(series["metric"].unique())
if metrics:
    metric = st.selectbox("Metric over time", metrics)
    st.altair_chart(charts.metric_over_time(series, found, metric, time_based=time_based),
                    width="stretch")
    st.caption("Line: binned normal readings; grey band: their usual range (5th–95th "
               "percentile); dots: anomalies by severity. Drag or scroll to zoom, "
               "double-click to reset.")

st.subheader("Anomalies")
table = found.head(TABLE_ROWS).drop(columns=["data"])
if total > len(table):
    st.caption(f"Showing the {len(table):,} highest scores of {total:,}; narrow the filters or "
               "download them all.")
ui.anomaly_table(ui.readable(table, ["review_status", "severity", "anomaly_score",
                                     "event_time", "entity", "reasons", "note",
                                     "reviewed_by"]), hide_index=True, key="anomaly_table")

if st.button("Prepare CSV of all matching rows"):
    with ui.user_errors():
        st.session_state["export"] = (repr(filters), services.anomalies_csv(vigil, filters))
export = st.session_state.get("export")
if export and export[0] == repr(filters):
    st.download_button("Download CSV", export[1], file_name="vigil-anomalies.csv",
                       mime="text/csv", help="Cells that a spreadsheet would run as a "
                       "formula are prefixed with a quote.")


st.divider()
left, right = st.columns(2)
with left:
    st.subheader("Score distribution")
    histogram = services.run_histogram(vigil, run_ids)
    st.altair_chart(charts.score_distribution(histogram), width="stretch")
    st.caption(runs[0].threshold_note)
with right:
    label = "user" if profiles == {"login"} else "entity"
    st.subheader(f"Anomalies per {label}")
    with ui.user_errors():
        counts = services.entity_counts(vigil, filters)
    if counts.empty:
        st.caption("No entity column in these runs.")
    else:
        st.altair_chart(charts.per_entity(counts, label=label), width="stretch")

if "login" in profiles and not found.empty:
    left, right = st.columns(2)
    with left:
        st.subheader("When: hour × weekday")
        st.altair_chart(charts.hour_weekday_heatmap(found), width="stretch")
    country_chart = charts.by_country(found)
    if country_chart is not None:
        with right:
            st.subheader("By country")
            st.altair_chart(country_chart, width="stretch")

numeric = charts.numeric_fields(found)
if len(numeric) >= 2:
    st.subheader("Two fields of the flagged rows")
    a, b = st.columns(2)
    first_x, first_y = charts.scatter_fields(numeric)
    x = a.selectbox("x", numeric, index=numeric.index(first_x))
    y = b.selectbox("y", numeric, index=numeric.index(first_y))
    st.altair_chart(charts.feature_scatter(found, x, y), width="stretch")
