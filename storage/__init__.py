"""Persistence: runs, anomalies, alert notifications and registered models in the database
(PostgreSQL, or embedded SQLite), and the fallback journal for runs it could not take."""
