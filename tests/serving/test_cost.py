"""Cost per 1,000 predictions from measured usage at the configured prices, right-sizing hints
for the measured peak, and an INT8 version against its parent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from medops.audit.service import exempt_from_audit_guard
from medops.errors import InvalidInputError, NotFoundError
from medops.services import Services
from medops.serving.cost import TARGET_UTILISATION, Prices
from medops.serving.recorder import MinuteUsage, write
from medops.serving.tables import Prediction
from tests.helpers import model_data
from tests.helpers.registry import DEPLOYMENT, NAME, register

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PRICES = Prices(cpu_hour=0.036, gb_hour=0.0036, gpu_hour=3.6, currency="EUR")


def quantize(http: httpx.Client, headers: dict[str, str], version: int) -> httpx.Response:
    """Ask for an INT8 version of ``version``, measured on the evaluation data."""
    return http.post(
        f"/api/v1/models/{NAME}/versions/{version}/quantize",
        content=model_data.eval_csv(),
        params={"label": model_data.LABEL, "dataset": "eval.csv"},
        headers=headers | {"content-type": "text/csv"},
    )


def usage(services: Services, minutes: list[tuple[int, int, float, float]]) -> None:
    """One row per minute ending now: (requests, records, CPU seconds, GB held that minute)."""
    batch = {}
    for i, (requests, records, cpu, gb) in enumerate(minutes):
        row = MinuteUsage(requests=requests, records=records, cpu_seconds=cpu)
        row.latency[3] = requests
        row.memory_byte_seconds = gb * 1e9 * 60
        batch[(DEPLOYMENT, NOW - timedelta(minutes=i))] = row
    write(services.db, "r1", batch)


def predictions(services: Services, version: int, count: int, latency_ms: float) -> None:
    """Logged predictions of ``version`` (the log the per-version split reads)."""
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        for _ in range(count):
            session.add(
                Prediction(
                    id=uuid.uuid4().hex,
                    occurred_at=NOW,
                    deployment=DEPLOYMENT,
                    model_name=NAME,
                    version=version,
                    artifact_digest="0" * 64,
                    arm="primary",
                    shadow=False,
                    cached=False,
                    requester="test",
                    inputs="{}",
                    label="1",
                    probabilities="{}",
                    latency_ms=latency_ms,
                )
            )


@pytest.mark.usefixtures("deployed")
def test_cost_per_1000_predictions_at_the_configured_prices(services: Services) -> None:
    """Two minutes, 3,000 predictions, 6 CPU seconds, 2 GB held: 2 CPU s, 0.00111 GB-h and
    (at 0.036/CPU-h, 0.0036/GB-h) 0.00002 + 0.000004 per 1,000."""
    services.slo.prices = PRICES
    usage(services, [(1000, 2000, 4.0, 2.0), (500, 1000, 2.0, 2.0)])
    report = services.slo.cost(deployment=DEPLOYMENT, now=NOW)
    [cost] = report.deployments
    assert (cost.requests, cost.predictions) == (1500, 3000)
    assert cost.cpu_seconds == pytest.approx(6.0)
    assert cost.gb_hours == pytest.approx(2 * 2 / 60)
    assert cost.per_1000 is not None
    assert cost.per_1000.cpu_seconds == pytest.approx(2.0)
    assert cost.per_1000.gb_hours == pytest.approx(4 / 60 / 3)
    assert cost.per_1000.cost == pytest.approx(2.0 / 3600 * 0.036 + 4 / 60 / 3 * 0.0036)
    assert cost.cost == pytest.approx(6.0 / 3600 * 0.036 + 4 / 60 * 0.0036)
    assert report.prices.currency == "EUR"


@pytest.mark.usefixtures("deployed")
def test_rightsizing_sizes_for_the_busiest_minute(services: Services) -> None:
    """1,200 requests in the busiest minute (20/s) at 40 ms of CPU each keep 0.8 cores busy:
    two replicas of one core under 60% busy, each asking 667 millicores."""
    usage(services, [(1200, 1200, 48.0, 1.0), (300, 300, 12.0, 1.0)])
    [cost] = services.slo.cost(deployment=DEPLOYMENT, now=NOW).deployments
    hint = cost.rightsizing
    assert hint is not None
    assert hint.peak_requests_per_second == pytest.approx(20)
    assert hint.cpu_seconds_per_request == pytest.approx(0.04)
    assert hint.peak_cores == pytest.approx(0.8)
    assert hint.replicas == 2
    assert hint.cpu_request_millicores == round(0.4 / TARGET_UTILISATION * 1000 + 0.5)
    assert hint.memory_request_mb == 1000


@pytest.mark.usefixtures("deployed")
def test_a_deployment_without_traffic_costs_nothing(services: Services) -> None:
    """No usage: zero cost, no per-1,000 figure, no hint; every-deployment report is empty."""
    [cost] = services.slo.cost(deployment=DEPLOYMENT, now=NOW).deployments
    assert (cost.cost, cost.per_1000, cost.rightsizing) == (0.0, None, None)
    assert services.slo.cost(now=NOW).deployments == []


def test_bad_cost_requests_are_refused(services: Services) -> None:
    """An unknown deployment is NotFound; a span outside 1..366 days names ``days``."""
    with pytest.raises(NotFoundError):
        services.slo.cost(deployment="nowhere")
    with pytest.raises(InvalidInputError) as refused:
        services.slo.cost(days=0)
    assert [e.field for e in refused.value.errors] == ["days"]


@pytest.mark.usefixtures("model")
def test_an_int8_version_is_compared_with_its_parent(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """An MLP and its INT8 quantization both served (canary): the INT8 version's share of the
    CPU follows its faster predictions, so it costs less per 1,000; the registry's offline
    speedup is shown beside it."""
    pkg = model_data.mlp_package()
    created = register(http, people["ds"], artifact=pkg.onnx, meta=model_data.metadata(pkg))
    assert created.status_code == 201, created.text
    parent = created.json()["version"]
    made = quantize(http, people["mle"], parent)
    assert made.status_code == 201, made.text
    child = made.json()["version"]
    services.slo.prices = PRICES
    usage(services, [(2000, 2000, 30.0, 1.0)])
    predictions(services, parent, 1000, 6.0)
    predictions(services, child, 1000, 4.0)
    [cost] = services.slo.cost(now=NOW).deployments  # every deployment that served
    served = [(v.version, v.parent_version) for v in cost.versions]
    assert served == [(parent, None), (child, parent)]
    [comparison] = cost.quantized
    assert (comparison.version, comparison.parent_version) == (child, parent)
    assert comparison.cost_change == pytest.approx(4 / 6 - 1)
    assert comparison.latency_mean_ms == pytest.approx(4.0)
    assert comparison.parent_latency_mean_ms == pytest.approx(6.0)
    assert comparison.offline_speedup is not None
    assert comparison.offline_speedup > 0
