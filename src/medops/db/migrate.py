"""Alembic migrations, run programmatically against a ``Database`` (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from medops.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(database: Database | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database"] = database
    return config


def head_revision() -> str:
    """The newest revision that ships with this version of medops."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate the database forward to ``revision`` (default: the newest)."""
    command.upgrade(_config(database), revision)


def downgrade(database: Database, revision: str) -> None:
    """Migrate the database back to ``revision`` ("base" empties it)."""
    command.downgrade(_config(database), revision)


def is_current(database: Database) -> bool:
    """True when the database is at the newest revision."""
    return current_revision(database) == head_revision()
