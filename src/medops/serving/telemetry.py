"""Prometheus metrics of the prediction path, registered in the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

STAGE_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
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
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
STAGES = ("validate", "queue", "infer", "log")


class ServingMetrics:
    """Prediction requests, latency, stages, batches, cache, sheds, errors and rollbacks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "medops_prediction_requests",
            "Predict requests answered, by deployment, primary version served and HTTP status "
            "(version is empty when the request was refused before routing).",
            ("deployment", "version", "status"),
            registry=registry,
        )
        self.records = Counter(
            "medops_prediction_records",
            "Records scored, by deployment, arm (primary, canary, shadow) and version.",
            ("deployment", "arm", "version"),
            registry=registry,
        )
        self.latency = Histogram(
            "medops_prediction_latency_seconds",
            "Time from routing a predict request to its answer being ready, by deployment.",
            ("deployment",),
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.stages = Histogram(
            "medops_prediction_stage_seconds",
            "Time per stage of a predict request: validate, queue (waiting for a batch), "
            "infer (the ONNX Runtime call), log (durable prediction and audit records).",
            ("deployment", "stage"),
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "medops_prediction_batch_size",
            "Records per ONNX Runtime call made by the micro-batcher, by model and version.",
            ("model", "version"),
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "medops_prediction_cache_hits",
            "Records answered from a deployment's prediction cache.",
            ("deployment",),
            registry=registry,
        )
        self.cache_misses = Counter(
            "medops_prediction_cache_misses",
            "Records looked up in a deployment's prediction cache and not found.",
            ("deployment",),
            registry=registry,
        )
        self.shed = Counter(
            "medops_prediction_shed",
            "Predict requests shed with 503 because they would have missed their deadline.",
            ("deployment",),
            registry=registry,
        )
        self.errors = Counter(
            "medops_prediction_errors",
            "Predict requests that failed, by deployment and kind (invalid-input, "
            "overloaded, unavailable, or the problem code).",
            ("deployment", "kind"),
            registry=registry,
        )
        self.rollbacks = Counter(
            "medops_deployment_auto_rollbacks",
            "Canaries ended automatically for crossing their error-rate or latency limits.",
            ("deployment",),
            registry=registry,
        )
