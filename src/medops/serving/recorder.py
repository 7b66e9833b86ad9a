"""The per-process usage recorder: what this server process did for each deployment, minute by
minute, written as ``serving_usage`` rows (``serving/tables.py``) that SLOs, serving alert rules
and cost reports sum over any span (``serving/usage.py``).

On the request path it only adds to counters in memory (a dict lookup, a few increments, one
bucket found by bisection; no database, no I/O). The housekeeping loop calls :meth:`flush`
every ~10 s (and the services call it at shutdown): it takes what was counted, samples the
process's CPU time and resident memory, attributes them to the deployments by their share of
the request time since the previous flush, and adds everything to this process's rows (one row
per deployment, minute and replica; only this process writes its replica's rows, so adding is
a read then a write with no contention between replicas). A flush that fails keeps its counts
for the next one.

Resources: CPU seconds are ``time.process_time()`` deltas; memory is the resident set size
times the seconds between flushes (byte-seconds); both are split by request time, so the idle
time of a process with no request is attributed to nobody (the cost report says so). GPU
seconds are the inference time of requests served on a GPU execution provider (a batched
call's time is counted for each request it served: an upper bound).
"""

from __future__ import annotations

import bisect
import json
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from medops.audit.service import exempt_from_audit_guard
from medops.clock import Clock
from medops.db.engine import Database
from medops.logs import get_logger
from medops.serving.tables import ServingUsage
from medops.serving.usage import LATENCY_BOUNDS_MS

log = get_logger("medops.serving.usage")

FLUSH_SECONDS = 10
MINUTE = timedelta(minutes=1)
STATM = Path("/proc/self/statm")
GPU_PROVIDERS = frozenset(
    {
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "DmlExecutionProvider",
        "CoreMLExecutionProvider",
    }
)
_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def default_replica() -> str:
    """This process's replica id when MEDOPS_REPLICA_ID is unset: host and process id."""
    return f"{socket.gethostname()[:48]}-{os.getpid()}"


def process_sample() -> tuple[float, float]:
    """This process's CPU seconds so far and its resident memory in bytes now."""
    cpu = time.process_time()
    try:
        rss = float(int(STATM.read_bytes().split()[1]) * _PAGE)
    except (OSError, ValueError, IndexError):  # not Linux: the peak, in KiB (bytes on macOS)
        rss = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return cpu, rss


@dataclass
class MinuteUsage:
    """One deployment's counts in one minute, as this process saw them."""

    requests: int = 0
    errors: int = 0
    shed: int = 0
    client_errors: int = 0
    records: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * _BUCKETS)
    latency_sum_ms: float = 0.0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    memory_byte_seconds: float = 0.0

    def add(self, other: MinuteUsage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.shed += other.shed
        self.client_errors += other.client_errors
        self.records += other.records
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]
        self.latency_sum_ms += other.latency_sum_ms
        self.cpu_seconds += other.cpu_seconds
        self.gpu_seconds += other.gpu_seconds
        self.memory_byte_seconds += other.memory_byte_seconds


Key = tuple[str, datetime]


class UsageRecorder:
    """Counts predict requests per deployment and minute in memory; :meth:`flush` writes them.

    The counting methods and :meth:`take` run on one thread (the app's event loop; a test's
    thread): no lock on the request path. Only the database write runs elsewhere
    (:meth:`flush_async` hands it to a worker thread)."""

    def __init__(
        self,
        clock: Clock,
        replica: str,
        *,
        sample: Callable[[], tuple[float, float]] = process_sample,
        providers: Callable[[], list[str]] | None = None,
    ) -> None:
        self.replica = replica
        self._clock = clock
        self._sample = sample
        self.providers = providers  # the execution providers in use (set by the app)
        self._gpu: bool | None = None
        self._pending: dict[datetime, dict[str, MinuteUsage]] = {}
        # The minute being counted, and its end: most requests fall in it (two comparisons
        # instead of rounding the time down for each).
        self._start = self._end = clock.now()
        self._current: dict[str, MinuteUsage] = {}
        self._last_sample = sample()
        self._last_at = clock.now()

    def _minute(self, deployment: str) -> MinuteUsage:
        now = self._clock.now()
        if not self._start <= now < self._end:
            self._start = now.replace(second=0, microsecond=0)
            self._end = self._start + MINUTE
            self._current = self._pending.setdefault(self._start, {})
        usage = self._current.get(deployment)
        if usage is None:
            usage = self._current[deployment] = MinuteUsage()
        return usage

    def request(self, deployment: str, status: int, seconds: float, *, shed: bool = False) -> None:
        """Count one answered predict request: its HTTP status, its time to answer, and whether
        it was shed for its deadline (a 503, counted in the errors too)."""
        latency_ms = seconds * 1000
        usage = self._minute(deployment)
        usage.requests += 1
        if status >= 500:
            usage.errors += 1
            usage.shed += shed
        elif status >= 400:
            usage.client_errors += 1
        usage.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
        usage.latency_sum_ms += latency_ms

    def scored(self, deployment: str, records: int, infer_seconds: float) -> None:
        """Count ``records`` predictions scored, and their inference time on a GPU."""
        usage = self._minute(deployment)
        usage.records += records
        if self._gpu is None:
            chosen = self.providers() if self.providers is not None else []
            self._gpu = bool(GPU_PROVIDERS.intersection(chosen[:1]))
        if self._gpu:
            usage.gpu_seconds += infer_seconds

    def take(self) -> dict[Key, MinuteUsage]:
        """What was counted since the last take, with this process's CPU and memory since then
        attributed by request time."""
        pending = self._pending
        self._pending, self._current = {}, {}
        self._start = self._end  # the next count starts a new entry
        batch = {
            (deployment, minute): usage
            for minute, deployments in pending.items()
            for deployment, usage in deployments.items()
        }
        now = self._clock.now()
        cpu, rss = self._sample()
        cpu_delta = max(cpu - self._last_sample[0], 0.0)
        seconds = max((now - self._last_at).total_seconds(), 0.0)
        # Memory is held while serving: at most the minutes the batch served in (a long gap
        # between takes, an idle process or a clock that jumped, is not charged to them).
        seconds = min(seconds, 60.0 * len(pending))
        self._last_sample, self._last_at = (cpu, rss), now
        attribute(batch, cpu_delta, rss * seconds)
        return batch

    def restore(self, batch: dict[Key, MinuteUsage]) -> None:
        """Put back counts that could not be written, for the next flush."""
        for (deployment, minute), usage in batch.items():
            self._pending.setdefault(minute, {}).setdefault(deployment, MinuteUsage()).add(usage)
        self._start = self._end  # the current minute's dict may have been replaced

    def flush(self, db: Database) -> int:
        """Add what was counted to this process's rows; the number of rows written. On failure
        the counts are kept for the next flush and the error is raised."""
        batch = self.take()
        if batch:
            try:
                write(db, self.replica, batch)
            except Exception:
                self.restore(batch)
                raise
        return len(batch)

    async def flush_async(self, db: Database) -> int:
        """:meth:`flush` from the event loop: the counts are taken on the loop, the database
        write runs in a worker thread."""
        batch = self.take()
        if batch:
            try:
                await run_in_threadpool(write, db, self.replica, batch)
            except Exception:
                self.restore(batch)
                raise
        return len(batch)


def attribute(batch: dict[Key, MinuteUsage], cpu_seconds: float, byte_seconds: float) -> None:
    """Split ``cpu_seconds`` and ``byte_seconds`` over ``batch`` by each entry's request time
    (by its request count when no time was measured)."""
    weights = [usage.latency_sum_ms for usage in batch.values()]
    if not sum(weights):
        weights = [float(usage.requests) for usage in batch.values()]
    total = sum(weights)
    if not total:
        return
    for usage, weight in zip(batch.values(), weights, strict=True):
        usage.cpu_seconds += cpu_seconds * weight / total
        usage.memory_byte_seconds += byte_seconds * weight / total


def write(db: Database, replica: str, batch: dict[Key, MinuteUsage]) -> None:
    """Add ``batch`` to ``replica``'s rows in one transaction (bookkeeping, not an action: no
    audit record)."""
    with db.transaction() as session:
        exempt_from_audit_guard(session)
        for (deployment, minute), usage in sorted(batch.items()):
            row = session.get(ServingUsage, (deployment, minute, replica))
            if row is None:
                session.add(
                    ServingUsage(
                        deployment=deployment,
                        minute=minute,
                        replica=replica,
                        requests=usage.requests,
                        errors=usage.errors,
                        shed=usage.shed,
                        client_errors=usage.client_errors,
                        records=usage.records,
                        latency=json.dumps(usage.latency),
                        latency_sum_ms=usage.latency_sum_ms,
                        cpu_seconds=usage.cpu_seconds,
                        gpu_seconds=usage.gpu_seconds,
                        memory_byte_seconds=usage.memory_byte_seconds,
                    )
                )
                continue
            row.requests += usage.requests
            row.errors += usage.errors
            row.shed += usage.shed
            row.client_errors += usage.client_errors
            row.records += usage.records
            old = json.loads(row.latency)
            row.latency = json.dumps([int(a) + b for a, b in zip(old, usage.latency, strict=True)])
            row.latency_sum_ms += usage.latency_sum_ms
            row.cpu_seconds += usage.cpu_seconds
            row.gpu_seconds += usage.gpu_seconds
            row.memory_byte_seconds += usage.memory_byte_seconds
