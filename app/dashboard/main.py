"""Vigil's dashboard: configures the page and routes (`streamlit run app/dashboard/main.py`).

Signed out, the navigation offers the sign-in page only (or, before any account exists,
the form that creates the administrator), and every page's URL shows it too, keeping the
URL and its query: signed in, the link lands where it points, with its filters (the
digest's "Open run 12 in Vigil" is ``/explore?run=12``). Signed in, the pages of the
user's role:
viewer reads (Overview, Explore, Live), analyst also analyzes, saves, reviews and sends
alerts, admin also manages alerts, models, users and tokens and reads the audit log.
A page that is not offered cannot be reached by its URL either.
"""

import streamlit as st

from app.dashboard import ui
from app.text import markdown

st.set_page_config(page_title="Vigil", page_icon=":material/radar:", layout="wide")

PAGES = [  # (file, title, icon, url, least role)
    ("views/overview.py", "Overview", ":material/dashboard:", "overview", "viewer"),
    ("views/analyze.py", "Analyze", ":material/upload_file:", "analyze", "analyst"),
    ("views/explore.py", "Explore", ":material/query_stats:", "explore", "viewer"),
    ("views/live.py", "Live", ":material/monitor_heart:", "live", "viewer"),
    ("views/alerts.py", "Alerts", ":material/mail:", "alerts", "admin"),
    ("views/models.py", "Models", ":material/model_training:", "models", "admin"),
    ("views/access.py", "Users and tokens", ":material/group:", "access", "admin"),
    ("views/audit.py", "Audit", ":material/history:", "audit", "admin"),
]

with ui.user_errors():  # who is signed in is a question for the database
    actor = ui.signed_in()
if actor is None:
    pages = [st.Page("views/sign_in.py", title="Sign in", icon=":material/login:",
                     url_path="sign-in", default=True),
             *(st.Page("views/sign_in.py", title="Sign in", url_path=url, visibility="hidden")
               for _, _, _, url, _ in PAGES)]
else:
    pages = [st.Page(file, title=title, icon=icon, url_path=url, default=url == "overview")
             for file, title, icon, url, role in PAGES if actor.may(role)]
    with st.sidebar:
        st.caption(f"Signed in as **{markdown(actor.name)}** ({actor.role})")
        if st.button("Sign out", icon=":material/logout:"):
            ui.sign_out()
st.navigation(pages).run()
