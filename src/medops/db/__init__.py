"""Database access: engine, sessions, ORM base and Alembic migrations."""

from medops.db.base import Base, UTCDateTime
from medops.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime"]
