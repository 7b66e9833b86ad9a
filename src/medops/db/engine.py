"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from medops.files import create_sqlite_file

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
)


SQLITE_BEGIN_OPTION = "medops_sqlite_begin"
SQLITE_POOL_SIZE = 48


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would start transactions
    # only at the first write, so the reads before it would see no consistent snapshot).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _private_file_creator(path: Path) -> Callable[..., None]:
    """Before SQLite opens ``path``, create it 0600 if it is new (in a folder that exists,
    as SQLite would): SQLite makes the file 0644 less the umask, and its -wal and -shm files
    take the database file's mode, so all three end up owner-only (medops/files.py)."""

    def create(*_args: Any) -> None:
        if path.parent.is_dir():
            create_sqlite_file(path)

    return create


def _sqlite_on_begin(connection: Connection) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): two of them never
    # interleave their reads and writes, so a check such as "the last active admin" holds.
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """Create an engine with medops's connection settings for the URL's dialect."""
    if url.startswith("sqlite"):
        # A pool as large as the server's worker threads: a connection opened past the pool
        # is closed again after use, and opening one (WAL, pragmas) costs more than a query.
        in_memory = make_url(url).database in (None, "", ":memory:")
        pool: dict[str, Any] = (
            {} if in_memory else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_SIZE}
        )
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        database = make_url(url).database
        if not in_memory and database and not database.startswith("file:"):
            event.listen(engine, "do_connect", _private_file_creator(Path(database)))
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=5,
        connect_args={"connect_timeout": 5},
    )


class Database:
    """One database: its engine and the factory of sessions bound to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        # Held for the whole of every write transaction of this process, before any database
        # lock: the audit hash chain of this process is appended in commit order, and one
        # lock order (this, then the database's) cannot deadlock.
        self.write_lock = threading.RLock()
        self._local = threading.local()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session; the caller commits or rolls back."""
        return self.session_factory()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on error.

        On SQLite it starts with BEGIN IMMEDIATE, so concurrent write transactions run one
        after the other; on PostgreSQL use ``SELECT ... FOR UPDATE`` where a check must hold.
        """
        with self.write_lock, self.session_factory.begin() as session:
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                if self.dialect == "sqlite":
                    session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                yield session
            finally:
                self._local.depth -= 1

    def in_write_transaction(self) -> bool:
        """True inside ``transaction()`` on this thread."""
        return getattr(self._local, "depth", 0) > 0

    def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
