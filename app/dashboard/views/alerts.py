"""Alerts: who gets what, a preview of the exact email, a test message, the log."""

import streamlit as st

from alerts.errors import AlertError
from alerts.policy import parse_recipients
from app import services
from app.dashboard import ui
from app.text import markdown
from detection import SEVERITIES

vigil = ui.vigil()

settings = vigil.settings
st.title("Alerts")

st.subheader("Who receives alerts")
with ui.user_errors():
    route = services.alert_routing(vigil)


def source(key: str) -> str:
    return "set here" if key in route.set_here else "from the environment"


cols = st.columns(3)
cols[0].markdown("**Security team** (login runs)\n\n" +
                 (markdown(", ".join(parse_recipients(route.to_security))) or "_nobody_")
                 + f"  \n_{source('to_security')}_")
cols[1].markdown("**Maintenance team** (sensor and generic runs)\n\n" +
                 (markdown(", ".join(parse_recipients(route.to_maintenance))) or "_nobody_")
                 + f"  \n_{source('to_maintenance')}_")
cols[2].markdown(f"**Least severity alerted:** {route.min_severity} "
                 f"_({source('min_severity')})_  \n"
                 f"**At most:** {settings.alert_max_per_hour} emails per team per hour")
unset = not (route.to_security or route.to_maintenance)
with st.expander("Change who receives alerts", expanded=unset), st.form("routing"):
    security = st.text_input("Security team's addresses (comma-separated)",
                             value=route.to_security, max_chars=2000)
    maintenance = st.text_input("Maintenance team's addresses (comma-separated)",
                                value=route.to_maintenance, max_chars=2000)
    least = st.selectbox("Least severity alerted", SEVERITIES[1:],
                         index=list(SEVERITIES[1:]).index(route.min_severity))
    if st.form_submit_button("Save"):
        with ui.user_errors():
            services.set_alert_routing(vigil, to_security=security,
                                       to_maintenance=maintenance, min_severity=least)
        st.session_state["routing_saved"] = True
        st.rerun()
if st.session_state.pop("routing_saved", False):
    st.success("Saved: the next alerts go to these addresses (the audit log has the "
               "change).")
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
