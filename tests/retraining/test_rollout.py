"""The rollout driver: a within-plan candidate goes through shadow and canary and is promoted
citing the plan; a monitoring verdict or a canary AUROC below the protocol's floor aborts and
rolls back; an outside-plan candidate stops with its reasons."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from medops.monitoring.tables import MonitoringResult
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.plans import active_plan, candidate, eval_file, evaluate, spec
from tests.helpers.registry import DEPLOYMENT, NAME, predict, random_records

pytestmark = pytest.mark.usefixtures("deployed")


def _records(n: int, seed: int) -> dict[str, Any]:
    rows = random_records(n, seed=seed)
    return {"records": [{"features": r, "patient_ref": f"s{seed}-{i}"} for i, r in enumerate(rows)]}


def _tick(http: httpx.Client, people: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    answer = http.post("/api/v1/rollouts/tick", headers=people["mle"])
    assert answer.status_code == 200, answer.text
    out: list[dict[str, Any]] = answer.json()
    return out


def _deployment(http: httpx.Client, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = http.get(
        f"/api/v1/deployments/{DEPLOYMENT}", headers=people["mle"]
    ).json()
    return out


def _within_plan_rollout(
    http: httpx.Client, people: dict[str, dict[str, str]], folder: Path, **changes: Any
) -> tuple[int, dict[str, Any]]:
    """Plan, candidate (C=2), within-plan report, rollout started; in shadow."""
    active_plan(http, people, spec(folder, **changes))
    version = candidate(http, people, 2.0)
    report = evaluate(http, people["ds"], version, eval_file(folder)).json()
    assert report["within_plan"], report["reasons"]
    started = http.post(
        f"/api/v1/models/{NAME}/rollouts",
        json={"version": version, "deployment": DEPLOYMENT},
        headers=people["ds"],
    )
    assert started.status_code == 201, started.text
    assert started.json()["state"] == "shadow"
    assert _deployment(http, people)["shadow_version"] == version
    return version, started.json()


def _to_canary(http: httpx.Client, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Enough shadow predictions, then a tick: the first canary step."""
    assert _tick(http, people)[0]["state"] == "shadow"  # no predictions yet: unchanged
    assert predict(http, people["clin"], _records(6, seed=1)).status_code == 200
    for _ in range(200):  # shadow rows are logged after the answer, off the hot path
        moved = _tick(http, people)[0]
        if moved["state"] != "shadow":
            break
        time.sleep(0.02)
    assert moved["state"] == "canary", moved
    return moved


def test_within_plan_candidate_is_promoted_through_shadow_and_canary(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """Shadow for 4 predictions, canary at 50% for 4, then production moves to the candidate
    with evidence naming the plan and its two signatures; no approval was made on the
    version, and the audit trail verifies."""
    version, _started = _within_plan_rollout(http, people, tmp_path)
    moved = _to_canary(http, people)
    state = _deployment(http, people)
    assert (state["shadow_version"], state["canary_version"], state["canary_percent"]) == (
        None,
        version,
        50,
    )
    served = predict(http, people["clin"], _records(40, seed=2)).json()["predictions"]
    assert sum(p["arm"] == "canary" for p in served) >= 4
    done = _tick(http, people)[0]
    assert done["state"] == "promoted", done
    assert [e["state"] for e in done["events"]] == ["shadow", "canary", "promoted"]
    assert done["id"] == moved["id"]
    state = _deployment(http, people)
    assert state["canary_version"] is None
    model = http.get(f"/api/v1/models/{NAME}", headers=people["mle"]).json()
    assert model["aliases"]["production"] == version
    history = http.get(f"/api/v1/models/{NAME}/history", headers=people["mle"]).json()
    evidence = (
        history[-1]["evidence"] if history[-1]["to_version"] == version else history[0]["evidence"]
    )
    assert evidence["plan"]["plan"] == 1
    assert sorted(s["role"] for s in evidence["plan"]["signatures"]) == ["clinician", "ml_engineer"]
    approvals = http.get(
        f"/api/v1/models/{NAME}/versions/{version}/approvals", headers=people["mle"]
    ).json()
    assert approvals == []
    verified = http.get("/api/v1/audit/verify", headers=people["aud"])
    assert verified.json()["ok"], verified.text
    assert _tick(http, people) == []  # nothing left in progress


def test_a_monitoring_verdict_aborts_the_canary(
    http: httpx.Client,
    people: dict[str, dict[str, str]],
    services: Services,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    """A window of the canary version judged concept drift after the canary began rolls
    the canary back; production stays on the champion."""
    version, _ = _within_plan_rollout(http, people, tmp_path)
    _to_canary(http, people)
    now = clock.now()
    with services.db.transaction() as session:
        # What a monitoring run stores for the canary's window (its writer is tested in
        # tests/monitoring); the driver reads only the verdict.
        from medops.audit.service import exempt_from_audit_guard

        exempt_from_audit_guard(session)
        session.add(
            MonitoringResult(
                deployment=DEPLOYMENT, model_name=NAME, version=version, window_kind="hour",
                sequence=1, window_start=now, window_end=now + timedelta(hours=1), rows=50,
                labelled=50, status="complete", verdict="concept-drift", drifted=False,
                alerts="[]", result="{}", computed_at=now + timedelta(hours=1),
            )
        )  # fmt: skip
    aborted = _tick(http, people)[0]
    assert aborted["state"] == "aborted"
    assert "concept-drift" in aborted["reasons"][0]
    assert _deployment(http, people)["canary_version"] is None
    model = http.get(f"/api/v1/models/{NAME}", headers=people["mle"]).json()
    assert model["aliases"]["production"] == 1


def test_a_canary_whose_auroc_falls_below_the_floor_is_rolled_back(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """Labelled canary predictions whose outcomes contradict the scores (AUROC 0) abort the
    rollout once the protocol's labelled minimum is reached."""
    rollout = {
        "shadow_predictions": 4,
        "canary_steps": [{"percent": 50, "minutes": 0, "min_predictions": 1000}],
        "canary_min_auroc": 0.6,
        "canary_min_labelled": 10,
    }
    _within_plan_rollout(http, people, tmp_path, rollout=rollout)
    _to_canary(http, people)
    served = predict(http, people["clin"], _records(60, seed=3)).json()["predictions"]
    canary = [p for p in served if p["arm"] == "canary"]
    assert len(canary) >= 10
    for p in canary:
        other = next(k for k in p["probabilities"] if str(k) != str(p["label"]))
        label = type(p["label"])(json.loads(other) if isinstance(p["label"], int) else other)
        recorded = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": label}, headers=people["clin"]
        )
        assert recorded.status_code == 201, recorded.text
    aborted = _tick(http, people)[0]
    assert aborted["state"] == "aborted", aborted
    assert "below the protocol's floor 0.6" in aborted["reasons"][0]
    assert _deployment(http, people)["canary_version"] is None


def test_outside_plan_candidate_stops_and_waits_for_approval(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A candidate outside the plan is recorded as stopped, with the reasons, and nothing
    on the deployment changes."""
    active_plan(http, people, spec(tmp_path))
    version = candidate(http, people, 50.0)
    assert not evaluate(http, people["ds"], version, eval_file(tmp_path)).json()["within_plan"]
    started = http.post(
        f"/api/v1/models/{NAME}/rollouts",
        json={"version": version, "deployment": DEPLOYMENT},
        headers=people["ds"],
    )
    assert started.status_code == 201, started.text
    out = started.json()
    assert out["state"] == "stopped"
    assert any("logisticregression__C" in r for r in out["reasons"])
    assert "full approval path" in out["events"][0]["detail"]
    state = _deployment(http, people)
    assert (state["shadow_version"], state["canary_version"]) == (None, None)
    assert _tick(http, people) == []
