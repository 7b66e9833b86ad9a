"""What serving a deployment costs, from measured process figures (``serving_usage`` rows):
CPU seconds, GB-hours of memory and GPU seconds per 1,000 predictions, priced at the
installation's prices (MEDOPS_PRICE_CPU_HOUR, _GB_HOUR, _GPU_HOUR); right-sizing hints (the
replicas and CPU request the measured peak needs at the latency SLO); and each served INT8
version against its parent.

Attribution follows Kubecost's idea of cost per workload, at the grain medops can measure: a
process's CPU and memory are split between deployments by their share of request time (the
recorder, ``serving/recorder.py``), and within a deployment between versions by their share of
the logged predictions' latency. A process's idle time is attributed to nobody, so these are
the costs of the work done; the hints size for the peak the usage rows show.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.registry.schemas import QuantizationReport
from medops.registry.tables import ModelVersion, RegisteredModel
from medops.serving.cost_schemas import (
    CostReport,
    DeploymentCost,
    Per1000,
    Prices,
    QuantizedComparison,
    RightSizing,
    VersionCost,
)
from medops.serving.tables import Prediction, ServingUsage
from medops.serving.usage import summarize

__all__ = ["TARGET_UTILISATION", "CostReport", "Prices", "cost_report", "deployment_cost"]

GB = 1e9
# Keep a replica's CPU at most this busy at the measured peak: queueing delay (and the latency
# tail) grows quickly beyond it (an M/M/1 queue's wait is rho/(1-rho) service times: 1.5 at
# 0.6, 4 at 0.8).
TARGET_UTILISATION = 0.6


def _per_1000(prices: Prices, predictions: int, cpu: float, gb_h: float, gpu: float) -> Per1000:
    scale = 1000 / predictions
    return Per1000(
        cpu_seconds=cpu * scale,
        gb_hours=gb_h * scale,
        gpu_seconds=gpu * scale,
        cost=prices.cost(cpu, gb_h, gpu) * scale,
    )


def rightsizing(
    session: Session,
    deployment: str,
    start: datetime,
    end: datetime,
    *,
    cpu_seconds: float,
    requests: int,
    memory_byte_seconds: float,
    p95_ms: float | None,
    cores_per_replica: float = 1.0,
) -> RightSizing | None:
    """Replicas and requests for the busiest minute of the span (every replica summed)."""
    per_minute = (
        select(func.sum(ServingUsage.requests).label("requests"))
        .where(
            ServingUsage.deployment == deployment,
            ServingUsage.minute >= start,
            ServingUsage.minute < end,
        )
        .group_by(ServingUsage.minute)
        .subquery()
    )
    peak = session.scalar(select(func.max(per_minute.c.requests)))
    minutes = session.scalar(select(func.count()).select_from(per_minute)) or 0
    if not peak or not requests:
        return None
    peak_rps = peak / 60
    per_request = cpu_seconds / requests
    cores = peak_rps * per_request
    replicas = max(1, math.ceil(cores / (cores_per_replica * TARGET_UTILISATION)))
    millicores = max(1, math.ceil(cores / replicas / TARGET_UTILISATION * 1000))
    memory = memory_byte_seconds / (minutes * 60) if minutes else None
    return RightSizing(
        peak_requests_per_second=peak_rps,
        cpu_seconds_per_request=per_request,
        peak_cores=cores,
        replicas=replicas,
        cpu_request_millicores=millicores,
        memory_request_mb=math.ceil(memory / 1e6) if memory else None,
        latency_p95_ms=p95_ms,
        note=(
            f"the busiest minute ({peak} requests) at {per_request * 1000:.2f} ms of CPU each, "
            f"replicas kept under {TARGET_UTILISATION:.0%} busy so queueing stays off the "
            "latency objective"
        ),
    )


def _versions(
    session: Session,
    deployment: str,
    start: datetime,
    end: datetime,
    prices: Prices,
    cpu: float,
    gb_h: float,
    gpu: float,
) -> tuple[list[VersionCost], list[QuantizedComparison]]:
    rows = session.execute(
        select(
            Prediction.model_name,
            Prediction.version,
            func.count(),
            func.sum(Prediction.latency_ms),
        )
        .where(
            Prediction.deployment == deployment,
            Prediction.occurred_at >= start,
            Prediction.occurred_at < end,
        )
        .group_by(Prediction.model_name, Prediction.version)
        .order_by(Prediction.version)
    ).all()
    time_total = sum(float(r[3] or 0.0) for r in rows) or 1.0
    versions: list[VersionCost] = []
    by_version: dict[tuple[str, int], VersionCost] = {}
    parents: dict[tuple[str, int], tuple[int, float | None]] = {}
    for model_name, version, count, latency_sum in rows:
        share = float(latency_sum or 0.0) / time_total
        parent = _parent(session, model_name, version)
        if parent is not None:
            parents[(model_name, version)] = parent
        cost = VersionCost(
            version=version,
            parent_version=parent[0] if parent else None,
            predictions=count,
            latency_mean_ms=float(latency_sum) / count if count and latency_sum else None,
            cpu_seconds=cpu * share,
            per_1000=_per_1000(prices, count, cpu * share, gb_h * share, gpu * share)
            if count
            else None,
        )
        versions.append(cost)
        by_version[(model_name, version)] = cost
    comparisons = []
    for (model_name, version), (parent_version, speedup) in parents.items():
        mine = by_version[(model_name, version)]
        theirs = by_version.get((model_name, parent_version))
        mine_cost = mine.per_1000.cost if mine.per_1000 else None
        their_cost = theirs.per_1000.cost if theirs and theirs.per_1000 else None
        comparisons.append(
            QuantizedComparison(
                model=model_name,
                version=version,
                parent_version=parent_version,
                cost_per_1000=mine_cost,
                parent_cost_per_1000=their_cost,
                cost_change=mine_cost / their_cost - 1 if mine_cost and their_cost else None,
                latency_mean_ms=mine.latency_mean_ms,
                parent_latency_mean_ms=theirs.latency_mean_ms if theirs else None,
                offline_speedup=speedup,
            )
        )
    return versions, comparisons


def _parent(session: Session, model_name: str, version: int) -> tuple[int, float | None] | None:
    """The parent version of an INT8 version, and the speedup the registry measured."""
    row = session.execute(
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.name == model_name, ModelVersion.version == version)
    ).scalar_one_or_none()
    if row is None or row.parent_id is None:
        return None
    parent = session.get(ModelVersion, row.parent_id)
    if parent is None:
        return None
    lineage = json.loads(row.lineage)
    speedup = None
    if isinstance(lineage, dict) and "quantization" in lineage:
        speedup = QuantizationReport.model_validate(lineage["quantization"]).speedup
    return parent.version, speedup


def deployment_cost(
    session: Session, deployment: str, start: datetime, end: datetime, prices: Prices
) -> DeploymentCost:
    """``deployment``'s cost over ``[start, end)``."""
    usage = summarize(session, deployment, start, end)
    gb_h = usage.memory_byte_seconds / GB / 3600
    cpu, gpu = usage.cpu_seconds, usage.gpu_seconds
    versions, quantized = _versions(session, deployment, start, end, prices, cpu, gb_h, gpu)
    return DeploymentCost(
        deployment=deployment,
        requests=usage.requests,
        predictions=usage.records,
        cpu_seconds=cpu,
        gb_hours=gb_h,
        gpu_seconds=gpu,
        cost=prices.cost(cpu, gb_h, gpu),
        per_1000=_per_1000(prices, usage.records, cpu, gb_h, gpu) if usage.records else None,
        rightsizing=rightsizing(
            session,
            deployment,
            start,
            end,
            cpu_seconds=cpu,
            requests=usage.requests,
            memory_byte_seconds=usage.memory_byte_seconds,
            p95_ms=usage.quantile_ms(0.95),
        ),
        versions=versions,
        quantized=quantized,
    )


def cost_report(
    session: Session,
    start: datetime,
    end: datetime,
    prices: Prices,
    deployments: list[str],
) -> CostReport:
    """The cost of each of ``deployments`` over ``[start, end)``."""
    return CostReport(
        start=start,
        end=end,
        prices=prices,
        deployments=[deployment_cost(session, name, start, end, prices) for name in deployments],
    )
