"""Alembic environment: runs against the engine the caller passes in ``attributes``.

``vigil db upgrade`` (and the app, on SQLite) call :func:`storage.db.upgrade`, which
hands its engine over; there is no second place that reads the database URL.
"""

from alembic import context
from sqlalchemy import text

from storage.schema import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two `vigil db upgrade` at once (compose's app and api containers): the
            # second waits here, then finds the schema current. Held until commit.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('vigil:migrate'))"))
        context.run_migrations()
    connection.commit()
