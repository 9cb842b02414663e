"""Persistence: saved models (a folder for now), later runs and anomalies in a database."""
