"""The dashboard as served: Streamlit's app (``main.py``) and the two routes that keep
its session in an HttpOnly cookie (:mod:`app.dashboard.cookies`).

    streamlit run app/dashboard/server.py     # what `make run` does
"""

from contextlib import asynccontextmanager

import streamlit as st
from starlette.routing import Route

from app.dashboard import cookies


@asynccontextmanager
async def serving(_app):
    """While this server runs, sign-in sends the browser by the cookie routes (not when
    a test merely imports this module)."""
    cookies.SERVED = True
    try:
        yield None
    finally:
        cookies.SERVED = False


app = st.App("main.py", lifespan=serving,
             routes=[Route(cookies.KEEP, cookies.keep), Route(cookies.FORGET, cookies.forget)])
