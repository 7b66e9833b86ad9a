"""The shapes of the cost report (``cost.py`` computes it): prices, resources per 1,000
predictions, right-sizing hints, versions' shares and INT8 versions against their parents."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from medops.config import Settings


class Prices(BaseModel):
    """Prices per CPU-hour, GB-hour of memory and GPU-hour, in ``currency``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_hour: float = 0.0
    gb_hour: float = 0.0
    gpu_hour: float = 0.0
    currency: str = "EUR"

    @classmethod
    def of(cls, settings: Settings) -> Prices:
        return cls(
            cpu_hour=settings.price_cpu_hour,
            gb_hour=settings.price_gb_hour,
            gpu_hour=settings.price_gpu_hour,
            currency=settings.price_currency,
        )

    def cost(self, cpu_seconds: float, gb_hours: float, gpu_seconds: float) -> float:
        return (
            cpu_seconds / 3600 * self.cpu_hour
            + gb_hours * self.gb_hour
            + gpu_seconds / 3600 * self.gpu_hour
        )


class Per1000(BaseModel):
    """Resources and cost per 1,000 predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: float
    gb_hours: float
    gpu_seconds: float
    cost: float


class RightSizing(BaseModel):
    """What the measured peak needs to meet the latency objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    peak_requests_per_second: float
    cpu_seconds_per_request: float
    peak_cores: float  # CPU the peak keeps busy
    replicas: int
    cpu_request_millicores: int  # per replica, at TARGET_UTILISATION
    memory_request_mb: int | None  # per replica: the attributed memory while serving
    latency_p95_ms: float | None
    note: str


class VersionCost(BaseModel):
    """One version's share of a deployment's work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    parent_version: int | None  # the version an INT8 quantization was derived from
    predictions: int
    latency_mean_ms: float | None
    cpu_seconds: float
    per_1000: Per1000 | None


class QuantizedComparison(BaseModel):
    """An INT8 version against its parent: measured in serving where both served, and the
    registry's offline measurement (speedup per row) always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: int
    parent_version: int
    cost_per_1000: float | None
    parent_cost_per_1000: float | None
    cost_change: float | None  # INT8 / parent - 1 (negative: cheaper)
    latency_mean_ms: float | None
    parent_latency_mean_ms: float | None
    offline_speedup: float | None


class DeploymentCost(BaseModel):
    """A deployment's resources and cost over the span."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str
    requests: int
    predictions: int
    cpu_seconds: float
    gb_hours: float
    gpu_seconds: float
    cost: float
    per_1000: Per1000 | None
    rightsizing: RightSizing | None
    versions: list[VersionCost]
    quantized: list[QuantizedComparison]


class CostReport(BaseModel):
    """Every deployment's cost over ``[start, end)`` at ``prices``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    end: datetime
    prices: Prices
    deployments: list[DeploymentCost]
