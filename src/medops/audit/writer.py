"""Group commit for audit records that stand alone (refusals, failures, break-glass use)
and for the prediction log: many records, one transaction and one commit (fsync).

``submit`` returns only once its record is durable, or raises ``AuditUnavailableError``
(fail closed): when the bounded queue stays full for ``timeout`` (backpressure) or when the
batch cannot be committed. ``submit_rows`` is the prediction path's way in: audit records each
with the rows they account for (prediction rows), committed together; it returns a future at
once, so an event loop can await it without a thread per request. One background thread drains
the queue: it takes what is waiting, up to ``max_batch``, waiting at most ``max_wait`` for more
once it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert
from sqlalchemy import inspect as sa_inspect

from medops.audit.schemas import AuditEntry
from medops.audit.tables import AuditEvent
from medops.context import Context
from medops.db.engine import SQLITE_BEGIN_OPTION
from medops.errors import AuditUnavailableError
from medops.logs import get_logger

if TYPE_CHECKING:
    from medops.audit.service import AuditService

log = get_logger("medops.audit.writer")


# Rows a prediction's audit record accounts for: (ORM class, column values), inserted in
# bulk with the record (no ORM object per row).
Rows = Sequence[tuple[Any, dict[str, Any]]]


@dataclass
class _Item:
    ctx: Context
    records: Sequence[tuple[AuditEntry, Rows]]
    done: threading.Event | None = None  # a thread waits on it (``submit``)
    error: BaseException | None = None
    waiter: asyncio.Future[None] | None = None  # or an event loop awaits this


@dataclass
class WriterStats:
    batches: int = 0
    records: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    inline: int = 0  # batches committed by the caller itself (``submit_rows(alone=True)``)


class GroupCommitWriter:
    """A bounded queue of audit records, committed in batches by one thread."""

    def __init__(
        self,
        audit: AuditService,
        *,
        max_batch: int = 256,
        max_wait: float = 0.0,
        capacity: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self._audit = audit
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._timeout = timeout
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None  # the writer thread's own (``_connection``)
        self._start_lock = threading.Lock()
        self.stats = WriterStats()

    def submit(self, ctx: Context, entry: AuditEntry) -> None:
        """Queue one record and wait until it is committed; raises when it cannot be."""
        self._ensure_started()
        item = _Item(ctx, [(entry, ())], done=threading.Event())
        try:
            self._queue.put(item, timeout=self._timeout)
        except queue.Full:
            raise AuditUnavailableError(
                "the audit log is saturated; the action was not done"
            ) from None
        assert item.done is not None
        if not item.done.wait(self._timeout):
            raise AuditUnavailableError("the audit record was not made durable in time")
        if item.error is not None:
            raise AuditUnavailableError("the audit record could not be written") from item.error

    def submit_rows(
        self, ctx: Context, records: Sequence[tuple[AuditEntry, Rows]], *, alone: bool = False
    ) -> asyncio.Future[None]:
        """Queue audit records, each with the rows it accounts for; call on an event loop.
        The returned future resolves once all are committed and fails with
        AuditUnavailableError when they cannot be (at once when the queue is full: an event
        loop must not block). Cancelling it stops nothing: the records may still land.

        ``alone``: the caller's request is the only one in flight. When the writer is idle
        too (nothing queued, no transaction of this process running), the records are then
        committed right here, without the two thread hand-offs: there is nothing else for the
        event loop to do meanwhile, and nothing to batch them with."""
        self._ensure_started()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Item(ctx, records, waiter=waiter)
        if alone and self._inline(item):
            return waiter
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise AuditUnavailableError(
                "the audit log is saturated; the action was not done"
            ) from None
        return waiter

    def _inline(self, item: _Item) -> bool:
        """Commit ``item`` on the calling thread when nothing is queued, no write transaction
        of this process runs, and the chain's head is known (no session work to do first);
        False (nothing done) otherwise."""
        lock = self._audit.db.write_lock
        if not self._queue.empty() or not lock.acquire(blocking=False):
            return False
        try:
            if not self._queue.empty() or not self._audit.head_ready():
                return False
            self._commit([item])
        finally:
            lock.release()
        self.stats.inline += 1
        return True

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="medops-audit-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first.records)
            deadline = time.monotonic() + self._max_wait
            stop = False
            while size < self._max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item.records)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        try:
            if not self._commit_direct(batch):
                self._commit_in_session(batch)
        except BaseException as exc:  # every waiter hears of it, none is told "durable"
            records = sum(len(item.records) for item in batch)
            log.error("audit batch failed", records=records, error=type(exc).__name__)
            self.stats.failed_batches += 1
            for item in batch:
                item.error = exc
            if not isinstance(exc, Exception):
                raise
        else:
            records = sum(len(item.records) for item in batch)
            self.stats.batches += 1
            self.stats.records += records
            self.stats.largest_batch = max(self.stats.largest_batch, records)
        finally:
            self._notify(batch)

    def _commit_direct(self, batch: list[_Item]) -> bool:
        """Commit the batch on the writer's own connection: one prepared multi-row INSERT per
        table executed by the driver (``_Insert``), inside a transaction SQLAlchemy begins and
        commits; no session, no ORM state. False (nothing done) when the chain's head must
        first be read back or the chain opened (``_commit_in_session``)."""
        audit = self._audit
        db = audit.db
        items = [(item.ctx, entry) for item in batch for entry, _ in item.records]
        with db.write_lock:
            made = audit.follow_head(items)
            if made is None:
                return False
            rows, tip = made
            connection = self._connection()
            try:
                with connection.begin():
                    cursor = _driver(connection).cursor()
                    try:
                        _insert(AuditEvent, rows, connection).run(cursor, rows)
                        for model, listed in _by_table(batch).items():
                            values = _by_column(model, listed)
                            _insert(model, values, connection).run(cursor, values)
                    finally:
                        cursor.close()
            except BaseException:
                audit.advance(None)  # it may have landed: the head is read back next time
                self._drop_connection()
                raise
            audit.advance(tip)
        return True

    def _commit_in_session(self, batch: list[_Item]) -> None:
        """The general way: a session transaction that reads the chain's head back from the
        database or opens the chain first (the first batch, or after a failed one)."""
        with self._audit.db.transaction() as session:
            self._audit.record_many(
                session, [(item.ctx, entry) for item in batch for entry, _ in item.records]
            )
            for model, values_list in _by_table(batch).items():
                session.execute(insert(model), values_list)

    def _connection(self) -> Connection:
        """The writer thread's connection, kept between batches (no pool checkout, no
        liveness ping per batch); on SQLite its transactions take the write lock at BEGIN."""
        if self._conn is None:
            db = self._audit.db
            connection = db.engine.connect()
            if db.dialect == "sqlite":
                connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            self._conn = connection
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: the pool discards it
                self._conn.close()
            self._conn = None

    @staticmethod
    def _notify(batch: list[_Item]) -> None:
        """Wake the waiting threads, and each event loop once for all its waiters."""
        loops: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        for item in batch:
            if item.done is not None:
                item.done.set()
            if item.waiter is not None:
                loops.setdefault(item.waiter.get_loop(), []).append(item)
        for loop, items in loops.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, items)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=10)
        except queue.Full:
            log.error("audit writer did not drain its queue in time; records left unwritten")
        self._thread.join(timeout=10)
        self._thread = None
        self._drop_connection()


def _driver(connection: Connection) -> Any:
    """The DBAPI connection under ``connection`` (sqlite3's or psycopg's)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


class _Insert:
    """``INSERT INTO table (columns) VALUES (...)`` prepared once for a table and a set of
    columns, run with the driver's ``executemany`` on values converted by the columns' own
    bind processors (so stored values are exactly what a SQLAlchemy insert would store):
    SQLAlchemy's per-statement work (compiled-cache lookup, execution context, result) costs
    more than the insert of a prediction and its audit record itself."""

    def __init__(self, table: Any, keys: tuple[str, ...], dialect: Any) -> None:
        columns = [table.c[key] for key in keys]
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(quote(column.name) for column in columns)
        marks = ", ".join([mark] * len(columns))
        # Names from the table's metadata, quoted by the dialect; every value is a parameter.
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608 - quoted table metadata, values are parameters
        self.keys = keys
        self.processors = [
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
        ]

    def run(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        keys, processors = self.keys, self.processors
        cursor.executemany(
            self.sql,
            [
                tuple(
                    value if process is None or value is None else process(value)
                    for value, process in zip(map(row.__getitem__, keys), processors, strict=True)
                )
                for row in rows
            ],
        )


_INSERTS: dict[tuple[Any, tuple[str, ...], str], _Insert] = {}


def _insert(model: Any, rows: list[dict[str, Any]], connection: Connection) -> _Insert:
    """The prepared insert of ``model``'s table for the columns ``rows`` hold (keys of the
    first row: a batch's rows of one table all hold the same)."""
    keys = tuple(rows[0])
    dialect = connection.dialect
    found = _INSERTS.get((model, keys, dialect.name))
    if found is None:
        found = _INSERTS[(model, keys, dialect.name)] = _Insert(model.__table__, keys, dialect)
    return found


def _by_table(batch: list[_Item]) -> dict[Any, list[dict[str, Any]]]:
    """The rows the batch's records account for, grouped by their table."""
    tables: dict[Any, list[dict[str, Any]]] = {}
    for item in batch:
        for _, rows in item.records:
            for model, values in rows:
                tables.setdefault(model, []).append(values)
    return tables


@functools.cache
def _column_keys(model: Any) -> dict[str, str]:
    """The model's attribute names -> its table's column keys (``metadata_json`` is the
    column ``metadata``): a Core INSERT takes column keys and ignores any other key."""
    return {prop.key: prop.columns[0].key for prop in sa_inspect(model).column_attrs}


def _by_column(model: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = _column_keys(model)
    if all(name == keys.get(name) for name in rows[0]):
        return rows
    return [{keys[name]: value for name, value in row.items()} for row in rows]


def _settle(items: list[_Item]) -> None:
    """On the waiters' loop: resolve each future; one that gave up (cancelled) is skipped."""
    for item in items:
        waiter = item.waiter
        if waiter is None or waiter.done():
            continue
        if item.error is None:
            waiter.set_result(None)
        else:
            failure = AuditUnavailableError("the records could not be written")
            failure.__cause__ = item.error
            waiter.set_exception(failure)
