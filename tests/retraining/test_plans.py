"""Change-control plans: signed by a clinician and an ML engineer, and the candidate report
that lets a within-plan version pass the production gates with the plan's signatures."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from medops.audit.service import exempt_from_audit_guard
from medops.retraining.plan_tables import ChangeControlPlan
from medops.services import Services
from tests.helpers.http import PASSWORD
from tests.helpers.plans import active_plan, candidate, eval_file, evaluate, spec
from tests.helpers.registry import NAME

pytestmark = pytest.mark.usefixtures("deployed")


def _sign(http: httpx.Client, headers: dict[str, str], number: int) -> httpx.Response:
    return http.post(
        f"/api/v1/models/{NAME}/plans/{number}/signatures",
        json={"password": PASSWORD},
        headers=headers,
    )


def test_plan_needs_a_clinician_and_an_ml_engineer(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A plan stays pending with one signature, refuses a data scientist's and a second one
    by the same person, and is active (features taken from the champion) once both roles
    have signed; a newer plan supersedes it."""
    created = http.post(f"/api/v1/models/{NAME}/plans", json=spec(tmp_path), headers=people["mle"])
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["status"] == "pending"
    assert plan["champion"] == 1
    assert "bmi" in plan["spec"]["fixed"]["features"]
    assert _sign(http, people["ds"], 1).status_code == 403  # no models:approve
    first = _sign(http, people["clin"], 1)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "pending"
    assert first.json()["needs"] == ["a signature by a ml_engineer"]
    assert _sign(http, people["clin"], 1).status_code == 409
    second = _sign(http, people["mle2"], 1)
    assert second.json()["status"] == "active"
    assert all(s["valid"] for s in second.json()["signatures"])
    newer = active_plan(http, people, spec(tmp_path, description="second version"))
    assert newer["number"] == 2
    plans = http.get(f"/api/v1/models/{NAME}/plans", headers=people["aud"]).json()
    assert [(p["number"], p["status"]) for p in plans] == [(2, "active"), (1, "superseded")]


def test_a_plan_edited_in_the_database_no_longer_verifies(
    http: httpx.Client, people: dict[str, dict[str, str]], services: Services, tmp_path: Path
) -> None:
    """Changing a signed plan's floors behind the API invalidates its signatures."""
    active_plan(http, people, spec(tmp_path))
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # the tampering this test stands for
        row = session.scalars(select(ChangeControlPlan)).one()
        row.spec = row.spec.replace('"auroc":0.6', '"auroc":0.1')
    shown = http.get(f"/api/v1/models/{NAME}/plans/1", headers=people["aud"]).json()
    assert not any(s["valid"] for s in shown["signatures"])
    assert "altered" in shown["signatures"][0]["invalid_reasons"][0]


def test_within_plan_candidate_passes_the_gates_without_new_signatures(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A retrained version inside every rule is within the plan, with DeLong, McNemar and
    bootstrap comparisons against the champion on both sets; its production gates then pass
    on the plan's signatures, and the report is kept."""
    active_plan(http, people, spec(tmp_path))
    version = candidate(http, people, 2.0)
    gates = http.get(
        f"/api/v1/models/{NAME}/versions/{version}/gates", headers=people["mle"]
    ).json()
    assert not gates["passed"]  # no approvals yet, no report
    answer = evaluate(http, people["ds"], version, eval_file(tmp_path))
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert report["within_plan"], report["reasons"]
    assert report["champion"] == 1
    assert [e["name"] for e in report["evaluations"]] == ["fixed", "recent"]
    tests = {c["metric"]: c["test"] for c in report["evaluations"][0]["comparisons"]}
    assert tests == {
        "auroc": "delong",
        "accuracy": "mcnemar",
        "brier": "bootstrap",
        "sensitivity": "bootstrap",
        "specificity": "bootstrap",
    }
    assert {g["group"] for g in report["evaluations"][0]["subgroups"]} == {"1.0", "2.0"}
    gates = http.get(
        f"/api/v1/models/{NAME}/versions/{version}/gates", headers=people["mle"]
    ).json()
    assert gates["passed"], gates["unmet"]
    assert gates["checks"]["approvals.plan"] is True
    listed = http.get(f"/api/v1/models/{NAME}/candidate-reports", headers=people["clin"])
    assert [r["id"] for r in listed.json()] == [report["id"]]


def test_outside_plan_candidate_lists_every_reason_and_keeps_the_gates_shut(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A candidate with C outside the allowed range, another family, and no recent data is
    outside the plan, each rule named; its gates still need approvals."""
    active_plan(http, people, spec(tmp_path))
    version = candidate(http, people, 50.0, model_family="gradient_boosting")
    report = evaluate(http, people["ds"], version, None).json()
    assert not report["within_plan"]
    joined = " | ".join(report["reasons"])
    assert "logisticregression__C=50.0 is not in [0.05, 5]" in joined
    assert "'gradient_boosting' is not among the plan's families" in joined
    assert "no newest labelled data" in joined
    gates = http.get(
        f"/api/v1/models/{NAME}/versions/{version}/gates", headers=people["mle"]
    ).json()
    assert not gates["passed"]
    assert "approvals.plan" not in gates["checks"]


def test_subgroup_limit_violation_puts_a_candidate_outside_the_plan(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A plan whose sex AUROC gap limit is tighter than the candidate's gap rejects it,
    naming the group and the gap."""
    tight = spec(
        tmp_path, subgroup_limits=[{"attribute": "sex", "metric": "auroc", "max_gap": 0.001}]
    )
    active_plan(http, people, tight)
    version = candidate(http, people, 2.0)
    report = evaluate(http, people["ds"], version, eval_file(tmp_path)).json()
    assert not report["within_plan"]
    assert any("auroc of sex=" in r and "beyond the limit 0.001" in r for r in report["reasons"])


def test_evaluation_refuses_a_fixed_set_that_changed(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """The plan's pinned evaluation file, altered after signing, is an integrity error."""
    active_plan(http, people, spec(tmp_path))
    version = candidate(http, people, 2.0)
    path = tmp_path / "evaluation.csv"
    path.write_bytes(path.read_bytes() + b"\n")
    answer = evaluate(http, people["ds"], version, None)
    assert answer.status_code >= 400
    assert "sha256" in answer.text


def test_no_plan_no_candidate_report(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """Without an active plan a candidate takes the full approval path (409)."""
    version = candidate(http, people, 2.0)
    answer = evaluate(http, people["ds"], version, None)
    assert answer.status_code == 409
    assert "no active change-control plan" in answer.text
