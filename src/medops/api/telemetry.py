"""Prometheus metrics of the HTTP layer, in a registry owned by one app (not a global)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from medops.audit.checkpoints import CheckpointService
from medops.audit.writer import WriterStats

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class AuditWriterCollector(Collector):
    """The group-commit writer's counters and the checkpointer's refusals, read at scrape
    time."""

    def __init__(self, stats: WriterStats, checkpoints: CheckpointService | None = None) -> None:
        self._stats = stats
        self._checkpoints = checkpoints

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield CounterMetricFamily(
            "medops_audit_batches",
            "Audit batches committed by the group-commit writer.",
            value=stats.batches,
        )
        yield CounterMetricFamily(
            "medops_audit_batched_records",
            "Audit records committed in those batches.",
            value=stats.records,
        )
        yield CounterMetricFamily(
            "medops_audit_failed_batches",
            "Audit batches that could not be committed.",
            value=stats.failed_batches,
        )
        yield GaugeMetricFamily(
            "medops_audit_largest_batch",
            "Largest audit batch committed so far.",
            value=stats.largest_batch,
        )
        if self._checkpoints is not None:
            yield CounterMetricFamily(
                "medops_audit_checkpoints_refused",
                "Audit checkpoints refused because records in their range failed verification.",
                value=self._checkpoints.refusals,
            )


class HttpMetrics:
    """Request count and latency by method, route template and status."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "medops_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "medops_http_request_duration_seconds",
            "Time from receiving a request to sending its last byte, by route template.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
