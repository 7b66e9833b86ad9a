"""Adaptive micro-batching with a latency target, first in first out.

Concurrent requests wait in one FIFO queue. The dispatcher takes the oldest request and
gathers more until the batch holds ``max_batch_size`` rows or the oldest has waited
``max_delay_s`` (it waits only while requests arrive faster than one per ``max_delay_s``, by a
moving average of the gaps between them, and a caller that knows it is the only request in
flight is never kept waiting: a lone request runs at once); then one call of
``run_batch`` (an ONNX Runtime session, in a worker thread so the event loop stays free)
scores them all. As BentoML's adaptive dispatcher does, the cost of a
batch is fitted as ``a * rows + b`` (least squares over recent batches); unlike it, order is
strictly FIFO and the delay is an explicit bound. A request whose projected completion (the
rows queued ahead of it, its own batch, at the fitted cost) would miss its deadline is shed at
once with ``ShedError`` (503 with Retry-After), instead of queueing work nobody will wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from medops.errors import ServiceUnavailableError, ShedError

In = TypeVar("In")
Out = TypeVar("Out")
HISTORY = 64  # batches kept for the cost fit
INLINE_SECONDS = 0.0005  # batches projected to run faster than this run on the event loop


@dataclass
class BatchStats:
    """What the batcher did, for metrics: counters only (``on_batch`` sees each batch)."""

    batches: int = 0
    rows: int = 0
    shed: int = 0
    largest: int = 0


class CostModel:
    """Batch cost ``a * rows + b`` in seconds, least squares over the last batches."""

    def __init__(self, *, initial_per_row: float = 1e-4, initial_fixed: float = 1e-3) -> None:
        self.per_row = initial_per_row
        self.fixed = initial_fixed
        self._seen: deque[tuple[int, float]] = deque(maxlen=HISTORY)

    def observe(self, rows: int, seconds: float) -> None:
        self._seen.append((rows, seconds))
        n = len(self._seen)
        if n < 2:
            self.fixed = max(seconds - self.per_row * rows, 0.0)
            return
        mean_x = sum(r for r, _ in self._seen) / n
        mean_y = sum(s for _, s in self._seen) / n
        var = sum((r - mean_x) ** 2 for r, _ in self._seen)
        if var > 0:
            cov = sum((r - mean_x) * (s - mean_y) for r, s in self._seen)
            self.per_row = max(cov / var, 0.0)
        self.fixed = max(mean_y - self.per_row * mean_x, 0.0)

    def seconds(self, rows: int) -> float:
        return self.fixed + self.per_row * rows


@dataclass
class _Pending(Generic[In, Out]):
    items: Sequence[In]
    enqueued: float
    deadline: float
    future: asyncio.Future[list[Out]]
    timing: dict[str, float] | None = None
    company: bool = True  # whether the caller knows of other requests on their way here


class MicroBatcher(Generic[In, Out]):
    """Coalesces concurrent calls of ``run_batch`` under a delay bound and deadlines."""

    def __init__(
        self,
        run_batch: Callable[[list[In]], list[Out]],
        *,
        max_batch_size: int = 64,
        max_delay_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_delay_s < 0:
            msg = "max_batch_size must be >= 1 and max_delay_s >= 0"
            raise ValueError(msg)
        self._run = run_batch
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._on_batch = on_batch  # (rows, seconds in ONNX Runtime) of each batch run
        self._queue: deque[_Pending[In, Out]] = deque()
        self._queued_rows = 0
        self._inflight: list[_Pending[In, Out]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cost = CostModel()
        self.stats = BatchStats()
        self._last_arrival: float | None = None
        self.arrival_gap: float | None = None  # moving average of the time between requests

    def start(self) -> None:
        """Start the dispatcher on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._dispatch())

    async def close(self) -> None:
        """Stop the dispatcher; requests queued or in the running batch fail with
        ServiceUnavailableError (their callers get an answer, never a hang)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        waiting = [*self._inflight, *self._queue]
        self._queue.clear()
        self._queued_rows = 0
        self._inflight = []
        for pending in waiting:
            if not pending.future.done():
                pending.future.set_exception(ServiceUnavailableError("the server is stopping"))

    async def submit(
        self,
        items: Sequence[In],
        *,
        timeout_s: float,
        timing: dict[str, float] | None = None,
        company: bool = True,
    ) -> list[Out]:
        """Score ``items`` (one request: one or more rows) within ``timeout_s``, or shed.
        ``timing`` (when given) receives the seconds spent queued and in the batch run.
        ``company=False``: the caller knows no other request is on its way (it is the only
        one in flight), so waiting for one to batch with would only delay it."""
        if not items:
            return []
        self.start()
        now = self._clock()
        projected = self._projected_seconds(len(items))
        if projected > timeout_s:
            self.stats.shed += 1
            raise ShedError(
                f"overloaded: a result is {projected * 1000:.0f} ms away, over the "
                f"{timeout_s * 1000:.0f} ms deadline; retry shortly",
                retry_after=max(projected - timeout_s, 0.001),
            )
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            self.arrival_gap = (
                gap if self.arrival_gap is None else 0.8 * self.arrival_gap + 0.2 * gap
            )
        self._last_arrival = now
        future: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(items, now, now + timeout_s, future, timing, company))
        self._queued_rows += len(items)
        self._wake.set()
        return await future

    def _projected_seconds(self, rows: int) -> float:
        """When a request of ``rows`` rows would be answered if it queued now: the queued rows
        ahead of it in full batches, then its own batch, plus the delay bound."""
        ahead = self._queued_rows
        batches = (ahead + rows + self.max_batch_size - 1) // self.max_batch_size
        return self.max_delay_s + batches * self.cost.fixed + (ahead + rows) * self.cost.per_row

    def _company_expected(self) -> bool:
        """Whether another request is likely to arrive within the delay bound: requests have
        been coming faster than one per ``max_delay_s``. A lone request (a quiet hour, one
        client at a time) is run at once instead of waiting for company that will not come."""
        if not any(pending.company for pending in self._queue):
            return False  # every caller queued knows it is alone
        return self.arrival_gap is not None and self.arrival_gap < self.max_delay_s

    def _take_batch(self) -> list[_Pending[In, Out]]:
        batch: list[_Pending[In, Out]] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if batch and rows + len(head.items) > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            rows += len(head.items)
        self._queued_rows -= rows
        return batch

    def _timed(self, flat: list[In]) -> tuple[list[Out], float]:
        """Run a batch and measure the run itself (not the hand-off to a thread)."""
        started = time.perf_counter()
        results = self._run(flat)
        return results, time.perf_counter() - started

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            oldest = self._queue[0].enqueued
            wait = oldest + self.max_delay_s - self._clock()
            if self._queued_rows < self.max_batch_size and wait > 0 and self._company_expected():
                await asyncio.sleep(wait)
            batch = self._take_batch()
            if not batch:
                continue
            started = self._clock()
            self._inflight = batch
            flat = [item for pending in batch for item in pending.items]
            try:
                if self.cost.seconds(len(flat)) <= INLINE_SECONDS:
                    # Cheaper than the thread hand-off (and the GIL convoy it starts).
                    results, elapsed = self._timed(flat)
                else:
                    results, elapsed = await loop.run_in_executor(None, self._timed, flat)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                self._inflight = []
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            # (On cancellation _inflight stays set, so that close() can fail these callers.)
            self._inflight = []
            self._deliver(batch, results, started, elapsed)

    def _deliver(
        self, batch: list[_Pending[In, Out]], results: list[Out], started: float, elapsed: float
    ) -> None:
        rows = sum(len(pending.items) for pending in batch)
        self.cost.observe(rows, elapsed)
        self.stats.batches += 1
        self.stats.rows += rows
        self.stats.largest = max(self.stats.largest, rows)
        if self._on_batch is not None:
            self._on_batch(rows, elapsed)
        offset = 0
        for pending in batch:
            if pending.timing is not None:
                pending.timing["queue"] = started - pending.enqueued
                pending.timing["infer"] = elapsed
            count = len(pending.items)
            if not pending.future.done():
                pending.future.set_result(results[offset : offset + count])
            offset += count
