"""Models: registered versions, train one from a baseline, activate, roll back."""

import pandas as pd
import streamlit as st

from app import services, ui
from detection import PROFILES
from detection.detectors import DETECTORS

vigil = ui.vigil()

st.title("Models")
st.caption("A model is fitted on a baseline of normal history and then scores new files of "
           "the same profile. The active model of a profile is preselected on Analyze.")

with ui.user_errors():
    models = services.list_models(vigil)
if models:
    table = pd.DataFrame(models).drop(columns=["libraries", "features", "training_hash"])
    table["threshold"] = table["threshold"].map(lambda t: t.get("score"))
    st.dataframe(table, hide_index=True, width="stretch")
    cols = st.columns(2)
    with cols[0].form("activate"):
        version = st.selectbox("Version", [m["version"] for m in models])
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

st.subheader("Train a model")
with st.form("train"):
    upload = st.file_uploader("Baseline CSV (normal history)", type=["csv", "txt"])
    cols = st.columns(3)
    profile = cols[0].selectbox("Profile", PROFILES)
    detector = cols[1].selectbox("Detector", list(DETECTORS))
    activate = cols[2].checkbox("Make it active", value=True)
    if st.form_submit_button("Train"):
        if upload is None:
            st.warning("Choose a baseline CSV first.")
        else:
            with ui.user_errors(), st.spinner("Fitting…"):
                dataset = services.read_dataset(upload.getvalue(), profile=profile)
                meta = services.train(vigil, dataset, detector=detector, source_name=upload.name,
                                      activate=activate)
            st.success(f"Registered {meta['version']}: {meta['detector']} on "
                       f"{meta['training_rows']:,} {meta['profile']} rows.")
