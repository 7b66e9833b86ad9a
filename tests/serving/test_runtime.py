"""Pieces of the serving runtime that need no server: providers, cache, canary buckets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from medops.config import Settings
from medops.services import build_services
from medops.serving.predict import canary_bucket
from medops.serving.runtime import PredictionCache, ServingRuntime


def test_providers_keep_the_configured_order_and_skip_missing_ones(tmp_path: Path) -> None:
    """A GPU provider this ONNX Runtime lacks is skipped; the CPU provider remains."""
    settings = Settings(
        home=tmp_path,
        onnx_providers="TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
    )
    services = build_services(settings)
    try:
        runtime = ServingRuntime(services.deployments, services.registry, settings)
        available = set(ort.get_available_providers())
        expected = [p for p in settings.onnx_providers if p in available]
        assert runtime.providers() == expected
        assert runtime.providers()[-1] == "CPUExecutionProvider"
    finally:
        services.close()


def test_cache_is_bounded_and_keyed_by_artifact() -> None:
    """The LRU keeps at most its capacity, and a key of one artifact never answers another."""
    cache = PredictionCache(capacity=2)
    result = (1, np.array([0.2, 0.8]))
    cache.put(("digest-a", "{}"), result)
    assert cache.get(("digest-b", "{}")) is None
    cache.put(("digest-a", "x"), result)
    cache.get(("digest-a", "{}"))  # used: the other one is now the oldest
    cache.put(("digest-a", "y"), result)
    assert len(cache) == 2
    assert cache.get(("digest-a", "x")) is None
    assert cache.get(("digest-a", "{}")) is result


def test_canary_buckets_are_sticky_and_spread() -> None:
    """The same patient always falls in the same bucket; 10,000 patients spread evenly."""
    assert canary_bucket("d", "pt-1") == canary_bucket("d", "pt-1")
    assert canary_bucket("d", "pt-1") != canary_bucket("other", "pt-1")
    buckets = np.array([canary_bucket("d", f"pt-{i}") for i in range(10_000)])
    assert buckets.min() >= 0
    assert buckets.max() < 100
    assert abs(float((buckets < 30).mean()) - 0.30) < 0.02
