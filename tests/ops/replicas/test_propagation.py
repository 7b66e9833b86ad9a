"""How fast an alias change made on one replica reaches another (the figure of
docs/operations.md, "Scale: several replicas"): two replicas on one PostgreSQL database with
the default MEDOPS_SERVING_REFRESH_SECONDS; the production alias moved on A, predictions sent
to B until B serves the new version, each change at a random point of B's refresh interval.
The delays are printed (a measurement, not a limit); the
test asserts the outcome only: B serves every change."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import httpx
import pytest

from medops.config import Settings
from medops.services import Services
from tests.helpers.cli_runner import clean_env
from tests.helpers.haproxy import login, start_replica
from tests.helpers.registry import DEPLOYMENT, NAME, approved, random_records

pytestmark = [pytest.mark.replicas]
TRIES = 5


def served_version(http: httpx.Client, features: dict[str, float]) -> int:
    answer = http.post(f"/api/v1/deployments/{DEPLOYMENT}/predict",
                       json={"features": features}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return int(answer.json()["predictions"][0]["version"])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_alias_change_on_one_replica_reaches_another(
    settings: Settings,
    services: Services,
    deployed: dict[str, dict[str, str]],
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    v2 = approved(http, deployed, c=2.0)
    env = clean_env(MEDOPS_HOME=str(settings.home),
                    MEDOPS_DATABASE_URL=settings.resolved_database_url)  # fmt: skip
    clinician = login(settings, "user-clinician")
    engineer = login(settings, "user-ml-engineer")
    a, b = (start_replica(env, tmp_path / f"replica-{n}.log") for n in range(2))
    features = random_records(1)[0]
    delays: list[float] = []
    try:
        with (
            httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {engineer}"}) as on_a,
            httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {clinician}"}) as on_b,
        ):
            offsets = random.Random(0)
            for n in range(TRIES):
                version = v2 if n % 2 == 0 else 1
                # B has just refreshed (it served the last change): move at a random point
                # of its next interval, or every try would wait a whole interval.
                time.sleep(offsets.uniform(0, settings.serving_refresh_seconds))
                moved = on_a.put(
                    f"/api/v1/models/{NAME}/aliases/production",
                    json={"version": version, "reason": f"try {n}"}, timeout=30,
                )  # fmt: skip
                assert moved.status_code == 200, moved.text
                acknowledged = time.monotonic()
                for _ in range(2000):  # 50 ms apart: far beyond the refresh interval
                    if served_version(on_b, features) == version:
                        break
                    time.sleep(0.05)
                else:
                    pytest.fail(f"replica B never served version {version}")
                delays.append(time.monotonic() - acknowledged)
    finally:
        for replica in (a, b):
            replica.proc.terminate()
        for replica in (a, b):
            replica.proc.wait(timeout=30)
    print(  # noqa: T201 - the measurement this test exists for
        f"\nalias change on A -> served by B: median {statistics.median(delays):.2f} s, "
        f"max {max(delays):.2f} s over {len(delays)} tries "
        f"(MEDOPS_SERVING_REFRESH_SECONDS={settings.serving_refresh_seconds})"
    )
