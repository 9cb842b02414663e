"""Small Streamlit helpers shared by the pages."""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import streamlit as st

from alerts.errors import AlertError
from app.settings import Settings, get_settings
from app.text import markdown
from app.vigil import Vigil
from detection import DetectionError
from storage.errors import DatabaseError, StorageError

SEVERITY_BACKGROUND = {"critical": "#fecaca", "high": "#fed7aa", "medium": "#fef08a",
                       "low": "#dbeafe"}


def vigil() -> Vigil:
    """The application object: one per process, shared by every session (a new one only
    when the settings are read anew, as the tests do)."""
    settings = get_settings()
    return _vigil(id(settings), settings)


@st.cache_resource(max_entries=1, show_spinner=False)
def _vigil(key: int, _settings: Settings) -> Vigil:  # key: the settings object's id
    return Vigil(_settings)


@contextmanager
def user_errors():
    """Show what went wrong in words; never a traceback for bad input or a down server."""
    try:
        yield
    except DatabaseError as exc:
        st.error(f"The database failed: {markdown(exc.detail)}. Check DATABASE_URL; on a new "
                 "PostgreSQL database run `vigil db upgrade`.", icon=":material/database:")
        st.stop()
    except (DetectionError, StorageError, AlertError) as exc:
        st.error(markdown(exc), icon=":material/error:")
        st.stop()


def run_label(run) -> str:
    return (f"#{run.id} · {run.source_name} · {run.profile} · {run.anomaly_count:,} flagged · "
            f"{run.created_at:%Y-%m-%d %H:%M}")


def severity_styler(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    """Severity cells coloured by band."""
    return frame.style.map(lambda v: f"background-color: {SEVERITY_BACKGROUND.get(v, '')}",
                           subset=["severity"])

