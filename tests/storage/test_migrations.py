"""The migrations build the schema the models describe, with comments and the view."""

import pytest
from alembic import command
from sqlalchemy import inspect, text

from storage import db
from storage.schema import Base

TABLES = {"detection_runs", "anomalies", "alert_notifications", "model_versions", "incidents",
          "stream_checkpoints"}


def test_upgrade_from_empty_then_check_finds_no_drift(database_url):
    engine = db.make_engine(database_url)
    config = db.alembic_config(engine)
    command.downgrade(config, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(config, "head")
    command.check(config)  # raises when models and migrations disagree
    assert db.is_current(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert "recent_anomalies" in inspect(engine).get_view_names()


def test_an_embedded_database_is_upgraded_only_when_behind(tmp_path, monkeypatch):
    """Each process checks the SQLite file with one query; Alembic (a fifth of a second
    to import) runs only when a migration is missing, then never again."""
    from alembic.script import ScriptDirectory

    engine = db.make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    head = ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()
    assert db.head_revision() == head
    upgrades = []
    upgrade = db.upgrade
    monkeypatch.setattr(db, "upgrade", lambda e: upgrades.append(1) or upgrade(e))
    db.upgrade_if_behind(engine)  # a new file: upgraded
    db.upgrade_if_behind(engine)  # current: left alone
    assert upgrades == [1] and db.is_current(engine)
    command.downgrade(db.alembic_config(engine), "-1")
    db.upgrade_if_behind(engine)
    assert upgrades == [1, 1] and db.is_current(engine)


@pytest.mark.postgres
def test_every_table_and_column_is_commented_for_adminer(postgres_url):
    """SQLite keeps no comments; on PostgreSQL, Adminer shows them."""
    engine = db.make_engine(postgres_url)
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        assert inspector.get_table_comment(table.name)["text"], table.name
        uncommented = [c["name"] for c in inspector.get_columns(table.name) if not c["comment"]]
        assert not uncommented, f"{table.name}: {uncommented}"
    with engine.connect() as conn:
        view_comment = conn.execute(text(
            "SELECT obj_description('recent_anomalies'::regclass)")).scalar()
    assert "30 days" in view_comment
    engine.dispose()


def test_json_columns_are_jsonb_on_postgresql(engine):
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("anomalies")}
    expected = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    assert type(columns["data"]).__name__ == expected


def test_dashboard_filters_are_indexed(engine):
    indexed = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("anomalies")}
    for column in ("event_time", "severity", "entity", "review_status", "anomaly_score"):
        assert (column,) in indexed, column
    assert ("run_id", "row_number", "run_created_at") in indexed  # the month: partitions
