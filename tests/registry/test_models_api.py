"""The model registry over HTTP: registration refusals, reports, cards, signatures, gates,
promotion, rollback and history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sqlalchemy import func, select, update

from medops.audit.service import exempt_from_audit_guard
from medops.client.embedded import EmbeddedTransport
from medops.core.onnx_model import OnnxModel
from medops.registry.tables import Approval, ValidationReport
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers import model_data
from tests.helpers.http import problem
from tests.helpers.people import PASSWORD
from tests.helpers.registry import NAME, counts, promote, ready_version, register, sign, validate


@pytest.mark.usefixtures("model")
def test_refused_registrations_name_the_problem_and_store_nothing(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Drifting ONNX, corrupt ONNX, a pickle, a mismatched signature, a duplicate and an
    unknown model each get a clear 4xx; nothing is stored by any of them."""
    assert register(http, people["ds"]).status_code == 201
    before = counts(services)
    pkg = model_data.package()
    other = model_data.package(0.001)  # a different model: its probabilities are the "native" ones
    drift = model_data.metadata(pkg)
    assert other.parity is not None
    drift["parity"]["native_probabilities"] = other.parity.native_probabilities
    body = problem(register(http, people["ds"], meta=drift, c=1.0), 422, "parity-failed")
    assert "differ" in body["detail"]

    corrupt = pkg.onnx[: len(pkg.onnx) // 2]
    problem(register(http, people["ds"], artifact=corrupt), 422, "invalid-artifact")
    pickled = pickle.dumps(model_data.pipeline())
    body = problem(register(http, people["ds"], artifact=pickled), 422, "invalid-artifact")
    assert "pickle" in body["detail"].lower()

    signature = pkg.signature.model_dump(mode="json")
    signature["inputs"] = signature["inputs"][:-1]  # 9 features for a 10-feature graph
    meta = model_data.metadata(pkg, signature=signature)
    meta["parity"] = None
    body = problem(register(http, people["ds"], meta=meta), 422, "signature-mismatch")
    assert body["errors"]

    problem(register(http, people["ds"]), 409, "duplicate-version")
    body = problem(register(http, people["ds"], name="no-such-model"), 404, "not-found")
    assert "no-such-model" in body["detail"]
    assert counts(services) == before


def test_joblib_archives_are_refused_too(
    http: httpx.Client, people: dict[str, dict[str, str]], model: None, tmp_path: Any
) -> None:
    """A joblib dump, plain or compressed, is refused as a pickle-like executable format."""
    for compress in (0, 3):
        path = tmp_path / f"m{compress}.joblib"
        joblib.dump(model_data.pipeline(), path, compress=compress)
        problem(register(http, people["ds"], artifact=path.read_bytes()), 422, "invalid-artifact")


@pytest.mark.usefixtures("model")
def test_report_metrics_equal_scikit_learn_on_the_onnx_scores(
    http: httpx.Client, people: dict[str, dict[str, str]]
) -> None:
    """The server's report equals scikit-learn's metrics on the same rows and scores."""
    assert register(http, people["ds"]).status_code == 201
    answer = validate(http, people["ds"])
    assert answer.status_code == 201, answer.text
    report = answer.json()["report"]
    _, x_eval, _, y_eval = model_data.frames()
    pkg = model_data.package()
    onnx = OnnxModel(pkg.onnx, pkg.signature)
    scores = onnx.positive_scores({c: x_eval[c].tolist() for c in x_eval.columns})
    y = y_eval.to_numpy()
    predicted = (scores >= 0.5).astype(int)
    expected = {
        "auroc": roc_auc_score(y, scores),
        "auprc": average_precision_score(y, scores),
        "accuracy": accuracy_score(y, predicted),
        "sensitivity": recall_score(y, predicted),
        "specificity": recall_score(y, predicted, pos_label=0),
        "ppv": precision_score(y, predicted),
        "npv": precision_score(y, predicted, pos_label=0),
        "f1": f1_score(y, predicted),
        "brier": brier_score_loss(y, scores),
    }
    for name, value in expected.items():
        assert report["metrics"][name]["value"] == pytest.approx(value, abs=1e-9), name
    groups = {(g["attribute"], g["group"]) for g in report["subgroups"]}
    assert {("sex", "1.0"), ("sex", "2.0")} <= groups
    assert {g for a, g in groups if a == "age"} <= {"<40", "40-60", ">=60"}
    page = http.get(
        f"/api/v1/models/{NAME}/versions/1/report",
        params={"format": "html"},
        headers=people["clin"],
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text


@pytest.mark.usefixtures("model")
def test_promotion_refused_with_every_missing_condition_then_allowed(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Without signatures the move is refused, listing each unmet gate, and audited as denied;
    with a clinician's and a second ML engineer's approval it succeeds and is audited."""
    created = register(http, people["ds"])
    assert created.status_code == 201
    with capture_audit(services) as audit:
        refused = promote(http, people["mle"], 1)
    body = problem(refused, 409, "promotion-blocked")
    reasons = " | ".join(e["reason"] for e in body["errors"])
    assert "validation report" in reasons
    assert "model card incomplete" in reasons
    assert "clinician" in reasons
    assert "ml_engineer" in reasons
    (denied,) = audit.find("model.promote")
    assert denied.outcome == "denied"
    assert denied.details is not None
    assert len(denied.details["unmet"]) == len(body["errors"])

    assert validate(http, people["ds"]).status_code == 201
    card = http.get(f"/api/v1/models/{NAME}/versions/1/card", headers=people["aud"]).json()
    assert not card["completeness"]["complete"]
    assert "purpose.intended_use" in card["completeness"]["missing"]
    http.patch(
        f"/api/v1/models/{NAME}/versions/1/card", json=model_data.CARD, headers=people["clin"]
    )
    gates = http.get(f"/api/v1/models/{NAME}/versions/1/gates", headers=people["aud"]).json()
    assert gates["checks"]["validation_report"]
    assert gates["checks"]["model_card"]
    assert gates["unmet"] == [
        "approvals: 0 of 1 valid clinician approval(s)",
        "approvals: 0 of 1 valid ml_engineer approval(s)",
    ]
    assert sign(http, people["clin"]).status_code == 201
    still = problem(promote(http, people["mle"], 1), 409, "promotion-blocked")
    assert [e["reason"] for e in still["errors"]] == [
        "approvals: 0 of 1 valid ml_engineer approval(s)"
    ]
    assert sign(http, people["mle2"]).status_code == 201
    with capture_audit(services) as audit:
        moved = promote(http, people["mle"], 1)
    assert moved.status_code == 200, moved.text
    assert moved.json()["to_version"] == 1
    (done,) = audit.find("model.promote")
    assert done.outcome == "success"
    assert done.details is not None
    assert done.details["after"] == {"version": 1}
    version = http.get(f"/api/v1/models/{NAME}/versions/production", headers=people["aud"]).json()
    assert version["version"] == 1
    assert version["aliases"] == ["production"]


@pytest.mark.usefixtures("model")
def test_registrant_cannot_sign_and_signing_reauthenticates(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """The registrant's signature is refused (403); a wrong password is 401 and stores none;
    a signature shows printed name, meaning and UTC time on the card."""
    ready_version(http, people)
    problem(sign(http, people["ds"]), 403, "forbidden")  # data scientists may not sign at all
    mine = http.post("/api/v1/models", json={"name": "own-model"}, headers=people["mle"])
    assert mine.status_code == 201
    own = register(http, people["mle"], name="own-model")
    assert own.status_code == 201
    http.post(
        "/api/v1/models/own-model/versions/1/validate",
        content=model_data.eval_csv(),
        params={"label": model_data.LABEL, "bootstrap": 50},
        headers=people["mle"] | {"content-type": "text/csv"},
    )
    http.patch(
        "/api/v1/models/own-model/versions/1/card", json=model_data.CARD, headers=people["mle"]
    )
    body = problem(
        http.post(
            "/api/v1/models/own-model/versions/1/approvals",
            json={"password": PASSWORD},
            headers=people["mle"],
        ),
        403,
        "separation-of-duties",
    )
    assert "registered" in body["detail"]
    problem(sign(http, people["clin"], password="not-the-password"), 401, "unauthenticated")
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Approval)) == 0
    signed = sign(http, people["clin"], comment="reviewed the subgroup table")
    assert signed.status_code == 201, signed.text
    approval = signed.json()
    assert approval["printed_name"] == "Test User-Clinician"
    assert approval["valid"] is True
    assert approval["signed_at"].endswith("Z") or approval["signed_at"].endswith("+00:00")
    markdown = http.get(
        f"/api/v1/models/{NAME}/versions/1/card", params={"format": "md"}, headers=people["aud"]
    ).text
    assert "Test User\\-Clinician (user\\-clinician, clinician), approval" in markdown
    problem(sign(http, people["clin"]), 409, "conflict")  # one valid signature per meaning


@pytest.mark.usefixtures("model")
def test_a_signature_is_invalid_once_the_signed_content_changes(
    http: httpx.Client, services: Services, clock: FixedClock, people: dict[str, dict[str, str]]
) -> None:
    """A new report, an edited card, or a signature row edited in the database each make
    the signature invalid, with the reason; the gates stop counting it."""
    ready_version(http, people)
    assert sign(http, people["clin"]).status_code == 201

    def approvals() -> list[dict[str, Any]]:
        answer = http.get(f"/api/v1/models/{NAME}/versions/1/approvals", headers=people["aud"])
        result: list[dict[str, Any]] = answer.json()
        return result

    assert approvals()[0]["valid"]
    clock.advance(timedelta(seconds=1))
    assert validate(http, people["ds"], threshold=0.4).status_code == 201
    (changed,) = approvals()
    assert not changed["valid"]
    assert any("validation report changed" in r for r in changed["invalid_reasons"])
    gates = http.get(f"/api/v1/models/{NAME}/versions/1/gates", headers=people["aud"]).json()
    assert "approvals: 0 of 1 valid clinician approval(s)" in gates["unmet"]

    clock.advance(timedelta(seconds=1))
    assert sign(http, people["clin"]).status_code == 201  # signs the new report
    assert [a["valid"] for a in approvals()] == [False, True]
    edited = http.patch(
        f"/api/v1/models/{NAME}/versions/1/card",
        json={"limitations": "Also: no external validation yet."},
        headers=people["clin"],
    )
    assert edited.status_code == 200, edited.text
    assert all(any("model card changed" in r for r in a["invalid_reasons"]) for a in approvals())

    clock.advance(timedelta(seconds=1))
    assert sign(http, people["clin"]).status_code == 201
    assert approvals()[-1]["valid"]
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        session.execute(update(Approval).values(printed_name="Someone Else"))
    assert not any(a["valid"] for a in approvals())
    assert "altered" in " ".join(approvals()[-1]["invalid_reasons"])

    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        row = session.scalars(
            select(ValidationReport).order_by(ValidationReport.created_at.desc())
        ).first()
        assert row is not None
        report = json.loads(row.report)
        report["metrics"]["auroc"]["value"] = 0.99
        session.execute(
            update(ValidationReport)
            .where(ValidationReport.id == row.id)
            .values(report=json.dumps(report))
        )
    gates = http.get(f"/api/v1/models/{NAME}/versions/1/gates", headers=people["aud"]).json()
    assert gates["checks"]["approvals.clinician"] is False


@pytest.mark.usefixtures("model")
def test_history_and_at_answer_correctly_after_promotions_and_a_rollback(
    http: httpx.Client, clock: FixedClock, people: dict[str, dict[str, str]]
) -> None:
    """Three promotions and two rollbacks: history lists each move with who, when and why;
    the alias resolves at any past time to the version it pointed at then."""
    times = {}
    for version, c in ((1, 1.0), (2, 2.0), (3, 10.0)):
        assert ready_version(http, people, c=c) == version
        assert sign(http, people["clin"], version).status_code == 201
        assert sign(http, people["mle2"], version).status_code == 201
        clock.advance(timedelta(minutes=5))  # under the login idle timeout
        moved = promote(http, people["mle"], version)
        assert moved.status_code == 200, moved.text
        times[version] = clock.now()
    clock.advance(timedelta(minutes=5))
    rolled = http.post(
        f"/api/v1/models/{NAME}/aliases/production/rollback",
        json={"reason": "sensitivity dropped in the ED"},
        headers=people["mle"],
    )
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["from_version"], rolled.json()["to_version"]) == (3, 2)
    first_rollback = clock.now()
    clock.advance(timedelta(minutes=5))
    again = http.post(
        f"/api/v1/models/{NAME}/aliases/production/rollback",
        json={"reason": "back to the first model"},
        headers=people["mle"],
    )
    assert again.json()["to_version"] == 1
    nothing = http.post(
        f"/api/v1/models/{NAME}/aliases/production/rollback",
        json={"reason": "further"},
        headers=people["mle"],
    )
    problem(nothing, 409, "conflict")

    history = http.get(f"/api/v1/models/{NAME}/history", headers=people["aud"]).json()
    assert [(e["kind"], e["from_version"], e["to_version"]) for e in history] == [
        ("promote", None, 1),
        ("promote", 1, 2),
        ("promote", 2, 3),
        ("rollback", 3, 2),
        ("rollback", 2, 1),
    ]
    assert {e["actor"] for e in history} == {"user-ml-engineer"}
    assert history[3]["reason"] == "sensitivity dropped in the ED"

    def at(moment: Any) -> int | None:
        answer = http.get(
            f"/api/v1/models/{NAME}/aliases/production",
            params={"at": moment.isoformat()},
            headers=people["aud"],
        )
        return answer.json()["version"] if answer.status_code == 200 else None

    assert at(times[1] - timedelta(seconds=1)) is None
    assert at(times[1]) == 1
    assert at(times[2] + timedelta(minutes=2)) == 2
    assert at(times[3] + timedelta(minutes=4)) == 3
    assert at(first_rollback + timedelta(minutes=1)) == 2
    assert at(clock.now()) == 1


@pytest.mark.usefixtures("model")
def test_permissions_and_policy_governance(
    http: httpx.Client, people: dict[str, dict[str, str]]
) -> None:
    """Admins see no models; clinicians cannot register or promote; a non-default policy
    needs models:policy and cannot go below the floor (production protected, a clinician
    and a second signer); an unprotected alias moves without gates."""
    assert http.get("/api/v1/models", headers=people["admin"]).status_code == 403
    assert register(http, people["clin"]).status_code == 403
    lax = {"min_auroc": None, "max_ece": None}
    refused = http.post("/api/v1/models", json={"name": "lax", "policy": lax}, headers=people["ds"])
    problem(refused, 403, "forbidden")
    floors: list[dict[str, Any]] = [{"required_approvals": {}}, {"protected_aliases": []}]
    for floor in floors:
        below = http.post(
            "/api/v1/models", json={"name": "lax", "policy": floor}, headers=people["mle"]
        )
        problem(below, 422, "invalid-input")
        gutted = http.put(f"/api/v1/models/{NAME}/policy", json=floor, headers=people["mle"])
        problem(gutted, 422, "invalid-input")
    made = http.post("/api/v1/models", json={"name": "lax", "policy": lax}, headers=people["mle"])
    assert made.status_code == 201
    assert made.json()["policy"]["min_auroc"] is None
    assert register(http, people["ds"]).status_code == 201
    staging = promote(http, people["mle"], 1, alias="staging")
    assert staging.status_code == 200
    assert promote(http, people["clin"], 1, alias="staging").status_code == 403
    listed = http.get("/api/v1/models", headers=people["aud"]).json()
    assert {m["name"]: m["aliases"] for m in listed} == {NAME: {"staging": 1}, "lax": {}}


@pytest.mark.usefixtures("model")
def test_a_policy_change_needs_fresh_signatures_and_rollback_is_gated(
    http: httpx.Client, services: Services, clock: FixedClock, people: dict[str, dict[str, str]]
) -> None:
    """Signatures are bound to the policy they were given under: after the policy is relaxed
    (a signed policy change), neither a promotion nor a rollback to the earlier version passes
    until people sign again; the refused rollback is audited with what is missing."""
    for version, c in ((1, 1.0), (2, 2.0)):
        ready_version(http, people, c=c)
        assert sign(http, people["clin"], version).status_code == 201
        assert sign(http, people["mle2"], version).status_code == 201
        clock.advance(timedelta(seconds=1))
        assert promote(http, people["mle"], version).status_code == 200
    relaxed = model_data.POLICY | {"min_auroc": 0.5}
    proposed = http.post(
        f"/api/v1/models/{NAME}/policy-changes",
        json={"policy": relaxed, "reason": "AUROC floor of the intended use"},
        headers=people["mle"],
    )
    assert proposed.status_code == 201, proposed.text
    change = f"/api/v1/models/{NAME}/policy-changes/{proposed.json()['id']}/approvals"
    for who in ("mle", "clin"):
        signed = http.post(change, json={"password": PASSWORD}, headers=people[who])
        assert signed.status_code == 201, signed.text
    assert signed.json()["status"] == "applied"
    with capture_audit(services) as audit:
        refused = http.post(
            f"/api/v1/models/{NAME}/aliases/production/rollback",
            json={"reason": "incident"},
            headers=people["mle"],
        )
    body = problem(refused, 409, "promotion-blocked")
    assert "0 of 1 valid clinician approval(s)" in body["detail"]
    (denied,) = audit.find("model.rollback")
    assert denied.outcome == "denied"
    approvals = http.get(
        f"/api/v1/models/{NAME}/versions/1/approvals", headers=people["aud"]
    ).json()
    assert all("promotion policy changed" in " ".join(a["invalid_reasons"]) for a in approvals)
    assert sign(http, people["clin"], 1).status_code == 201
    assert sign(http, people["mle2"], 1).status_code == 201
    rolled = http.post(
        f"/api/v1/models/{NAME}/aliases/production/rollback",
        json={"reason": "incident"},
        headers=people["mle"],
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["to_version"] == 1


@pytest.mark.usefixtures("model")
def test_unstorable_metadata_is_refused_before_anything_is_stored(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """NaN or infinite numbers, a NUL character, or parity rows of uneven length are a 422
    and leave no version and no blob behind, on either database."""
    pkg = model_data.package()
    before = counts(services)
    for bad in (
        model_data.metadata(pkg, training_metrics={"auc": float("nan")}),
        model_data.metadata(pkg, hyperparameters={"C": float("inf")}),
        model_data.metadata(pkg, description="nul \x00 inside"),
    ):
        text = json.dumps(bad)
        answer = http.post(
            f"/api/v1/models/{NAME}/versions",
            files={"artifact": ("model.onnx", pkg.onnx)},
            data={"metadata": text},
            headers=people["ds"],
        )
        problem(answer, 422, "invalid-input")
    ragged = model_data.metadata(pkg)
    ragged["parity"]["native_probabilities"][0] = [0.5]
    problem(register(http, people["ds"], meta=ragged), 422, "signature-mismatch")
    assert counts(services) == before


@pytest.mark.usefixtures("model")
def test_bad_evaluation_data_is_a_422_naming_the_cells(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """A dataset missing a column, with a non-number, or an unknown label is refused with
    the fields named; no report is stored."""
    assert register(http, people["ds"]).status_code == 201
    url = f"/api/v1/models/{NAME}/versions/1/validate"
    csv_headers = people["ds"] | {"content-type": "text/csv"}
    good = model_data.eval_csv().decode().splitlines()
    missing = "\n".join(",".join(line.split(",")[1:]) for line in good)
    body = problem(
        http.post(url, content=missing, params={"label": model_data.LABEL}, headers=csv_headers),
        422,
        "invalid-input",
    )
    assert body["errors"][0]["field"] == "columns.age"
    broken = "\n".join([good[0], "abc" + good[1][good[1].index(",") :], *good[2:]])
    body = problem(
        http.post(url, content=broken, params={"label": model_data.LABEL}, headers=csv_headers),
        422,
        "invalid-input",
    )
    assert body["errors"][0]["field"] == "rows[0].age"
    wrong_label = "\n".join([good[0], good[1][: good[1].rindex(",")] + ",maybe", *good[2:]])
    body = problem(
        http.post(
            url, content=wrong_label, params={"label": model_data.LABEL}, headers=csv_headers
        ),
        422,
        "invalid-input",
    )
    assert body["errors"][0]["field"] == f"rows[0].{model_data.LABEL}"
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ValidationReport)) == 0


@pytest.mark.usefixtures("model")
def test_concurrent_signatures_by_one_person_count_once(
    app: FastAPI, http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Four simultaneous approval requests from one clinician: one signature is stored, the
    others are refused under the model's lock, so one person cannot fill two approvals."""
    ready_version(http, people)

    def attempt(_: int) -> int:
        with httpx.Client(transport=EmbeddedTransport(app), base_url="https://testserver") as c:
            return sign(c, people["clin"]).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))
    assert statuses == [201, 409, 409, 409]
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Approval)) == 1
