"""The dashboard as served: Streamlit's app (``main.py``) and the two routes that keep
its session in an HttpOnly cookie (:mod:`app.dashboard.cookies`).

    streamlit run app/dashboard/server.py     # what `make run` does
"""

import streamlit as st
from starlette.routing import Route

from app.dashboard import cookies

cookies.SERVED = True
app = st.App("main.py", routes=[Route(cookies.KEEP, cookies.keep),
                                Route(cookies.FORGET, cookies.forget)])
