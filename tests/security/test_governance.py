"""Attack stories on the governed lifecycle: no single person, by any path, puts a version in
front of patients that has not passed the gates with its signatures (issue 14, finding 1).

The found attack: an ML engineer removed ``icu`` from the model's protected aliases, registered
a version trained on inverted labels, moved ``icu`` to it, and the clinician's next prediction
on the deployment following ``model@icu`` came from that version."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from medops.audit.service import exempt_from_audit_guard
from medops.registry.schemas import GateResult, ModelOut, PolicyChangeOut, PromotionPolicy
from medops.registry.tables import RegisteredModel
from medops.services import Services
from medops.serving.schemas import DeploymentOut
from medops.testing import capture_audit
from tests.helpers import model_data
from tests.helpers.http import PASSWORD, problem
from tests.helpers.registry import (
    NAME,
    approved,
    deploy,
    predict,
    promote,
    random_records,
    register,
    validate,
)

WARD = "icu-ward"
ICU_POLICY = model_data.POLICY | {"protected_aliases": ["production", "icu"]}
WITHOUT_ICU = model_data.POLICY | {"protected_aliases": ["production"]}
CHANGES = f"/api/v1/models/{NAME}/policy-changes"


@pytest.fixture
def icu(http: httpx.Client, people: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """diabetes-risk with ``icu`` protected; v1 approved and in ``icu``; the deployment
    ``icu-ward`` follows ``diabetes-risk@icu``."""
    created = http.post(
        "/api/v1/models", json={"name": NAME, "policy": ICU_POLICY}, headers=people["mle"]
    )
    assert created.status_code == 201, created.text
    assert approved(http, people) == 1
    assert promote(http, people["mle"], 1, alias="icu").status_code == 200
    answer = deploy(http, people["mle"], name=WARD, model=f"{NAME}@icu")
    assert answer.status_code == 201, answer.text
    return people


def _inverted(http: httpx.Client, headers: dict[str, str]) -> int:
    """Register and validate the version trained on inverted labels (by ``headers``)."""
    pkg = model_data.inverted_package()
    created = register(http, headers, artifact=pkg.onnx, meta=model_data.metadata(pkg))
    assert created.status_code == 201, created.text
    number = int(created.json()["version"])
    assert validate(http, headers, number).status_code == 201
    return number


def _served_versions(http: httpx.Client, headers: dict[str, str], name: str = WARD) -> set[int]:
    records = [{"features": r} for r in random_records(20, seed=7)]
    answer = predict(http, headers, {"records": records}, name=name)
    assert answer.status_code == 200, answer.text
    return {p["version"] for p in answer.json()["predictions"]}


def _policy(services: Services) -> PromotionPolicy:
    with services.db.session() as session:
        row = session.query(RegisteredModel).filter_by(name=NAME).one()
        return PromotionPolicy.model_validate_json(row.policy)


def test_one_engineer_cannot_unprotect_icu_and_serve_an_unvalidated_version(
    http: httpx.Client, services: Services, icu: dict[str, dict[str, str]]
) -> None:
    """The attack, step by step, as one ML engineer: unprotecting ``icu`` is refused (directly
    and as a proposal, since a deployment follows it), the inverted-label version cannot reach
    ``icu`` by an alias move, a canary or a pinned deployment, each refusal is audited, and the
    clinician's predictions still come from version 1."""
    mle = icu["mle"]
    with capture_audit(services) as audit:
        direct = http.put(f"/api/v1/models/{NAME}/policy", json=WITHOUT_ICU, headers=mle)
        body = problem(direct, 409, "governed-change")
        assert body["errors"] == [
            {"field": "policy", "reason": "removes the protected alias 'icu'"}
        ]
        proposed = http.post(
            CHANGES, json={"policy": WITHOUT_ICU, "reason": "icu needs no gate"}, headers=mle
        )
        assert "icu-ward follows diabetes-risk@icu" in problem(proposed, 409, "conflict")["detail"]
        bad = _inverted(http, mle)
        moved = promote(http, mle, bad, alias="icu")
        assert "valid clinician approval" in problem(moved, 409, "promotion-blocked")["detail"]
        canary = http.put(
            f"/api/v1/deployments/{WARD}/canary",
            json={"version": bad, "percent": 100, "reason": "try it"},
            headers=mle,
        )
        problem(canary, 409, "promotion-blocked")
        pinned = deploy(http, mle, name="direct", model=f"{NAME}/{bad}")
        problem(pinned, 409, "promotion-blocked")
    assert _policy(services).protected_aliases == ["icu", "production"]
    denied = {(e.action, e.outcome) for e in audit.events if e.outcome != "success"}
    assert {
        ("models.policy", "failure"),
        ("models.policy_change.propose", "failure"),
        ("model.promote", "denied"),
        ("deployment.canary", "denied"),
        ("deployment.create", "denied"),
    } <= denied
    assert _served_versions(http, icu["clin"]) == {1}


def test_an_alias_a_deployment_follows_is_gated_even_if_the_stored_policy_lost_it(
    http: httpx.Client, services: Services, icu: dict[str, dict[str, str]]
) -> None:
    """With ``icu`` removed from the stored policy behind the API's back (a database edit), a
    move of ``icu`` is still gated, because a deployment follows it; the gate check says so."""
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        session.execute(
            update(RegisteredModel)
            .where(RegisteredModel.name == NAME)
            .values(policy=PromotionPolicy.model_validate(WITHOUT_ICU).model_dump_json())
        )
    bad = _inverted(http, icu["mle"])
    gates = GateResult.model_validate(
        http.get(
            f"/api/v1/models/{NAME}/versions/{bad}/gates",
            params={"alias": "icu"},
            headers=icu["aud"],
        ).json()
    )
    assert gates.protected
    assert not gates.passed
    problem(promote(http, icu["mle"], bad, alias="icu"), 409, "promotion-blocked")
    assert _served_versions(http, icu["clin"]) == {1}


def _propose(
    http: httpx.Client, headers: dict[str, str], policy: dict[str, Any], reason: str = "why"
) -> PolicyChangeOut:
    answer = http.post(CHANGES, json={"policy": policy, "reason": reason}, headers=headers)
    assert answer.status_code == 201, answer.text
    return PolicyChangeOut.model_validate(answer.json())


def _sign(http: httpx.Client, headers: dict[str, str], change: str, **body: Any) -> httpx.Response:
    return http.post(
        f"{CHANGES}/{change}/approvals", json={"password": PASSWORD} | body, headers=headers
    )


@pytest.mark.usefixtures("model")
def test_loosening_a_policy_needs_two_signers_one_of_them_a_clinician(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """A proposal to lower the AUROC floor waits while only engineers sign (the proposer's own
    signature counts once, a second one is refused); the clinician's signature applies it in
    the same transaction; every step is audited and the signatures verify."""
    before = _policy(services)
    change = _propose(http, people["mle"], model_data.POLICY | {"min_auroc": 0.6})
    assert change.status == "pending"
    assert change.loosenings == ["lowers the minimum AUROC from 0.7 to 0.6"]
    assert change.needs == ["a signature by a clinician", "1 more signature(s) by another person"]
    with capture_audit(services) as audit:
        first = _sign(http, people["mle"], change.id)
        assert first.status_code == 201, first.text
        problem(_sign(http, people["mle"], change.id), 409, "conflict")
        second = PolicyChangeOut.model_validate(_sign(http, people["mle2"], change.id).json())
        assert second.status == "pending"
        assert second.needs == ["a signature by a clinician"]
        assert _policy(services) == before
        done = _sign(http, people["clin"], change.id, comment="fits the intended use")
        assert done.status_code == 201, done.text
    applied = PolicyChangeOut.model_validate(done.json())
    assert applied.status == "applied"
    assert applied.needs == []
    assert [s.valid for s in applied.signatures] == [True, True, True]
    assert _policy(services).min_auroc == 0.6
    actions = [e.action for e in audit.events if e.outcome == "success"]
    assert actions.count("model.policy.sign") == 3
    (record,) = [e for e in audit.events if e.action == "model.policy"]
    assert record.details is not None
    assert record.details["change"] == change.id
    assert record.details["before"]["min_auroc"] == 0.7
    assert record.details["after"]["min_auroc"] == 0.6
    problem(_sign(http, people["aud"], change.id), 403, "forbidden")


@pytest.mark.usefixtures("model")
def test_tightening_applies_at_once_and_a_change_that_loosens_nothing_is_not_proposed(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """One person may make a policy stricter (200, audited); proposing a change that loosens
    nothing is refused with the command to use instead."""
    stricter = model_data.POLICY | {"min_auroc": 0.8, "protected_aliases": ["production", "icu"]}
    answer = http.put(f"/api/v1/models/{NAME}/policy", json=stricter, headers=people["mle"])
    assert answer.status_code == 200, answer.text
    assert ModelOut.model_validate(answer.json()).policy.min_auroc == 0.8
    same = http.post(
        CHANGES, json={"policy": stricter, "reason": "no change"}, headers=people["mle"]
    )
    assert "models policy NAME --set" in problem(same, 409, "conflict")["detail"]


@pytest.mark.usefixtures("model")
def test_a_pending_change_is_superseded_when_another_applies_and_can_be_withdrawn(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Two proposals against the same policy: once one applies, the other can no longer be
    signed (it names a policy the model no longer has) and is listed as superseded; a pending
    change can be withdrawn and is then closed to signatures."""
    lower = _propose(http, people["mle"], model_data.POLICY | {"min_auroc": 0.6})
    other = _propose(http, people["mle"], model_data.POLICY | {"max_ece": 0.2})
    assert _sign(http, people["mle2"], lower.id).status_code == 201
    assert _sign(http, people["clin"], lower.id).status_code == 201
    stale = PolicyChangeOut.model_validate(
        http.get(f"{CHANGES}/{other.id}", headers=people["aud"]).json()
    )
    assert stale.status == "superseded"
    problem(_sign(http, people["clin"], other.id), 409, "conflict")
    third = _propose(http, people["mle"], model_data.POLICY | {"min_auroc": 0.6, "max_ece": 0.2})
    withdrawn = http.post(
        f"{CHANGES}/{third.id}/withdraw", json={"reason": "not needed"}, headers=people["mle"]
    )
    assert PolicyChangeOut.model_validate(withdrawn.json()).status == "withdrawn"
    problem(_sign(http, people["clin"], third.id), 409, "conflict")
    listed = [
        PolicyChangeOut.model_validate(c) for c in http.get(CHANGES, headers=people["aud"]).json()
    ]
    assert {c.id: c.status for c in listed} == {
        lower.id: "applied",
        other.id: "superseded",
        third.id: "withdrawn",
    }


def test_every_other_path_to_patients_is_gated_too(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Other routes to the same outcome, each closed: an INT8 quantization of an approved
    version is a new version without signatures (its promotion and its canary are refused);
    a registration cannot carry aliases or approvals; a rollback to a version whose signatures
    no longer hold is refused; a shadow may run an unapproved version, but its answers never
    reach the caller."""
    mle = deployed["mle"]
    pkg = model_data.mlp_package()
    mlp = register(http, deployed["ds"], artifact=pkg.onnx, meta=model_data.metadata(pkg))
    assert mlp.status_code == 201, mlp.text
    mlp_version = int(mlp.json()["version"])
    quantized = http.post(
        f"/api/v1/models/{NAME}/versions/{mlp_version}/quantize",
        content=model_data.eval_csv(),
        params={"label": model_data.LABEL, "dataset": "eval.csv"},
        headers=mle | {"content-type": "text/csv"},
    )
    assert quantized.status_code == 201, quantized.text
    int8 = int(quantized.json()["version"])
    problem(promote(http, mle, int8), 409, "promotion-blocked")
    canary = http.put(
        "/api/v1/deployments/diabetes/canary",
        json={"version": int8, "percent": 50, "reason": "smaller"},
        headers=mle,
    )
    problem(canary, 409, "promotion-blocked")
    smuggled = register(
        http,
        deployed["ds"],
        meta=model_data.metadata(model_data.package(3.0), aliases=["production"]),
    )
    problem(smuggled, 422, "invalid-input")
    bad = _inverted(http, mle)
    shadow = http.put(
        "/api/v1/deployments/diabetes/shadow",
        json={"version": bad, "reason": "compare offline"},
        headers=mle,
    )
    assert DeploymentOut.model_validate(shadow.json()).shadow_version == bad
    assert _served_versions(http, deployed["clin"], name="diabetes") == {1}
    second = approved(http, deployed, c=2.0)
    assert promote(http, mle, second).status_code == 200
    edited = http.patch(
        f"/api/v1/models/{NAME}/versions/1/card",
        json={"limitations": "edited after it was signed"},
        headers=deployed["clin"],
    )
    assert edited.status_code == 200, edited.text
    rollback = http.post(
        f"/api/v1/models/{NAME}/aliases/production/rollback",
        json={"reason": "incident"},
        headers=mle,
    )
    assert "0 of 1 valid clinician" in problem(rollback, 409, "promotion-blocked")["detail"]
    assert _served_versions(http, deployed["clin"], name="diabetes") == {second}
