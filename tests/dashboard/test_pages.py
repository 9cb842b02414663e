"""Every page with Streamlit's AppTest, and the flows staff use."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import func, select

from app import services
from app.dashboard import charts
from app.vigil import Vigil
from sample_data import sample_path
from storage.anomalies import AnomalyFilter
from storage.schema import AlertNotification, Anomaly, DetectionRun
from tests.conftest import to_csv_bytes
from tests.dashboard.conftest import chart_payload, open_page, shown

PAGES = ["overview", "analyze", "explore", "live", "alerts", "models"]


def counts(database_url):
    engine = Vigil().engine
    with engine.connect() as conn:
        return tuple(conn.scalar(select(func.count()).select_from(t))
                     for t in (DetectionRun, Anomaly, AlertNotification))


def analyze_sample(name: str):
    at = open_page("analyze")
    sample = next(s for s in at.selectbox if s.label == "Sample")
    sample.set_value(name).run()
    button(at, "Run detection").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_on_an_empty_database(dashboard_env, page):
    at = open_page(page)
    assert at.title[0].value


def test_analyze_save_twice_alert_twice_stores_one_run_and_sends_one_email(dashboard_env,
                                                                             database_url):
    at = analyze_sample("logins.csv")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows scored"] == "10,101"
    assert int(metrics["Critical"].replace(",", "")) > 0
    assert len(at.dataframe) >= 1
    button(at, "Save run").click().run()
    assert any("Stored as run 1." in s for s in shown(at.success))
    button(at, "Save run").click().run()  # a second click
    assert any("Already stored as run 1" in s for s in shown(at.success))
    at.run()  # a plain rerun
    button(at, "Send alert").click().run()
    assert any("sent to the security team" in i for i in shown(at.info))
    button(at, "Send alert").click().run()
    assert any("nothing was sent again" in i for i in shown(at.info))
    for page in PAGES:  # page switches do not save or send either
        open_page(page, at)
    stored_runs, stored_anomalies, notifications = counts(database_url)
    assert (stored_runs, notifications) == (1, 1)
    assert stored_anomalies == services.count_anomalies(Vigil(), AnomalyFilter())
    assert len(list((dashboard_env / "outbox").glob("*.eml"))) == 1
    saved = services.audit_log(Vigil(), action="run.save")  # by the signed-in user, once
    assert list(zip(saved["actor"], saved["target"], strict=True)) == [("admin-tester", "run 1")]


def test_analyze_shows_the_worst_rows_readings_as_in_the_file_and_the_score_as_a_bar(
        dashboard_env):
    """The pandas Styler showed 37.240000 for a reading of 37.24, and 100.000000 for a
    score; every row shown is flagged, so an is_anomaly column of ones said nothing."""
    at = analyze_sample("elevators.csv")
    table = at.dataframe[-1]  # after the incidents
    assert "is_anomaly" not in table.value.columns and len(table.value) == 20
    # Why first: a wide file's own columns pushed the reasons out of view.
    assert table.value.columns[:3].tolist() == ["anomaly_score", "severity", "reasons"]
    shown_cells = pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_pandas()
    in_file = pd.read_csv(sample_path("elevators.csv"), dtype=str)
    rows = shown_cells.merge(in_file, on=["timestamp", "elevator_id"], suffixes=("", "_file"))
    assert len(rows) == 20
    for column in ["revolutions", "humidity", "vibration"]:
        for text, written in zip(rows[column], rows[f"{column}_file"], strict=True):
            assert float(text) == float(written) and len(text) <= len(written), (text, written)
    columns = json.loads(table.proto.columns)
    assert columns["anomaly_score"]["type_config"] == {
        "type": "progress", "format": "%.1f", "min_value": 0, "max_value": 100}


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"timestamp,value\n2025-01-01,1\nnope,2\n",
      "column 'timestamp': 1 value(s) are not dates (row 2)"),
     (b'timestamp,value\n2025-01-01,1\n"2025-01-02,2\n',
      "the quoted value that starts on line 3 of the file is never closed")],
    ids=["bad-dates", "unclosed-quote"],
)
def test_bad_upload_is_explained_not_a_traceback(dashboard_env, content, message):
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("bad.csv", content, "text/csv")).run()
    assert not at.exception
    assert shown(at.error)[0].startswith(message)


def test_upload_a_csv(dashboard_env):
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    rows = "".join(f"2025-01-01 {h % 24:02d}:{h // 24:02d},{20 + (h % 24) / 10}\n"
                   for h in range(24 * 40))
    at.file_uploader[0].set_value(("t.csv", ("timestamp,value\n" + rows).encode(),
                                   "text/csv")).run()
    button(at, "Run detection").click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Rows scored"] == "960"


@pytest.fixture
def stored_run(dashboard_env):
    at = analyze_sample("elevators.csv")
    button(at, "Save run").click().run()
    return services.list_runs(Vigil())[0].id


def chart_rows(at) -> list[int]:
    return [rows for rows, _ in chart_payload(at)]


def incident_table(at) -> pd.DataFrame:
    return at.dataframe[0].value  # Explore: incidents first, then their rows


def anomaly_table(at) -> pd.DataFrame:
    return at.dataframe[1].value


def table_rows(at) -> int:
    return len(anomaly_table(at))


def test_explore_filters_change_the_table_and_the_charts(stored_run):
    at = open_page("explore")
    assert [m.value for m in at.multiselect if m.label == "Runs"] == [[stored_run]]
    everything = table_rows(at)
    before = chart_rows(at)
    # Four elevators: each its own bar, tall enough for its label (at 120 pixels for the
    # whole chart two of the four labels were dropped).
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    per_entity = next(s for s in specs if s.get("encoding", {}).get("y", {}).get("field")
                      == "entity")
    assert per_entity["height"] == {"step": 24}
    next(m for m in at.multiselect if m.label == "Severity").set_value(["critical"]).run()
    assert not at.exception
    critical = table_rows(at)
    assert 0 < critical < everything
    assert chart_rows(at) != before
    assert set(anomaly_table(at)["severity"]) == {"critical"}
    assert set(incident_table(at)["severity"]) == {"critical"}
    next(t for t in at.text_input if t.label == "Reasons contain").set_value(
        "no-such-reason").run()
    assert table_rows(at) == 0


def test_changing_the_run_starts_its_filters_afresh(stored_run):
    """Filters set for one run (an entity, a time range of its days) showed "0 anomalies
    match" for the next run until a filter was touched, though the sidebar looked reset."""
    at = analyze_sample("temperature.csv")
    button(at, "Save run").click().run()
    temperature = services.list_runs(Vigil())[0]
    elevators = services.get_run(Vigil(), stored_run)
    at = open_page("explore")
    runs = next(m for m in at.multiselect if m.label == "Runs")
    runs.set_value([stored_run]).run()
    entity = next(m for m in at.multiselect if m.label.startswith("Entity"))
    entity.set_value([entity.options[0]]).run()
    next(m for m in at.multiselect if m.label == "Severity").set_value(["critical"]).run()
    assert 0 < table_rows(at) < elevators.anomaly_count
    next(m for m in at.multiselect if m.label == "Runs").set_value([temperature.id]).run()
    assert not at.exception
    assert f"**{temperature.anomaly_count:,}** anomalies match" in " ".join(
        m.value for m in at.markdown)
    assert [m.value for m in at.multiselect if m.label == "Severity"] == [
        ["low", "medium", "high", "critical"]]
    assert table_rows(at) == temperature.anomaly_count


def test_reviewing_incidents_reviews_their_rows_as_the_signed_in_analyst(stored_run):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import MAIN, sign_in

    at = sign_in(AppTest.from_file(str(MAIN), default_timeout=180), role="analyst",
                 name="ana")
    at.run()
    open_page("explore", at)
    assert not [t for t in at.text_input if t.label == "Reviewed by"]  # who: the session
    ids = incident_table(at)["id"].tolist()[:2]
    next(m for m in at.multiselect if m.label == "Incidents").set_value(ids)
    next(s for s in at.selectbox if s.label == "Mark as").set_value("false_positive")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception
    assert any("2 incidents marked false positive." in s for s in shown(at.success))
    reviewed = services.query_incidents(Vigil(), services.IncidentFilter(ids=ids))
    assert set(reviewed["review_status"]) == {"false_positive"}
    rows = services.query_anomalies(Vigil(), AnomalyFilter(run_ids=[stored_run]), limit=None)
    mine = rows[rows["incident_id"].isin(ids)]
    assert len(mine) == reviewed["row_count"].sum()
    assert set(mine["review_status"]) == {"false_positive"} and set(mine["reviewed_by"]) == {"ana"}
    assert set(rows.loc[~rows["incident_id"].isin(ids), "review_status"]) == {"new"}
    log = services.audit_log(Vigil(), action="incident.review")
    assert log["actor"].tolist() == ["ana"]
    assert log["target"].tolist() == [f"2 incidents: {ids[0]}, {ids[1]}"]
    next(m for m in at.multiselect if m.label == "Review status").set_value(
        ["false_positive"]).run()
    assert sorted(incident_table(at)["id"]) == sorted(ids)
    assert len(anomaly_table(at)) == len(mine)


def test_csv_download_is_formula_safe(dashboard_env):
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    rows = "".join(f"2025-01-0{1 + i // 24} {i % 24:02d}:00,{5 if i != 30 else 500},"
                   f"=HYPERLINK(\"x\")\n" for i in range(48 * 2))
    at.file_uploader[0].set_value(("f.csv", ("timestamp,value,note\n" + rows).encode(),
                                   "text/csv")).run()
    button(at, "Run detection").click().run()
    button(at, "Save run").click().run()
    data = services.anomalies_csv(Vigil(), AnomalyFilter())
    frame = pd.read_csv(io.BytesIO(data))
    # The file's "note" meets the export's review note: it is the file's, prefixed.
    assert len(frame) > 0 and frame["file_note"].str.startswith("'=").all()
    assert frame["note"].isna().all()  # no review note yet


def test_alerts_page_previews_escaped_html_and_never_shows_the_password(stored_run, caplog):
    import logging

    # Streamlit's deprecation log does not reach the root logger: listen to it directly.
    deprecations = logging.getLogger("streamlit.deprecation_util")
    deprecations.addHandler(caplog.handler)
    try:
        at = open_page("alerts")
    finally:
        deprecations.removeHandler(caplog.handler)
    text = " ".join(shown(at.markdown) + shown(at.caption))
    assert "Pw-never-shown" not in text
    assert "ops@x.org" in text
    assert any("[Vigil]" in m for m in shown(at.markdown))
    # The digest as mail clients get it, in a frame (st.iframe: the server logs no
    # deprecation, as it did for st.components.v1.html).
    (frame,) = at.get("iframe")
    assert "<html" in frame.proto.srcdoc and "Pw-never-shown" not in frame.proto.srcdoc
    assert not [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage().lower()
                or "Please replace" in r.getMessage()]


def test_models_page_lists_and_trains(dashboard_env):
    at = open_page("models")
    assert any("No models registered yet" in i for i in shown(at.info))
    at.file_uploader[0].set_value(("base.csv", sample_path("temperature.csv").read_bytes(),
                                   "text/csv"))
    next(t for t in at.text_input if t.label == "Name").set_value("pumps")
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception
    assert any("Registered pumps" in s for s in shown(at.success))
    assert [m["name"] for m in services.list_models(Vigil())] == ["pumps"]
    # The list shows the model just trained ("No models registered yet." stayed above it),
    # what a reader decides by first.
    assert not any("No models registered yet" in i for i in shown(at.info))
    table = at.dataframe[0].value
    assert list(table.columns[:5]) == ["name", "profile", "is_active", "age_days",
                                       "last_drift"]
    assert table["name"].tolist() == ["pumps"] and table["is_active"].tolist() == [True]



HOSTILE_NAME = "![x](http://h.example/a.png) **bold** :red[red].csv"
HOSTILE_HEADER = "![b](http://h.example/b.png)"


def test_markdown_in_names_and_headers_reaches_the_page_escaped(dashboard_env):
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    rows = "".join(f"2025-01-0{1 + i // 24} {i % 24:02d}:00,{5 if i != 30 else 500},1\n"
                   for i in range(96))
    at.file_uploader[0].set_value((HOSTILE_NAME, f'timestamp,value,"{HOSTILE_HEADER}"\n{rows}'
                                   .encode(), "text/csv")).run()
    button(at, "Run detection").click().run()
    button(at, "Save run").click().run()
    button(at, "Send alert").click().run()
    assert any(HOSTILE_HEADER in w for w in shown(at.warning))
    assert any(HOSTILE_NAME in i for i in shown(at.info))
    raw = [e.value for e in [*at.warning, *at.info]]
    at = open_page("alerts", at)
    raw += [e.value for e in at.markdown]
    assert any(HOSTILE_NAME in m for m in shown(at.markdown))
    for value in raw:
        assert "![" not in value and "**bold**" not in value and ":red[" not in value, value


@pytest.mark.parametrize("page", PAGES)
def test_a_bad_database_url_is_explained_on_every_page(dashboard_env, monkeypatch, page):
    from app.settings import get_settings

    at = open_page(page)  # signed in; then the database's URL goes bad
    monkeypatch.setenv("DATABASE_URL", "foo://u:secret@host/db")
    get_settings.cache_clear()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = shown(at.error)
    assert any("unknown database 'foo'" in e for e in errors), errors
    assert not any("secret" in e for e in errors)


def test_a_second_session_on_the_same_upload_reads_and_scores_nothing_again(dashboard_env,
                                                                            monkeypatch):
    """Big uploads: the file is read and scored once for every session, and sessions
    keep the result's summary, not the file's rows."""
    import pandas as pd
    import streamlit as st

    from detection import Dataset, ScoredFrame

    st.cache_resource.clear()  # the caches are the process's, shared with earlier tests
    content = sample_path("temperature.csv").read_bytes() + b"\n"  # not the sample itself
    from app.services import analysis as use_case

    calls = {"read": 0, "analyze": 0}
    read, analyze = use_case.read_dataset, use_case.analyze

    def counted_read(source, **kwargs):
        calls["read"] += source == content
        return read(source, **kwargs)

    def counted_analyze(vigil, dataset, **kwargs):
        calls["analyze"] += 1
        return analyze(vigil, dataset, **kwargs)

    monkeypatch.setattr(use_case, "read_dataset", counted_read)
    monkeypatch.setattr(use_case, "analyze", counted_analyze)
    sessions = []
    for _ in range(2):
        at = open_page("analyze")
        next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
        at.file_uploader[0].set_value(("shared.csv", content, "text/csv")).run()
        button(at, "Run detection").click().run()
        assert {m.label: m.value for m in at.metric}["Rows scored"] == "720"
        sessions.append(at)
    button(sessions[0], "Save run").click().run()  # a rerun after scoring
    assert calls == {"read": 2, "analyze": 1}  # once to preview it, once to score it
    for at in sessions:
        values = list(at.session_state.values())
        values += [v for d in values if isinstance(d, dict) for v in d.values()]
        assert not [v for v in values
                    if isinstance(v, Dataset | ScoredFrame | pd.DataFrame | bytes)]


@pytest.mark.slow
def test_a_big_upload_is_read_and_scored_in_pieces(dashboard_env, monkeypatch):
    """Above WHOLE_ROWS rows a sensor upload is never read whole (lowered here so that a
    sample counts as big): the page says the row count is a line count and how the model
    fitted on the file learned."""
    import streamlit as st

    from app import scoring

    st.cache_resource.clear()
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
    monkeypatch.setattr(scoring, "WHOLE_ROWS", 2_000)
    monkeypatch.setattr(scoring, "FIT_ROWS", 2_000)
    from app.services import analysis as use_case

    monkeypatch.setattr(use_case, "read_dataset", None)  # reading whole would fail here
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    content = sample_path("elevators.csv").read_bytes()
    at.file_uploader[0].set_value(("lifts.csv", content, "text/csv")).run()
    assert not at.exception and not at.error
    assert "about 8,064 rows (the first 1,000 checked" in at.expander[0].label
    button(at, "Run detection").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Rows scored"] == "8,064"
    assert any("learned from 2,000 of them" in w.value.replace("\\", "") for w in at.warning)
    button(at, "Save run").click().run()
    assert "Stored as run" in at.success[0].value


def test_overview_shows_open_incidents(stored_run):
    at = open_page("overview")
    metrics = {m.label: m.value for m in at.metric}
    stored = services.query_incidents(Vigil(), services.IncidentFilter(run_ids=[stored_run]),
                                      limit=None)
    assert metrics["Open incidents"] == f"{len(stored):,}" and len(stored) > 0
    assert int(metrics["Anomalies"].replace(",", "")) > len(stored)  # rows group up
    table = at.dataframe[0].value
    assert len(table) == min(10, len(stored))
    assert table["peak_score"].tolist() == sorted(table["peak_score"], reverse=True)


@pytest.mark.slow
def test_live_page_shows_a_stream_and_reviews_its_incidents(dashboard_env):
    import os
    import subprocess
    import sys

    app = [sys.executable, "-m", "app"]
    trained = subprocess.run([*app, "train", str(sample_path("elevators.csv")), "--profile",
                              "sensor", "--activate"], capture_output=True, text=True,
                             env=os.environ, check=True)
    assert "model version" in trained.stdout
    streamed = subprocess.run([*app, "stream", "-", "--model", "active", "--save", "--source",
                               "lifts", "--out", os.devnull],
                              input=sample_path("elevators.csv").read_text(),
                              capture_output=True, text=True, env=os.environ)
    assert streamed.returncode == 0, streamed.stderr
    at = open_page("live")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows stored"] == "8,064"
    assert int(metrics["Open incidents"].replace(",", "")) > 0
    # The readings with their band and the flags on them (it showed only scores), opened
    # on the metric the worst recent flag is about; then the scores.
    readings, scores = chart_payload(at)
    assert readings[0] > 0
    metric = next(s for s in at.selectbox if s.label == "Metric")
    worst = services.query_anomalies(Vigil(), services.AnomalyFilter(
        since=services.latest_event_time(Vigil(), services.list_runs(Vigil())[0].id)
        - pd.Timedelta(hours=1)), limit=None).nlargest(1, "anomaly_score")["reasons"].iloc[0]
    assert metric.value in worst and set(metric.options) == {"humidity", "revolutions",
                                                             "vibration"}
    layers = json.loads(at.get("vega_lite_chart")[0].proto.spec)["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["area", "line", "circle"]
    assert any(c.startswith("Line: the stream's normal readings") for c in shown(at.caption))
    # The time axis spans the hour up to the newest flag (the sample's last two flags, ten
    # minutes apart, filled the chart), in UTC as the data.
    spec = json.loads(at.get("vega_lite_chart")[1].proto.spec)
    domain = next(layer["encoding"]["x"]["scale"]["domain"] for layer in spec["layer"]
                  if "x" in layer.get("encoding", {}))
    newest = services.latest_event_time(Vigil(), services.list_runs(Vigil())[0].id)
    assert [pd.Timestamp(year=d["year"], month=d["month"], day=d["date"], hour=d["hours"],
                         minute=d["minutes"], second=d["seconds"], tz="UTC") if d["utc"]
            else None for d in domain] == [newest - pd.Timedelta(hours=1), newest]
    assert any(c.startswith("Flagged rows in the 1 hour up to the newest one")
               for c in shown(at.caption))
    before = services.query_incidents(Vigil(), services.IncidentFilter(review_statuses=["new"]),
                                      limit=None)
    next(b for b in at.button if b.label == "False positive").click().run()
    assert not at.exception
    after = services.query_incidents(Vigil(), services.IncidentFilter(review_statuses=["new"]),
                                     limit=None)
    assert len(after) == len(before) - 1
    reviewed = services.query_incidents(Vigil(),
        services.IncidentFilter(review_statuses=["false_positive"]), limit=None)
    rows = services.query_anomalies(Vigil(), services.AnomalyFilter(incident_ids=reviewed["id"].tolist()),
                                    limit=None)
    assert len(rows) == reviewed["row_count"].sum() and \
        set(rows["review_status"]) == {"false_positive"}


@pytest.mark.parametrize(("role", "pages"), [
    ("viewer", ["overview", "explore", "live"]),
    ("analyst", ["overview", "analyze", "explore", "live"]),
    ("admin", ["overview", "analyze", "explore", "live", "alerts", "models", "access",
               "audit"]),
])
def test_each_role_is_offered_its_pages_and_reaches_no_other(dashboard_env, role, pages):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import MAIN, sign_in

    at = sign_in(AppTest.from_file(str(MAIN), default_timeout=180), role=role)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for page in ("overview", "analyze", "explore", "live", "alerts", "models", "access",
                 "audit"):
        if page in pages:
            open_page(page, at)
            assert not at.exception, (page, [e.value for e in at.exception])
        else:  # not registered: neither a link nor its URL reaches it
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"views/{page}.py")


def test_a_viewer_sees_incidents_but_no_review_form(stored_run):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import MAIN, sign_in

    at = sign_in(AppTest.from_file(str(MAIN), default_timeout=180), role="viewer")
    at.run()
    open_page("explore", at)
    assert at.dataframe and not [b for b in at.button if b.label == "Apply"]
    assert not [t for t in at.text_input if t.label == "Reviewed by"]


def test_first_start_offers_the_administrator_form_until_one_exists(dashboard_env):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import MAIN

    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.run()
    assert [t.value for t in at.title] == ["Create the administrator"]
    at.text_input[0].input("ada")
    at.text_input[1].input("correct horse battery")
    at.text_input[2].input("correct horse battery")
    next(b for b in at.button if b.label == "Create and sign in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Overview"]
    fresh = AppTest.from_file(str(MAIN), default_timeout=180)
    fresh.run()  # a new session: signed out, and the form is gone for good
    assert [t.value for t in fresh.title] == ["Sign in to Vigil"]
    fresh.text_input[0].input("ada")
    fresh.text_input[1].input("wrong password here")
    next(b for b in fresh.button if b.label == "Sign in").click().run()
    assert "The name or password is wrong" in fresh.error[0].value
    fresh.text_input[1].input("correct horse battery")
    next(b for b in fresh.button if b.label == "Sign in").click().run()
    assert [t.value for t in fresh.title] == ["Overview"]


def test_models_page_shows_age_drift_and_a_stale_model(dashboard_env):
    from sample_data.generate import START, machine

    history, _ = machine(np.random.default_rng(0), anomalies=False)
    later, _ = machine(np.random.default_rng(1), anomalies=False,
                       start=START + pd.Timedelta(days=30))
    later["temperature"] += 6.0
    vigil = Vigil()
    meta = services.train(vigil, services.read_dataset(to_csv_bytes(history)))
    result = services.analyze(vigil, services.read_dataset(to_csv_bytes(later)),
                              model_version=meta["version"])
    services.save(vigil, result, source_name="later.csv", file_sha256="e" * 64)
    at = open_page("models")
    table = at.dataframe[0].value
    assert {"age_days", "last_drift"} <= set(table.columns)
    assert table.loc[0, "last_drift"] > 0.5
    assert any(f"{meta['version']} is stale" in w and "temperature (" in w
               for w in shown(at.warning))


def test_explore_shows_logins_by_every_hour_and_weekday_and_on_a_map(dashboard_env):
    """The heatmap's axes held only the hours with anomalies (3 stood beside 6) and, at
    200 pixels, dropped every other weekday's label."""
    vigil = Vigil()
    result = services.analyze(vigil, services.read_dataset(sample_path("logins.csv")))
    services.save(vigil, result, source_name="logins.csv", file_sha256="f" * 64)
    at = open_page("explore")
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    heatmap = next(s for s in specs if s.get("mark", {}).get("type") == "rect")
    flagged = result.frame.loc[result.frame["is_anomaly"] == 1, "timestamp"]
    hours = set(pd.to_datetime(flagged, utc=True).dt.hour)
    assert len(hours) < 24  # the sample leaves hours without anomalies, which still show
    assert heatmap["encoding"]["x"]["scale"]["domain"] == list(range(24))
    assert heatmap["encoding"]["y"]["scale"]["domain"] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert heatmap["height"] == {"step": 20}
    # Where flagged logins came from, as on a map: longitude across, latitude up.
    assert [s.value for s in at.selectbox if s.label in ("x", "y")] == ["longitude", "latitude"]


def test_models_page_lists_what_false_positives_made_known(dashboard_env):
    vigil = Vigil()
    baseline = services.read_dataset(sample_path("logins.csv"))
    result = services.analyze(vigil, baseline)
    run_id = services.save(vigil, result, source_name="logins.csv", file_sha256="f" * 64).run_id
    rows = services.query_anomalies(vigil, AnomalyFilter(run_ids=[run_id]), limit=1)
    services.review(vigil, rows["id"].tolist(), "false_positive")
    at = open_page("models")
    known = next(d.value for d in at.dataframe if "key" in d.value.columns)
    user = rows["entity"].iloc[0]
    assert set(known["user"]) == {user}
    assert {"country", "ip", "network", "device"} <= set(known["key"])


@pytest.mark.slow
def test_models_page_trains_a_model_from_stored_runs(dashboard_env):
    vigil = Vigil()
    elevators = pd.read_csv(sample_path("elevators.csv"))
    ids = []
    for name, rows in (("first.csv", elevators.iloc[:4000]), ("second.csv", elevators.iloc[4000:])):
        result = services.analyze(vigil, services.read_dataset(to_csv_bytes(rows)))
        ids.append(services.save(vigil, result, source_name=name, file_sha256=name[0] * 64).run_id)
    confirmed = services.query_anomalies(vigil, AnomalyFilter(run_ids=[ids[0]]), limit=3)
    services.review(vigil, confirmed["id"].tolist(), "confirmed")
    at = open_page("models")
    runs = next(m for m in at.multiselect if m.label == "Runs")
    assert [o.split(" · ")[:4] for o in runs.options] == [
        [f"#{ids[1]}", "second.csv", "sensor", f"{len(elevators) - 4000:,} rows"],
        [f"#{ids[0]}", "first.csv", "sensor", "4,000 rows"]]
    runs.set_value(ids)
    button(at, "Train from these runs").click().run()
    assert not at.exception, [e.value for e in at.exception]
    success = " ".join(s.value for s in at.success)
    assert f"on {len(elevators) - 3:,} sensor rows of runs {ids[0]}, {ids[1]} (3 confirmed" \
        in success.replace("\\", "")
    model = services.list_models(vigil)[0]
    assert model["source_name"] == f"runs {ids[0]}, {ids[1]}" and model["is_active"]

    # Every sensor run since a date, instead of a choice of runs; not both, not neither.
    at = open_page("models")
    since = next(d for d in at.date_input if d.label == "Or every run since")
    since.set_value((pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)).date())
    next(m for m in at.multiselect if m.label == "Runs").set_value([ids[0]])
    button(at, "Train from these runs").click().run()
    assert any("one of the two" in w.value for w in at.warning)
    assert len(services.list_models(vigil)) == 1
    next(m for m in at.multiselect if m.label == "Runs").set_value([])
    button(at, "Train from these runs").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"of runs {ids[0]}, {ids[1]} (3 confirmed" in \
        " ".join(s.value for s in at.success).replace("\\", "")
    assert len(services.list_models(vigil)) == 2


@pytest.mark.parametrize("ended_by", ["disable", "password"])
def test_a_disabled_or_repassworded_admin_is_signed_out_on_their_next_click(dashboard_env,
                                                                           ended_by):
    """Their open session no longer opens Users and tokens (it did for up to 8 hours)."""
    from app import services
    from app.settings import get_settings
    from app.vigil import Vigil

    at = open_page("access")
    assert [t for t in at.title if t.value == "Users and tokens"]
    operator = Vigil(get_settings())
    if ended_by == "disable":  # by another administrator (the last one stays enabled)
        services.add_user(operator, "second-admin", role="admin", password=None)
        services.disable_user(operator, "admin-tester")
    else:
        services.set_password(operator, "admin-tester", "a brand new password")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Sign in to Vigil"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/access.py")


def test_sign_out_ends_the_session_record(dashboard_env):
    from app import services
    from app.dashboard.ui import SIGNED_IN
    from app.settings import get_settings
    from app.vigil import Vigil

    at = open_page("overview")
    token = at.session_state[SIGNED_IN]["session"]
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert [t.value for t in at.title] == ["Sign in to Vigil"]
    assert services.session_user(Vigil(get_settings()), token) is None  # a copy is dead too


def test_users_page_preselects_no_one_and_asks_before_disabling(dashboard_env):
    from app import services
    from app.settings import get_settings
    from app.vigil import Vigil

    at = open_page("access")
    services.add_user(Vigil(get_settings()), "bob", role="viewer", password=None)
    at.run()
    form = next(s for s in at.selectbox if s.label == "User")
    assert form.value is None  # the signed-in admin is not one click from locking out
    form.set_value("bob")  # a form's widgets reach the script when it is submitted
    next(b for b in at.button if b.label == "Disable").click().run()
    assert any("Tick the box" in w.value for w in at.warning)
    assert not services.list_users(Vigil(get_settings())).set_index("name").loc["bob", "disabled"]
    next(s for s in at.selectbox if s.label == "User").set_value("bob")
    next(c for c in at.checkbox if c.label == "Yes, change this account").check()
    next(b for b in at.button if b.label == "Disable").click().run()
    assert services.list_users(Vigil(get_settings())).set_index("name").loc["bob", "disabled"]
    assert "Disabled bob." in shown(at.success)


def test_analyze_groups_the_flagged_rows_into_the_incidents_saving_stores(dashboard_env):
    """Analyze had no incident grouping (Explore had)."""
    at = analyze_sample("elevators.csv")
    shown_incidents = at.dataframe[0].value
    assert list(shown_incidents.columns[:3]) == ["severity", "peak", "entity"]
    assert shown_incidents["peak"].tolist() == sorted(shown_incidents["peak"], reverse=True)
    button(at, "Save run").click().run()
    stored = services.query_incidents(Vigil(), services.IncidentFilter(), limit=None)
    assert len(shown_incidents) == len(stored) > 0
    assert sorted(shown_incidents["summary"]) == sorted(stored["summary"])


def test_analyze_opens_its_chart_on_the_metric_of_the_worst_anomaly(dashboard_env):
    """It opened on humidity (first by name) while the top anomalies were in vibration."""
    at = analyze_sample("elevators.csv")
    top = at.dataframe[-1].value
    worst = str(top.sort_values("anomaly_score", ascending=False)["reasons"].iloc[0])
    metric = next(s for s in at.selectbox if s.label == "Metric")
    assert metric.value == "vibration" and worst.startswith("vibration"), worst
    # One colour scheme: severity's for the dots, neutral tones for the entities' lines
    # (blue and red lines read as low and critical).
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    ranges = {layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]:
              layer["encoding"]["color"].get("scale", {}).get("range")
              for layer in spec["layer"] if "color" in layer.get("encoding", {})}
    assert ranges["circle"] == charts.SEVERITY_COLOURS
    assert ranges["line"] == charts.ENTITY_TONES
    assert not set(ranges["line"]) & set(charts.SEVERITY_COLOURS)


def test_audit_says_what_changed_in_words_with_the_json_behind_a_toggle(stored_run):
    """It showed the raw before and after JSON only."""
    incident = services.query_incidents(Vigil(), services.IncidentFilter(), limit=1)
    services.review_incidents(Vigil().acting_as(services.Actor("ana", "analyst")),
                              incident["id"].tolist(), "confirmed", note="pump 3 replaced")
    at = open_page("audit")
    table = at.dataframe[0].value
    assert "before" not in table.columns and "after" not in table.columns
    review = table[table["action"] == "incident.review"].iloc[0]
    number = incident["id"].iloc[0]
    assert review["change"] == f"status: #{number} new → confirmed; note: 'pump 3 replaced'"
    next(t for t in at.toggle if "JSON" in t.label).set_value(True).run()
    assert {"before", "after"} <= set(at.dataframe[0].value.columns)


def test_explore_tables_lead_with_the_review_in_words_and_the_viewers_time(stored_run,
                                                                          monkeypatch):
    """Status, note and reviewer sat off-screen right and were not exported; headers were
    raw names (started_at, row_count) and every time said +00:00."""
    from app.settings import get_settings

    incident = services.query_incidents(Vigil(), services.IncidentFilter(), limit=1)
    services.review_incidents(Vigil().acting_as(services.Actor("ana", "analyst")),
                              incident["id"].tolist(), "confirmed", note="pump 3 replaced")
    monkeypatch.setenv("DISPLAY_TIMEZONE", "Asia/Kolkata")  # UTC+5:30 all year
    get_settings.cache_clear()
    at = open_page("explore")
    incidents, rows = incident_table(at), anomaly_table(at)
    assert list(incidents.columns[:5]) == ["status", "severity", "peak", "entity",
                                           "started (Asia/Kolkata)"]
    assert list(rows.columns[:5]) == ["status", "severity", "score", "time (Asia/Kolkata)",
                                      "entity"]
    assert "rows" in incidents.columns and "row_count" not in incidents.columns
    stored = services.query_anomalies(Vigil(), AnomalyFilter(run_ids=[stored_run]),
                                      limit=None).set_index("id")
    first = rows.iloc[0]
    utc = stored.loc[first["id"], "event_time"]
    assert first["time (Asia/Kolkata)"] == (utc + pd.Timedelta("5h30min")).tz_localize(None)
    confirmed = rows[rows["status"] == "confirmed"]
    assert len(confirmed) and set(confirmed["note"]) == {"pump 3 replaced"}
    export = pd.read_csv(io.BytesIO(services.anomalies_csv(Vigil(), AnomalyFilter())))
    assert list(export.columns[:5]) == ["review_status", "severity", "anomaly_score",
                                        "event_time", "entity"]
    assert {"note", "reviewed_by", "reviewed_at"} <= set(export.columns)
    assert set(export.loc[export["review_status"] == "confirmed", "reviewed_by"]) == {"ana"}


def test_explore_puts_the_tables_and_the_metric_first_and_draws_a_readable_histogram(
        stored_run):
    """Explore was 3,100-3,400 px tall with the tables last; the histogram drew floating
    dashes with only 0 and 600 on its axis."""
    at = open_page("explore")
    headers = [h.value for h in at.subheader]
    assert headers[:3] == ["Incidents", "Anomalies", "Score distribution"], headers
    chart = next(c for c in at.get("vega_lite_chart") if any(
        layer.get("encoding", {}).get("x", {}).get("title") == "anomaly score"
        for layer in json.loads(c.proto.spec).get("layer", [])))
    bars = json.loads(chart.proto.spec)["layer"][0]
    assert bars["encoding"]["y"]["axis"]["values"][:4] == [0, 1, 10, 100]
    blobs = [d.data.data for d in chart.proto.datasets] or [chart.proto.data.data]
    data = pa.ipc.open_stream(blobs[0]).read_all().to_pandas()
    assert set(data["end"] - data["bin"]) == {charts.HISTOGRAM_BIN}
    assert len(data) <= 100 // charts.HISTOGRAM_BIN


def test_admins_set_who_receives_alerts_on_the_alerts_page(stored_run):
    at = open_page("alerts")
    assert "from the environment" in " ".join(shown(at.markdown))
    next(t for t in at.text_input if t.label.startswith("Maintenance")).set_value(
        "lifts@x.org, night@x.org")
    next(s for s in at.selectbox if s.label == "Least severity alerted").set_value("medium")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception
    assert any(s.startswith("Saved") for s in shown(at.success))
    text = " ".join(shown(at.markdown))
    assert "lifts@x.org, night@x.org" in text and "set here" in text
    route = services.alert_routing(Vigil())
    assert route.to_maintenance == "lifts@x.org, night@x.org" and route.min_severity == "medium"
    next(t for t in at.text_input if t.label.startswith("Maintenance")).set_value("not mail")
    next(b for b in at.button if b.label == "Save").click().run()
    assert any("must be e-mail addresses" in e for e in shown(at.error))
    assert services.alert_routing(Vigil()).to_maintenance == "lifts@x.org, night@x.org"


def test_analyze_gives_the_worst_rows_reasons_in_full(dashboard_env):
    """The reasons column cut long reasons at the table's width."""
    at = analyze_sample("elevators.csv")
    top = at.dataframe[-1].value.sort_values("anomaly_score", ascending=False)
    (why,) = [e for e in at.expander if e.label.startswith("Why, in full")]
    said = shown(why.markdown)
    assert len(said) == 5
    assert said[0].endswith(str(top["reasons"].iloc[0]))
    assert said[0].startswith(f"**{top['anomaly_score'].iloc[0]:.1f}** "
                              f"{top['severity'].iloc[0]}, row {top.index[0]}: ")
