"""Vigil's application layer: settings, use cases, CLI and the Streamlit dashboard."""
