"""Alembic environment: runs online against the engine of the ``Database`` handed in."""

from __future__ import annotations

from alembic import context

from medops.db.models import metadata

config = context.config
database = config.attributes.get("database")
if database is None:  # pragma: no cover - only reached by misuse of the alembic CLI
    raise RuntimeError("medops migrations run through medops.db.migrate, not the alembic CLI")

with database.engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
