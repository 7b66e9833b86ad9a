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

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medops.audit.schemas import AuditEntry
from medops.context import Context
from medops.errors import AuditUnavailableError
from medops.logs import get_logger

if TYPE_CHECKING:
    from medops.audit.service import AuditService

log = get_logger("medops.audit.writer")


@dataclass
class _Item:
    ctx: Context
    records: Sequence[tuple[AuditEntry, Sequence[Any]]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    future: Future[None] | None = None


@dataclass
class WriterStats:
    batches: int = 0
    records: int = 0
    largest_batch: int = 0
    failed_batches: int = 0


class GroupCommitWriter:
    """A bounded queue of audit records, committed in batches by one thread."""

    def __init__(
        self,
        audit: AuditService,
        *,
        max_batch: int = 256,
        max_wait: float = 0.002,
        capacity: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self._audit = audit
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._timeout = timeout
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.stats = WriterStats()

    def submit(self, ctx: Context, entry: AuditEntry) -> None:
        """Queue one record and wait until it is committed; raises when it cannot be."""
        self._ensure_started()
        item = _Item(ctx, [(entry, ())])
        try:
            self._queue.put(item, timeout=self._timeout)
        except queue.Full:
            raise AuditUnavailableError(
                "the audit log is saturated; the action was not done"
            ) from None
        if not item.done.wait(self._timeout):
            raise AuditUnavailableError("the audit record was not made durable in time")
        if item.error is not None:
            raise AuditUnavailableError("the audit record could not be written") from item.error

    def submit_rows(
        self, ctx: Context, records: Sequence[tuple[AuditEntry, Sequence[Any]]]
    ) -> Future[None]:
        """Queue audit records, each with the ORM rows it accounts for; the future resolves
        once all are committed and fails with AuditUnavailableError when they cannot be
        (at once when the queue is full: the caller is an event loop and must not block)."""
        self._ensure_started()
        item = _Item(ctx, records, future=Future())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise AuditUnavailableError(
                "the audit log is saturated; the action was not done"
            ) from None
        assert item.future is not None
        return item.future

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
            with self._audit.db.transaction() as session:
                for item in batch:
                    for entry, rows in item.records:
                        self._audit.record(session, item.ctx, entry)
                        session.add_all(rows)
        except Exception as exc:  # noqa: BLE001 - every waiter hears of it, none is lost
            records = sum(len(item.records) for item in batch)
            log.error("audit batch failed", records=records, error=type(exc).__name__)
            self.stats.failed_batches += 1
            for item in batch:
                item.error = exc
        else:
            records = sum(len(item.records) for item in batch)
            self.stats.batches += 1
            self.stats.records += records
            self.stats.largest_batch = max(self.stats.largest_batch, records)
        finally:
            for item in batch:
                item.done.set()
                self._resolve(item)

    @staticmethod
    def _resolve(item: _Item) -> None:
        """Tell a future-waiting submitter; one that gave up (cancelled) is skipped, never
        allowed to stop the writer thread."""
        future = item.future
        if future is None or not future.set_running_or_notify_cancel():
            return
        if item.error is None:
            future.set_result(None)
        else:
            failure = AuditUnavailableError("the records could not be written")
            failure.__cause__ = item.error
            future.set_exception(failure)

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
