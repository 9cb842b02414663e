"""Small Streamlit helpers shared by the pages."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from alerts.errors import AlertError
from app import services
from app.dashboard import cookies
from app.errors import NotAllowedError
from app.settings import Settings, get_settings
from app.text import markdown
from app.vigil import Actor, Vigil
from detection import DetectionError
from storage.errors import DatabaseError, StorageError

SEVERITY_BACKGROUND = {"critical": "#fecaca", "high": "#fed7aa", "medium": "#fef08a",
                       "low": "#dbeafe"}


SIGNED_IN = "signed_in"  # session state: the server-side session's id
SSO_SEEN = "sso_seen"  # session state: when a single sign-on session last showed a page
NOBODY = Actor("(not signed in)", "none")  # may do nothing that needs a role


def application() -> Vigil:
    """The application object, one per process and shared by every session (a new one
    only when the settings are read anew, as the tests do), acting for nobody."""
    settings = get_settings()
    return _application(id(settings), settings)


@st.cache_resource(max_entries=1, show_spinner=False)
def _application(key: int, _settings: Settings) -> Vigil:  # key: the settings object's id
    return Vigil(_settings, NOBODY)


def single_sign_on() -> bool:
    """Whether an OpenID Connect provider is configured (``[auth]`` in secrets.toml)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def sso_identity() -> str | None:
    """The e-mail of the single sign-on identity this browser holds, if any."""
    if not single_sign_on() or not st.user.is_logged_in:
        return None
    return st.user.get("email")


def signed_in() -> Actor | None:
    """Who this session is signed in as, checked on every page against the server-side
    session record (:func:`app.services.session_user`): signing out, disabling the user
    or changing their password ends it at once. A single sign-on identity (Streamlit
    keeps it in a cookie) signs the session in as the account with its e-mail, or with
    the role its provider's claim names, checked on every page as well."""
    state = st.session_state.get(SIGNED_IN)
    kept = st.context.cookies.get(cookies.COOKIE)
    if state is None and isinstance(kept, str) and kept:  # a reload, a new tab
        state = {"session": kept}
    if state is not None:
        actor = services.session_user(application(), state["session"])
        if actor is not None:
            st.session_state[SIGNED_IN] = state
            return actor
        st.session_state.pop(SIGNED_IN, None)
    email = sso_identity()
    if not email:
        return None
    actor = services.sso_user(application(), email,
                              st.user.get(application().settings.sso_role_claim))
    if actor is None:  # the sign-in page says why
        return None
    now = time.time()
    if now - st.session_state.get(SSO_SEEN, now) > \
            application().settings.session_idle_hours * 3600:
        st.session_state.pop(SSO_SEEN, None)
        st.logout()  # idle: the single sign-on identity is forgotten as well
        return None
    st.session_state[SSO_SEEN] = now
    return actor


def sign_in(actor: Actor) -> None:
    """Start a server-side session for ``actor`` (signed in with a password). Served by
    ``server.py``, the browser then keeps it in an HttpOnly cookie (a round trip to the
    cookie route and back to this page, which it reloads signed in)."""
    token = services.open_session(application(), actor)
    st.session_state[SIGNED_IN] = {"session": token}
    if cookies.SERVED:
        st.html(cookies.keep_script(token), unsafe_allow_javascript=True)
        st.stop()


def sign_out() -> None:
    """Sign this session out: its record ends, so nothing can use it again. With
    single sign-on, ``st.logout`` forgets the provider's identity too: it sends the
    browser to clear its cookie and reload (a rerun here would drop that message);
    without, the page reruns signed out."""
    state = st.session_state.pop(SIGNED_IN, None)
    if state is not None:
        services.end_session(application(), state["session"])
    if sso_identity():
        st.session_state.pop(SSO_SEEN, None)
        st.logout()
    elif cookies.SERVED:  # the record has ended; the browser forgets the cookie too
        st.html(cookies.forget_script(), unsafe_allow_javascript=True)
        st.stop()
    else:
        st.rerun()


def vigil() -> Vigil:
    """The application acting for the signed-in user: the use cases check their role.
    A page run while signed out (the navigation never offers one) stops here."""
    actor = signed_in()
    if actor is None:
        st.stop()
    return application().acting_as(actor)


@contextmanager
def user_errors():
    """Show what went wrong in words; never a traceback for bad input or a down server."""
    try:
        yield
    except DatabaseError as exc:
        st.error(f"The database failed: {markdown(exc.detail)}. Check DATABASE_URL; on a new "
                 "PostgreSQL database run `vigil db upgrade`.", icon=":material/database:")
        st.stop()
    except (DetectionError, StorageError, AlertError, NotAllowedError) as exc:
        st.error(markdown(exc), icon=":material/error:")
        st.stop()


def run_label(run) -> str:
    return (f"#{run.id} · {run.source_name} · {run.profile} · {run.anomaly_count:,} flagged · "
            f"{run.created_at:%Y-%m-%d %H:%M}")


def severity_styler(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    """Severity cells coloured by band; numbers to 12 significant digits, readings as
    read (37.24, not the Styler's 37.240000; a column's own format, such as the score's,
    still applies)."""
    return frame.style.map(
        lambda v: f"background-color: {SEVERITY_BACKGROUND.get(v, '')}", subset=["severity"],
    ).format("{:.12g}", subset=frame.select_dtypes("float").columns, na_rep="")


# What a reader calls the stored columns (Explore's tables); times get their zone added.
HEADERS = {"review_status": "status", "anomaly_score": "score", "event_time": "time",
           "reviewed_by": "reviewed by", "reviewed_at": "reviewed at", "run_id": "run",
           "incident_id": "incident", "row_number": "row", "started_at": "started",
           "ended_at": "ended", "row_count": "rows", "peak_score": "peak"}


def readable(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """``frame`` as a table to read: the columns ``first`` leading, times in the viewer's
    zone (setting DISPLAY_TIMEZONE) without an offset on every cell, readable headers."""
    zone = get_settings().display_timezone
    shown = frame[[c for c in first if c in frame] + [c for c in frame if c not in first]]
    shown = shown.copy()
    headers = dict(HEADERS)
    for column in shown.columns:
        if isinstance(shown[column].dtype, pd.DatetimeTZDtype):
            shown[column] = shown[column].dt.tz_convert(zone).dt.tz_localize(None)
            headers[column] = f"{HEADERS.get(column, column)} ({zone})"
    return shown.rename(columns=headers)


def anomaly_table(frame: pd.DataFrame, **options):
    """Scored rows as a table: the score as a 0-100 bar, severity coloured, reasons wide."""
    return st.dataframe(severity_styler(frame), width="stretch", column_config={
        column: st.column_config.ProgressColumn(
            "score", min_value=0, max_value=100, format="%.1f")
        for column in ("anomaly_score", "score")} | {
        "reasons": st.column_config.TextColumn("reasons", width="large")}, **options)

