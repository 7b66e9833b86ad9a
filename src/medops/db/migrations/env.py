"""Alembic environment: runs online against the engine of the ``Database`` handed in.

On SQLite, altering a column rebuilds its table (batch mode: copy, drop, rename). Dropping a
table that other rows refer to fails while foreign keys are enforced, and the pragma cannot
change inside a transaction: foreign keys are turned off around the migration, every
reference is checked before it commits, and they are turned on again
(https://www.sqlite.org/lang_altertable.html#otheralter).
"""

from __future__ import annotations

from typing import Any

from alembic import context

from medops.metadata import metadata

config = context.config
database = config.attributes.get("database")
if database is None:  # pragma: no cover - only reached by misuse of the alembic CLI
    raise RuntimeError("medops migrations run through medops.db.migrate, not the alembic CLI")


def _migrate(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if database.dialect == "sqlite":
    with database.engine.connect() as connection:
        raw = connection.connection.dbapi_connection  # outside any transaction so far
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                _migrate(connection)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    msg = f"migration left {len(broken)} broken reference(s), e.g. {broken[0]}"
                    raise RuntimeError(msg)
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
else:
    with database.engine.begin() as connection:
        _migrate(connection)
