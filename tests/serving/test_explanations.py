"""Explanations in serving over HTTP, on SQLite and PostgreSQL: the answer's contributions
equal the logistic model's exact log-odds contributions computed by hand from the fitted
pipeline, add up to the output, are logged with the prediction and bound into its audit
record, travel in the FHIR answer, and cost nothing when not asked for."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, insert, select, update

from medops.audit.bindings import EXPLANATION_FIELDS
from medops.audit.checkpoints import verify_database
from medops.audit.tables import AuditEvent
from medops.config import Settings
from medops.core import datasets
from medops.registry.explained import sample_rows
from medops.rowcheck import check_rows
from medops.services import Services
from medops.serving.explain import FHIR_EXPLANATION, FHIR_EXTENSION
from medops.serving.tables import Prediction, PredictionExplanation
from tests.helpers import model_data
from tests.helpers.registry import DEPLOYMENT, FEATURES, predict, random_records

TOP = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The installation shows the four largest contributions of each explained prediction."""
    return settings.model_copy(update={"explain_top": TOP})


def expected(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact interventional contributions of the scaled logistic regression, by hand from the
    fitted pipeline: w_j (x_j - mean of the background) in the scaler's space, the base the
    log-odds at the background mean. The background: the served version's validation rows
    sampled as the server samples them."""
    pipe = model_data.pipeline()
    scaler, lr = pipe[0], pipe[-1]
    parsed = datasets.parse_csv(
        model_data.eval_csv(), model_data.package().signature, label_column=model_data.LABEL
    )
    rows = sample_rows(parsed.columns)
    background = np.array([[parsed.columns[f][i] for f in FEATURES] for i in rows], dtype=float)
    x = np.array([[r[f] for f in FEATURES] for r in records], dtype=float)
    w = lr.coef_[0] / scaler.scale_
    mean = background.mean(axis=0)
    values = (x - mean) * w
    base = lr.intercept_[0] + float(((mean - scaler.mean_) * w).sum())
    outputs = ((x - scaler.mean_) / scaler.scale_) @ lr.coef_[0] + lr.intercept_[0]
    return values, np.full(len(records), base), outputs


def count(services: Services, table: Any) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_explained_answer_equals_exact_contributions_and_adds_up(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Each explained record shows its four largest contributions (feature, value sent,
    contribution, direction) equal to the hand-computed exact values to 1e-6; base value,
    shown contributions and the rest add up to the output, which is the logit of the score."""
    records = random_records(20, seed=3)
    answer = predict(
        http, deployed["clin"], {"records": [{"features": r} for r in records], "explain": True}
    )
    assert answer.status_code == 200, answer.text
    values, base, outputs = expected(records)
    for i, p in enumerate(answer.json()["predictions"]):
        e = p["explanation"]
        assert (e["method"], e["exact"], e["scale"], e["features"]) == (
            "linear",
            True,
            "log_odds",
            len(FEATURES),
        )
        assert e["base_value"] == pytest.approx(base[i], abs=1e-6)
        assert e["output"] == pytest.approx(outputs[i], abs=1e-6)
        assert e["output"] == pytest.approx(math.log(p["score"] / (1 - p["score"])), abs=1e-6)
        order = np.argsort(-np.abs(values[i]), kind="stable")[:TOP]
        shown = e["contributions"]
        assert [c["feature"] for c in shown] == [FEATURES[j] for j in order]
        for c, j in zip(shown, order, strict=True):
            assert c["contribution"] == pytest.approx(values[i][j], abs=1e-6)
            assert c["value"] == records[i][FEATURES[j]]
            assert c["direction"] == ("increases" if values[i][j] > 0 else "decreases")
        total = e["base_value"] + sum(c["contribution"] for c in shown) + e["rest"]
        assert total == pytest.approx(e["output"], abs=1e-9)
    assert "explain" in answer.json()["timing_ms"]
    assert count(services, PredictionExplanation) == len(records)


def test_unexplained_predictions_carry_and_log_no_explanation(
    app: FastAPI, http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Without "explain" the answer has no explanation, its timing no explain stage, and the
    log no explanation row; the deployment has not built an explainer."""
    answer = predict(http, deployed["clin"], {"features": random_records(1)[0]})
    assert answer.status_code == 200, answer.text
    assert "explanation" not in answer.json()["predictions"][0]
    assert "explain" not in answer.json()["timing_ms"]
    assert count(services, PredictionExplanation) == 0
    served = app.state.predictor.runtime.route(DEPLOYMENT).primary
    assert served is not None
    assert not served.explainer.ready


def test_explain_must_be_a_boolean(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """ "explain": "yes" is refused with 422 naming the field; nothing is logged."""
    answer = predict(http, deployed["clin"], {"features": random_records(1)[0], "explain": "yes"})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["explain"]
    assert count(services, Prediction) == 0


def test_logged_explanation_is_what_was_shown_and_matches_its_audit_record(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """An auditor reads every contribution of an explained prediction, the shown ones marked
    as the answer showed them, matching the audit record's digest; a changed stored
    contribution no longer matches; a clinician may not read the log this way."""
    answer = predict(
        http, deployed["clin"], {"features": random_records(1)[0], "explain": True}
    ).json()["predictions"][0]
    url = f"/api/v1/predictions/{answer['id']}/explanation"
    assert http.get(url, headers=deployed["clin"]).status_code == 403
    logged = http.get(url, headers=deployed["aud"])
    assert logged.status_code == 200, logged.text
    body = logged.json()
    assert body["audited"] is True
    assert len(body["contributions"]) == len(FEATURES)
    shown = [c for c in body["contributions"] if c["shown"]]
    assert [(c["feature"], c["contribution"], c["value"]) for c in shown] == [
        (c["feature"], c["contribution"], c["value"])
        for c in answer["explanation"]["contributions"]
    ]
    assert body["base_value"] + sum(c["contribution"] for c in body["contributions"]) == (
        pytest.approx(body["output"], abs=1e-9)
    )
    with services.db.transaction() as session:
        stored = session.get(PredictionExplanation, answer["id"])
        assert stored is not None
        pairs = json.loads(stored.contributions)
        pairs[0][1] = -pairs[0][1] + 1.0
        session.execute(
            update(PredictionExplanation)
            .where(PredictionExplanation.prediction_id == answer["id"])
            .values(contributions=json.dumps(pairs))
        )
    assert http.get(url, headers=deployed["aud"]).json()["audited"] is False


def test_reading_an_explanation_is_audited_with_its_patient(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """An explanation shows a patient's inputs: each read leaves a
    ``explanation.read`` record naming the reader and the patient; a refused read
    (a clinician) and a prediction without an explanation leave none."""
    answer = predict(
        http,
        deployed["clin"],
        {"features": random_records(1)[0], "patient_ref": "p-42", "explain": True},
    ).json()["predictions"][0]
    url = f"/api/v1/predictions/{answer['id']}/explanation"
    assert http.get(url, headers=deployed["clin"]).status_code == 403
    plain = predict(http, deployed["clin"], {"features": random_records(1)[0]}).json()
    missing = f"/api/v1/predictions/{plain['predictions'][0]['id']}/explanation"
    assert http.get(missing, headers=deployed["aud"]).status_code == 404
    for _ in range(2):
        assert http.get(url, headers=deployed["aud"]).status_code == 200
    with services.db.session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "explanation.read")
        ).all()
    assert [(r.resource_id, r.patient_ref, r.actor_role) for r in reads] == [
        (answer["id"], "p-42", "auditor")
    ] * 2


def test_audit_chain_verifies_with_explanations(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Explained predictions keep the audit chain and every prediction row's digest whole;
    their audit records carry the explanation's digest."""
    for record in random_records(3, seed=5):
        assert predict(http, deployed["clin"], {"features": record, "explain": True}).is_success
    key, mac_key = services.audit.signing_keys()
    report, _ = verify_database(
        services.db, rows=check_rows, public_key=key.public_key(), mac_key=mac_key
    )
    assert report.ok
    with services.db.session() as session:
        details = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "prediction.create")
        ).all()
    assert len(details) == 3
    assert all(len(json.loads(d)["explanation_digest"]) == 64 for d in details if d)


def test_audit_verify_finds_a_changed_deleted_or_inserted_explanation(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """``audit verify`` checks each explanation row against the digest its prediction's record
    carries: a changed contribution, a deleted explanation and one added to a prediction that
    was not explained are each named, and nothing else is."""
    explained = [
        predict(http, deployed["clin"], {"features": r, "explain": True}).json()
        for r in random_records(2, seed=9)
    ]
    changed, deleted = (body["predictions"][0]["id"] for body in explained)
    plain = predict(http, deployed["clin"], {"features": random_records(1, seed=3)[0]}).json()
    inserted = plain["predictions"][0]["id"]
    key, mac_key = services.audit.signing_keys()

    def problems() -> list[tuple[str, str]]:
        report, _ = verify_database(
            services.db, rows=check_rows, public_key=key.public_key(), mac_key=mac_key
        )
        assert report.rows["explanations"] == count(services, PredictionExplanation)
        return sorted((p.where, p.reason) for p in report.problems)

    assert problems() == []
    with services.db.transaction() as session:  # as a direct database write would
        source = session.get(PredictionExplanation, deleted)
        assert source is not None
        copied = {name: getattr(source, name) for name in EXPLANATION_FIELDS}
        row = PredictionExplanation
        session.execute(insert(row).values({**copied, "prediction_id": inserted}))
        session.execute(delete(row).where(row.prediction_id == deleted))
        session.execute(
            update(row).where(row.prediction_id == changed).values(output=row.output + 0.5)
        )
    assert problems() == sorted(
        [
            (
                f"explanation of prediction {changed}",
                "row differs from its audit record (changed after it was written)",
            ),
            (f"explanation of prediction {deleted}", "row is missing (deleted?)"),
            (
                f"explanation of prediction {inserted}",
                "row has no audit record (inserted outside medops?)",
            ),
        ]
    )


def test_fhir_risk_assessment_carries_the_explanation(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """A FHIR answer to an explained request holds one explanation extension: method,
    exactness, scale, base value, output and one feature-contribution per shown one."""
    answer = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict",
        json={"features": random_records(1)[0], "patient_ref": "p-17", "explain": True},
        headers=deployed["clin"] | {"accept": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text
    resource = answer.json()
    assert resource["resourceType"] == "RiskAssessment"
    (extension,) = resource["extension"]
    assert extension["url"] == FHIR_EXPLANATION
    parts = {p["url"]: p for p in extension["extension"] if p["url"] != FHIR_EXTENSION}
    assert parts["method"]["valueCode"] == "linear"
    assert parts["exact"]["valueBoolean"] is True
    contributions = [p for p in extension["extension"] if p["url"] == FHIR_EXTENSION]
    assert len(contributions) == TOP
    total = (
        parts["baseValue"]["valueDecimal"]
        + parts["rest"]["valueDecimal"]
        + sum(c["extension"][2]["valueDecimal"] for c in contributions)
    )
    assert total == pytest.approx(parts["output"]["valueDecimal"], abs=1e-9)


def test_always_on_deployment_explains_every_prediction(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """After ``explain always`` (deployments:manage, a history event) every prediction is
    explained without asking; turned off, none is."""
    assert (
        http.put(
            f"/api/v1/deployments/{DEPLOYMENT}/explain",
            json={"always": True, "reason": "clinical review"},
            headers=deployed["clin"],
        ).status_code
        == 403
    )
    on = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/explain",
        json={"always": True, "reason": "clinical review"},
        headers=deployed["mle"],
    )
    assert on.status_code == 200, on.text
    assert on.json()["explain"] is True
    answer = predict(http, deployed["clin"], {"features": random_records(1)[0]})
    assert "explanation" in answer.json()["predictions"][0]
    history = http.get(f"/api/v1/deployments/{DEPLOYMENT}/history", headers=deployed["mle"])
    assert history.json()[-1]["kind"] == "explain"
    off = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/explain",
        json={"always": False, "reason": "review over"},
        headers=deployed["mle"],
    )
    assert off.json()["explain"] is False
    answer = predict(http, deployed["clin"], {"features": random_records(1)[0]})
    assert "explanation" not in answer.json()["predictions"][0]
    assert count(services, PredictionExplanation) == 1
