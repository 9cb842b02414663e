"""Models: registered versions, train one from a baseline, activate, roll back."""

from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

from app import services
from app.dashboard import ui
from app.text import markdown
from detection import PROFILES
from detection.detectors import DETECTORS
from detection.envelope import STALE_SHARE

vigil = ui.vigil()

st.title("Models")
st.caption("A model is fitted on a baseline of normal history and then scores new files of "
           "the same profile. The active model of a profile is preselected on Analyze.")

if "trained" in st.session_state:  # said after the rerun that lists the new model
    st.success(markdown(st.session_state.pop("trained")))
with ui.user_errors():
    models = services.list_models(vigil)
# What a reader decides by first; the parameters' JSON last.
FIRST = ["name", "profile", "is_active", "age_days", "last_drift", "version", "created_at",
         "detector", "training_rows", "source_name", "threshold", "activated_at"]
if models:
    table = pd.DataFrame(models).drop(columns=["libraries", "features", "training_hash",
                                              "stale"])
    table["threshold"] = table["threshold"].map(lambda t: t.get("score"))
    table = table[FIRST + [c for c in table.columns if c not in FIRST]]
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "name": st.column_config.TextColumn("name"),
        "is_active": st.column_config.CheckboxColumn("active"),
        "age_days": st.column_config.NumberColumn("age (days)"),
        "last_drift": st.column_config.NumberColumn(
            "last drift", format="percent",
            help="Share of the last run's rows outside the model's baseline range on one "
                 f"feature: about 1% from the same source; above {STALE_SHARE:.0%} the "
                 "model is stale."),
        "created_at": st.column_config.DatetimeColumn("trained (UTC)"),
        "training_rows": st.column_config.NumberColumn("baseline rows"),
        "source_name": st.column_config.TextColumn("baseline"),
        "threshold": st.column_config.NumberColumn("flag above"),
        "activated_at": st.column_config.DatetimeColumn("activated (UTC)"),
    })
    for m in models:
        if m["stale"]:
            st.warning(markdown(
                f"{m['version']} is stale: its last run had {m['last_drift']:.0%} of its rows "
                f"outside the baseline's range on {m['last_drift_feature']}. Train a new "
                "model on recent normal history."))
    cols = st.columns(2)
    with cols[0].form("activate"):
        version = st.selectbox("Version", [m["version"] for m in models],
                               format_func=lambda v: next(
                                   f"{m['name']} ({v})" if m["name"] else v
                                   for m in models if m["version"] == v))
        if st.form_submit_button("Activate"):
            with ui.user_errors():
                meta = services.activate_model(vigil, version)
            st.success(f"{meta['version']} is now the active {meta['profile']} model.")
    with cols[1].form("rollback"):
        profile = st.selectbox("Profile", PROFILES)
        if st.form_submit_button("Roll back to the previous active model"):
            with ui.user_errors():
                meta = services.rollback_model(vigil, profile)
            st.success(f"{meta['version']} is the active {profile} model again.")
else:
    st.info("No models registered yet.")

st.subheader("Known values of login users")
st.caption("A login row reviewed as a false positive on Explore makes its country, city, "
           "IP, network, ASN and device known for its user: later login runs no longer "
           "call them new.")
with ui.user_errors():
    known = services.list_known(vigil)
if known.empty:
    st.info("None yet: review a flagged login as a false positive on Explore.")
else:
    st.dataframe(known.rename(columns={"user_name": "user"}), hide_index=True,
                 width="stretch")

st.subheader("Train a model")
with st.form("train"):
    upload = st.file_uploader("Baseline CSV or Parquet file (normal history)",
                              type=["csv", "txt", "parquet"])
    cols = st.columns(4)
    name = cols[0].text_input("Name", max_chars=64, placeholder="e.g. pumps",
                              help="What the model is for: `--model NAME` (CLI, API, watch) "
                                   "takes its newest version")
    profile = cols[1].selectbox("Profile", PROFILES)
    detector = cols[2].selectbox("Detector", list(DETECTORS))
    activate = cols[3].checkbox("Make it active", value=True)
    if st.form_submit_button("Train"):
        if upload is None:
            st.warning("Choose a baseline CSV first.")
        else:
            with ui.user_errors(), st.spinner("Fitting…"):
                dataset = services.read_dataset(upload.getvalue(), profile=profile)
                meta = services.train(vigil, dataset, detector=detector, source_name=upload.name,
                                      activate=activate, name=name or None)
            st.session_state["trained"] = (
                f"Registered {meta['name'] or meta['version']}: {meta['detector']} on "
                f"{meta['training_rows']:,} {meta['profile']} rows.")
            st.rerun()

st.subheader("Train from stored runs")
st.caption("Saved sensor and generic files keep their rows (up to a million rows a file). "
           "A model trained from runs learns from those rows, without the rows reviewed as "
           "confirmed on Explore: real incidents are not learnt as normal.")
with ui.user_errors():
    kept = services.runs_to_train_from(vigil)
if not kept:
    st.info("No stored run kept its rows yet: save a scored sensor or generic file on "
            "Analyze.")
else:
    labels = {r["id"]: (f"#{r['id']} · {r['source_name']} · {r['profile']} · "
                        f"{r['row_count']:,} rows · {r['created_at']:%Y-%m-%d %H:%M}")
              for r in kept}
    with st.form("train_from_runs"):
        chosen = st.multiselect("Runs", list(labels), format_func=lambda i: labels[i])
        cols = st.columns(4)
        since = cols[0].date_input("Or every run since", value=None,
                                   help="UTC; leave the runs above empty")
        profile = cols[1].selectbox("of profile", services.RUN_PROFILES)
        detector = cols[2].selectbox("Detector", list(DETECTORS), key="runs_detector")
        activate = cols[3].checkbox("Make it active", value=True, key="runs_activate")
        if st.form_submit_button("Train from these runs"):
            if bool(chosen) == (since is not None):
                st.warning("Choose runs, or a date to train on every run since: one of "
                           "the two.")
            else:
                start = None if since is None else datetime.combine(since, time(), UTC)
                with ui.user_errors(), st.spinner("Fitting…"):
                    meta = services.train_from_runs(
                        vigil, runs=chosen or None, since=start,
                        profile=profile if start else None, detector=detector,
                        activate=activate)
                st.session_state["trained"] = (
                    f"Registered {meta['version']}: {meta['detector']} on "
                    f"{meta['training_rows']:,} {meta['profile']} rows of runs "
                    f"{', '.join(map(str, meta['runs']))} ({meta['left_out']:,} confirmed "
                    "rows left out).")
                st.rerun()
