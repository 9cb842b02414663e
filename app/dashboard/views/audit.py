"""Audit (admin): who reviewed, alerted, trained, activated, added users and tokens."""

import streamlit as st

from app import services
from app.dashboard import ui
from app.text import change_in_words

vigil = ui.vigil()

st.title("Audit log")
left, right = st.columns(2)
actor = left.text_input("Who (exact name)", max_chars=255)
action = right.selectbox("What", ["(all)", "run.save", "anomaly.review", "incident.review",
                                  "anomaly.review_refused", "incident.review_refused",
                                  "anomalies.export", "alert.send", "alert.test",
                                  "model.train", "model.activate", "model.rollback",
                                  "user.add", "user.password", "user.disable", "user.enable",
                                  "user.sign_in", "user.sign_in_refused", "user.lockout",
                                  "user.sign_out", "token.add", "token.revoke", "alert.routing",
                                  "db.prune"])
with ui.user_errors():
    events = services.audit_log(vigil, actor=actor or None,
                                action=None if action == "(all)" else action)
st.caption(f"The newest {len(events):,} events first (at most 500).")
events.insert(events.columns.get_loc("before"), "change",
              [change_in_words(b, a) for b, a in zip(events["before"], events["after"],
                                                      strict=True)])
raw = st.toggle("Show the stored before and after (JSON)")
shown = events if raw else events.drop(columns=["before", "after"])
st.dataframe(shown, width="stretch", hide_index=True, column_config={
    "at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "action": st.column_config.TextColumn("what"),
    "change": st.column_config.TextColumn("what changed", width="large"),
    "before": st.column_config.JsonColumn("before"),
    "after": st.column_config.JsonColumn("after")})
