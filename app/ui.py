"""Small Streamlit helpers shared by the pages."""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import streamlit as st
from sqlalchemy.exc import DBAPIError

from alerts.errors import AlertError
from app import services
from app.text import markdown
from detection import DetectionError
from storage.errors import StorageError

SEVERITY_BACKGROUND = {"critical": "#fecaca", "high": "#fed7aa", "medium": "#fef08a",
                       "low": "#dbeafe"}


@contextmanager
def user_errors():
    """Show what went wrong in words; never a traceback for bad input or a down server."""
    try:
        yield
    except (DetectionError, StorageError, AlertError) as exc:
        st.error(markdown(exc), icon=":material/error:")
        st.stop()
    except DBAPIError as exc:
        st.error(f"The database failed: {markdown(services.database_error(exc))}. Check "
                 "DATABASE_URL; on a new PostgreSQL database run `vigil db upgrade`.",
                 icon=":material/database:")
        st.stop()


def run_label(run) -> str:
    return (f"#{run.id} · {run.source_name} · {run.profile} · {run.anomaly_count:,} flagged · "
            f"{run.created_at:%Y-%m-%d %H:%M}")


def severity_styler(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    """Severity cells coloured by band."""
    return frame.style.map(lambda v: f"background-color: {SEVERITY_BACKGROUND.get(v, '')}",
                           subset=["severity"])

