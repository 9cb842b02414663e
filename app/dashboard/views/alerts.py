"""Alerts: who gets what, a preview of the exact email, a test message, the log."""

import streamlit as st

from alerts.errors import AlertError
from alerts.policy import parse_recipients
from app import services
from app.dashboard import ui
from app.text import markdown

vigil = ui.vigil()

settings = vigil.settings
st.title("Alerts")

st.subheader("Policy")
cols = st.columns(3)
cols[0].markdown("**Security team** (login runs)\n\n" +
                 (markdown(", ".join(parse_recipients(settings.alert_to_security))) or
                  "_nobody: set ALERT_TO_SECURITY_"))
cols[1].markdown("**Maintenance team** (sensor and generic runs)\n\n" +
                 (markdown(", ".join(parse_recipients(settings.alert_to_maintenance))) or
                  "_nobody: set ALERT_TO_MAINTENANCE_"))
cols[2].markdown(f"**Minimum severity:** {settings.alert_min_severity}  \n"
                 f"**At most:** {settings.alert_max_per_hour} emails per team per hour")
if settings.smtp_host:
    login = f", login as {settings.smtp_username}" if settings.smtp_username else ""
    password = " (password set)" if settings.smtp_password else ""
    st.caption(markdown(f"Mail goes through {settings.smtp_host}:{settings.smtp_port} "
                        f"({settings.smtp_security}{login}{password})."))
else:
    st.caption(f"SMTP_HOST is not set: messages are written as .eml files to "
               f"{markdown(settings.alert_outbox_dir)}.")

with ui.user_errors():
    stored = services.list_runs(vigil, limit=200)
if stored:
    st.subheader("Preview")
    by_id = {run.id: run for run in stored}
    run_id = st.selectbox("Run", list(by_id), format_func=lambda i: ui.run_label(by_id[i]))
    with ui.user_errors():
        subject, html = services.preview_digest(vigil, run_id)
    st.markdown(f"**Subject:** {markdown(subject)}")
    # A sandboxed frame: the preview shows exactly what mail clients get.
    st.iframe(html, height=520)
    if st.button("Send this run's alert", help="Sent once per run and team."):
        with ui.user_errors():
            report = services.notify(vigil, run_id)
        (st.error if report.status == "failed" else st.info)(markdown(report.message))

st.subheader("Test message")
with st.form("test_email"):
    to = st.text_input("Send a test email to")
    if st.form_submit_button("Send test email"):
        try:
            st.success(f"Sent via {markdown(services.send_test_email(vigil, to))}")
        except AlertError as exc:  # shown in words; the rest of the page stays usable
            st.error(markdown(exc))

st.subheader("Notification log")
with ui.user_errors():
    log = services.notification_log(vigil)
if log.empty:
    st.caption("No alerts yet.")
else:
    st.dataframe(log.drop(columns=["dedupe_key"]), hide_index=True, width="stretch")
    failed = int((log["status"] == "failed").sum())
    if failed and st.button(f"Retry {failed} failed alert(s)"):
        with ui.user_errors():
            for report in services.retry_failed(vigil):
                (st.error if report.status == "failed" else st.success)(markdown(report.message))
