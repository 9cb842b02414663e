"""Vigil's dashboard: configures the page and routes (`streamlit run app/main.py`)."""

import streamlit as st

st.set_page_config(page_title="Vigil", page_icon=":material/radar:", layout="wide")

pages = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:",
            url_path="overview", default=True),
    st.Page("views/analyze.py", title="Analyze", icon=":material/upload_file:",
            url_path="analyze"),
    st.Page("views/explore.py", title="Explore", icon=":material/query_stats:",
            url_path="explore"),
    st.Page("views/live.py", title="Live", icon=":material/monitor_heart:", url_path="live"),
    st.Page("views/alerts.py", title="Alerts", icon=":material/mail:", url_path="alerts"),
    st.Page("views/models.py", title="Models", icon=":material/model_training:",
            url_path="models"),
]
st.navigation(pages).run()
