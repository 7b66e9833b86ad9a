"""Stored monitoring windows for pages that chart them: a deployment whose primary version
and canary served several days, with outcomes, monitored by day and by count of 50."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.testing import FixedClock
from tests.helpers.registry import DEPLOYMENT, approved, predict, random_records


def serve_days_with_canary(
    http: httpx.Client, people: dict[str, dict[str, str]], clock: FixedClock, days: int = 3
) -> int:
    """v2 as a 50% canary of the deployed v1; ``days`` days of 120 predictions, the first
    half of each day's given outcomes; then day and count:50 monitoring runs. Returns the
    canary's version."""
    mle, clin = people["mle"], people["clin"]
    canary = approved(http, people, c=2.0)
    started = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/canary",
        json={"version": canary, "percent": 50, "reason": "canary for monitoring pages",
              "limits": {"max_p99_ms": 60000, "max_error_rate": 1.0}},
        headers=mle,
    )  # fmt: skip
    assert started.status_code == 200, started.text
    for day in range(days):
        records = random_records(120, seed=10 + day)
        body = {"records": [{"features": r, "patient_ref": f"p-{day}-{i}"}
                            for i, r in enumerate(records)]}  # fmt: skip
        answer = predict(http, clin, body)
        assert answer.status_code == 200, answer.text
        for p in answer.json()["predictions"][:60]:
            recorded = http.post(
                f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]},
                headers=clin,
            )  # fmt: skip
            assert recorded.status_code == 201, recorded.text
        clock.advance(timedelta(days=1))
    for window in ("day", "count:50"):
        run = http.post("/api/v1/monitoring/run", json={"window": window}, headers=mle)
        assert run.status_code == 200, run.text
        assert run.json()["computed"], run.text
    return canary


def serve_with_outcomes(
    http: httpx.Client, clin: dict[str, str], clock: FixedClock, n: int, then: timedelta
) -> None:
    """``n`` predictions, each given its outcome (the predicted label), then ``then`` passes
    on the clock (the end of a day, or past the outcome grace)."""
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"}
                        for i, r in enumerate(random_records(n, seed=3))]}  # fmt: skip
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    for p in answer.json()["predictions"]:
        recorded = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]}, headers=clin
        )
        assert recorded.status_code == 201, recorded.text
    clock.advance(then)
