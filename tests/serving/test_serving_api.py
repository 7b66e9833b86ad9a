"""The inference service over HTTP: deployments, predictions equal to ONNX Runtime's (with and
without batching, with the cache), refused input never logged, rollout under load, canary,
shadow, FHIR answers and outcomes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select

from medops.audit.tables import AuditEvent
from medops.core.onnx_model import OnnxModel
from medops.services import Services
from medops.serving.schemas import DeploymentOut
from medops.serving.tables import Outcome, Prediction
from medops.testing import FixedClock, capture_audit
from tests.helpers import model_data
from tests.helpers.registry import (
    DEPLOYMENT,
    FEATURES,
    NAME,
    approved,
    deploy,
    predict,
    promote,
    random_records,
    ready_version,
)


def direct(records: list[dict[str, Any]], c: float = 1.0) -> np.ndarray:
    """Positive-class probabilities straight from ONNX Runtime, one call for all records."""
    pkg = model_data.package(c)
    model = OnnxModel(pkg.onnx, pkg.signature)
    columns = {f: [r[f] for r in records] for f in FEATURES}
    return model.positive_scores(columns)


def count(services: Services, table: Any) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_predictions_equal_onnx_runtime_batched_single_and_cached(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """2,000 random valid records, sent in batches, one by one from 16 threads (coalesced by
    the micro-batcher) and twice through a cached deployment, get exactly the probabilities
    ONNX Runtime gives directly; every answer is logged, with an audit record."""
    clin = deployed["clin"]
    records = random_records(2000)
    expected = direct(records)
    got: dict[int, float] = {}
    for start in range(0, 1500, 250):
        answer = predict(
            http, clin, {"records": [{"features": r} for r in records[start : start + 250]]}
        )
        assert answer.status_code == 200, answer.text
        for i, p in enumerate(answer.json()["predictions"]):
            got[start + i] = p["score"]

    def one(i: int) -> tuple[int, float, int]:
        answer = predict(http, clin, {"features": records[i], "patient_ref": f"p-{i}"})
        assert answer.status_code == 200, answer.text
        (p,) = answer.json()["predictions"]
        return i, p["score"], p["version"]

    with ThreadPoolExecutor(16) as pool:
        for i, score, version in pool.map(one, range(1500, 2000)):
            got[i] = score
            assert version == 1
    scores = np.array([got[i] for i in range(2000)])
    assert np.max(np.abs(scores - expected)) <= 1e-6
    assert count(services, Prediction) == 2000

    assert deploy(http, deployed["mle"], "diabetes-cached", cache_size=500).status_code == 201
    body = {"records": [{"features": r} for r in records[:400]]}
    first = predict(http, clin, body, name="diabetes-cached").json()["predictions"]
    again = predict(http, clin, body, name="diabetes-cached").json()["predictions"]
    assert not any(p["cached"] for p in first)
    assert all(p["cached"] for p in again)
    for answers in (first, again):
        assert np.max(np.abs(np.array([p["score"] for p in answers]) - expected[:400])) <= 1e-6
    metrics = http.get("/metrics").text
    assert 'medops_prediction_cache_hits_total{deployment="diabetes-cached"} 400.0' in metrics
    assert count(services, Prediction) == 2800
    with services.db.session() as session:
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "prediction.create")
        )
    assert audited == 2800


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_bad_input_is_a_clear_4xx_and_never_logged(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Wrong types, missing, extra and non-finite values, bad shapes, huge batches, oversized
    bodies and unknown deployments get a 4xx naming each field; nothing is scored or logged."""
    clin = deployed["clin"]
    good = random_records(1)[0]
    cases: list[tuple[Any, int, set[str]]] = [
        ({"features": good | {"age": "old"}}, 422, {"features.age"}),
        ({"features": {k: v for k, v in good.items() if k != "bmi"}}, 422, {"features.bmi"}),
        ({"features": good | {"weight": 80}}, 422, {"features.weight"}),
        ({"features": good | {"age": 200}}, 422, {"features.age"}),
        ({"features": good | {"bmi": 5}}, 422, {"features.bmi"}),
        (
            {"records": [{"features": good}, {"features": good | {"bp": None}, "x": 1}]},
            422,
            {"records[1].features.bp", "records[1].x"},
        ),
        ({"records": []}, 422, {"records"}),
        ({"records": [{"features": good}] * 1001}, 422, {"records"}),
        ({"features": good, "records": []}, 422, {"features"}),
        ({"features": good, "patient_ref": ""}, 422, {"patient_ref"}),
        ({"features": good, "dose": 1}, 422, {"dose"}),
        ([good], 422, {"body"}),
    ]
    for body, status, fields in cases:
        problem = _problem(predict(http, clin, body), status)
        assert {e["field"] for e in problem["errors"]} == fields, problem
    nan = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict",
        content=json.dumps({"features": good | {"bmi": math.nan}}),
        headers=clin | {"content-type": "application/json"},
    )
    assert {e["field"] for e in _problem(nan, 422)["errors"]} == {"features.bmi"}
    broken = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict",
        content=b'{"features": {',
        headers=clin | {"content-type": "application/json"},
    )
    _problem(broken, 400)
    huge = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict",
        content=b" " * (services.settings.max_request_bytes + 1),
        headers=clin | {"content-type": "application/json"},
    )
    _problem(huge, 413)
    _problem(predict(http, clin, {"features": good}, name="nope"), 404)
    _problem(predict(http, deployed["ds"], {"features": good}), 403)
    assert count(services, Prediction) == 0
    with services.db.session() as session:
        logged = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "prediction.create")
        )
    assert logged == 0


def test_promotion_and_rollback_under_load_drop_nothing_and_never_mix_versions(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """While 8 threads send batches, version 2 is promoted and then rolled back: every request
    is answered 200, each answer comes from one version only, and both versions answered."""
    approved(http, deployed, c=2.0)
    records = [{"features": r} for r in random_records(20, seed=3)]
    expected = {
        1: direct([r["features"] for r in records]),
        2: direct([r["features"] for r in records], 2.0),
    }
    stop = False
    answers: list[tuple[int, list[int], list[float]]] = []
    failures: list[str] = []

    def load() -> None:
        while not stop:
            answer = predict(http, deployed["clin"], {"records": records})
            if answer.status_code != 200:
                failures.append(answer.text)
            preds = answer.json().get("predictions", [])
            answers.append(
                (answer.status_code, [p["version"] for p in preds], [p["score"] for p in preds])
            )

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(answers) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(answers) >= n, "the load threads stopped answering"

    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(load) for _ in range(8)]
        try:
            wait_for(20)
            promoted = promote(http, deployed["mle"], 2)
            assert promoted.status_code == 200, promoted.text
            wait_for(len(answers) + 20)
            rolled = http.post(
                f"/api/v1/models/{NAME}/aliases/production/rollback",
                json={"reason": "back to version 1"},
                headers=deployed["mle"],
            )
            assert rolled.status_code == 200, rolled.text
            wait_for(len(answers) + 20)
        finally:
            stop = True
        for future in running:
            future.result()
    assert failures == []
    assert all(status == 200 for status, _, _ in answers)
    versions = []
    for _, numbers, scores in answers:
        assert len(set(numbers)) == 1
        versions.append(numbers[0])
        assert np.max(np.abs(np.array(scores) - expected[numbers[0]])) <= 1e-6
    assert {1, 2} <= set(versions)
    assert versions[-1] == 1
    assert count(services, Prediction) == 20 * len(answers)


def test_canary_is_sticky_per_patient_and_rolls_back_on_errors(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """A canary must pass the gates; it gets its share of patients, the same patients every
    time; when its latency crosses the limit it is ended automatically, audited."""
    mle = deployed["mle"]
    unapproved = ready_version(http, deployed, c=10.0)
    refused = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/canary",
        json={"version": unapproved, "percent": 30, "reason": "try it"},
        headers=mle,
    )
    assert _problem(refused, 409)["type"].endswith("promotion-blocked")
    candidate = approved(http, deployed, c=2.0)
    started = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/canary",
        json={"version": candidate, "percent": 30, "reason": "canary 30%"},
        headers=mle,
    )
    assert started.status_code == 200, started.text
    assert started.json()["canary_version"] == candidate
    record = random_records(1)[0]
    batch = {"records": [{"features": record, "patient_ref": f"pat-{i}"} for i in range(200)]}
    first = predict(http, deployed["clin"], batch).json()["predictions"]
    second = predict(http, deployed["clin"], batch).json()["predictions"]
    arms = [p["arm"] for p in first]
    assert arms == [p["arm"] for p in second]
    assert 30 <= arms.count("canary") <= 90
    assert {p["version"] for p in first if p["arm"] == "canary"} == {candidate}

    # A limit of 0.001 ms p99 cannot be met: the next 100 canary records trip it.
    tight = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/canary",
        json={
            "version": candidate,
            "percent": 100,
            "reason": "all traffic, tight limits",
            "limits": {"max_p99_ms": 0.001, "min_requests": 100},
        },
        headers=mle,
    )
    assert tight.status_code == 200, tight.text
    with capture_audit(services) as audit:
        assert predict(http, deployed["clin"], batch).status_code == 200
        for _ in range(100):
            state = http.get(f"/api/v1/deployments/{DEPLOYMENT}", headers=mle).json()
            if state["canary_version"] is None:
                break
            time.sleep(0.02)
    assert state["canary_version"] is None
    (ended,) = audit.find("deployment.auto-rollback")
    assert ended.actor_name == "system"
    assert ended.reason is not None
    assert "p99" in ended.reason
    after = predict(http, deployed["clin"], batch).json()["predictions"]
    assert {p["arm"] for p in after} == {"primary"}
    kinds = [
        e["kind"] for e in http.get(f"/api/v1/deployments/{DEPLOYMENT}/history", headers=mle).json()
    ]
    assert kinds == ["create", "canary", "canary", "auto-rollback"]


def test_shadow_results_are_logged_never_returned(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """A shadow version scores a copy of every record: its rows are in the log (flagged),
    the answers only ever show the primary version; stopping it is audited."""
    shadow = ready_version(http, deployed, c=2.0)  # a shadow need not pass the gates
    started = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": shadow, "reason": "compare quietly"},
        headers=deployed["mle"],
    )
    assert started.status_code == 200, started.text
    records = [{"features": r} for r in random_records(50, seed=5)]
    ids = set()
    for _ in range(4):
        answer = predict(http, deployed["clin"], {"records": records})
        assert answer.status_code == 200
        assert {p["version"] for p in answer.json()["predictions"]} == {1}
        assert "shadow" not in answer.text
        ids |= {p["id"] for p in answer.json()["predictions"]}
    for _ in range(200):
        with services.db.session() as session:
            shadows = list(session.scalars(select(Prediction).where(Prediction.shadow.is_(True))))
        if len(shadows) == 200:
            break
        time.sleep(0.02)
    assert len(shadows) == 200
    assert {row.version for row in shadows} == {shadow}
    assert not ids & {row.id for row in shadows}
    expected = direct([r["features"] for r in records], 2.0)
    scores = [json.loads(row.probabilities)["1"] for row in shadows[:50]]
    assert np.max(np.abs(np.array(scores) - expected)) <= 1e-6
    stopped = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": None, "reason": "enough"},
        headers=deployed["mle"],
    )
    assert stopped.json()["shadow_version"] is None


def test_fhir_answer_is_a_valid_risk_assessment(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """With Accept: application/fhir+json one record gives an R4 RiskAssessment about the
    patient, several a Bundle of them; without a patient reference it is a 422."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.riskassessment import RiskAssessment

    clin = deployed["clin"] | {"accept": "application/fhir+json"}
    record = random_records(1)[0]
    one = predict(
        http,
        clin,
        {"features": record, "patient_ref": "pt-7"},
    )
    assert one.status_code == 200, one.text
    assert one.headers["content-type"] == "application/fhir+json"
    resource = RiskAssessment.model_validate(one.json())
    assert resource.subject.reference == "Patient/pt-7"
    assert resource.prediction is not None
    probabilities = [float(p.probabilityDecimal or 0) for p in resource.prediction]
    assert abs(sum(probabilities) - 1) < 1e-6
    many = predict(
        http,
        clin,
        {"records": [{"features": record, "patient_ref": f"pt-{i}"} for i in range(3)]},
    )
    bundle = Bundle.model_validate(many.json())
    assert bundle.entry is not None
    subjects = [e.resource.subject for e in bundle.entry if isinstance(e.resource, RiskAssessment)]
    assert [s.reference for s in subjects if s is not None] == [f"Patient/pt-{i}" for i in range(3)]
    missing = predict(http, clin, {"features": record})
    assert {e["field"] for e in _problem(missing, 422)["errors"]} == {"patient_ref"}
    not_an_id = predict(http, clin, {"features": record, "patient_ref": "pt 7/x"})
    assert {e["field"] for e in _problem(not_an_id, 422)["errors"]} == {"patient_ref"}


def test_outcomes_one_by_one_and_by_csv_all_or_nothing(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Clinicians and services attach outcomes; the same one again is unchanged, a different
    one is refused; a CSV with one bad row stores nothing and names each bad row."""
    records = [{"features": r, "patient_ref": f"p{i}"} for i, r in enumerate(random_records(5))]
    ids = [
        p["id"] for p in predict(http, deployed["clin"], {"records": records}).json()["predictions"]
    ]
    url = f"/api/v1/predictions/{ids[0]}/outcome"
    with capture_audit(services) as audit:
        first = http.post(url, json={"label": 1}, headers=deployed["clin"])
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    (recorded,) = audit.find("outcome.record")
    assert recorded.patient_ref == "p0"
    assert http.post(url, json={"label": 1}, headers=deployed["clin"]).json()["created"] is False
    _problem(http.post(url, json={"label": 0}, headers=deployed["clin"]), 409)
    _problem(http.post(url, json={"label": 1}, headers=deployed["mle"]), 403)
    bad_label = http.post(
        f"/api/v1/predictions/{ids[1]}/outcome", json={"label": 7}, headers=deployed["clin"]
    )
    assert {e["field"] for e in _problem(bad_label, 422)["errors"]} == {"label"}
    _problem(
        http.post(
            f"/api/v1/predictions/{'0' * 32}/outcome", json={"label": 1}, headers=deployed["clin"]
        ),
        404,
    )

    csv_bad = (
        "prediction_id,label,observed_at\n"
        f"{ids[1]},0,2026-01-01T12:00:00Z\n"  # the prediction's time (the fixed clock)
        f"{ids[2]},maybe,\n"
        f"{'f' * 32},1,\n"
        f"{ids[3]},1,yesterday\n"
    )
    upload = http.post(
        "/api/v1/outcomes", content=csv_bad, headers=deployed["clin"] | {"content-type": "text/csv"}
    )
    fields = {e["field"] for e in _problem(upload, 422)["errors"]}
    assert fields == {"rows[3].observed_at"}
    csv_bad = csv_bad.replace(",yesterday", ",")
    upload = http.post(
        "/api/v1/outcomes", content=csv_bad, headers=deployed["clin"] | {"content-type": "text/csv"}
    )
    assert {e["field"] for e in _problem(upload, 422)["errors"]} == {"rows[1].label", "rows[2]"}
    assert count(services, Outcome) == 1
    huge_field = f"prediction_id,label\n{ids[1]},{'1' * 200_000}\n"
    upload = http.post(
        "/api/v1/outcomes",
        content=huge_field,
        headers=deployed["clin"] | {"content-type": "text/csv"},
    )
    assert {e["field"] for e in _problem(upload, 422)["errors"]} == {"file"}
    csv_good = "prediction_id,label\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids[1:]))
    csv_good += f"{ids[0]},1\n"
    done = http.post(
        "/api/v1/outcomes",
        content=csv_good,
        headers=deployed["clin"] | {"content-type": "text/csv"},
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"rows": 5, "created": 4, "unchanged": 1, "matched": 0}
    assert count(services, Outcome) == 5


def test_a_deployment_cannot_follow_an_ungated_alias_and_odd_bodies_are_400s(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Following an alias the policy does not protect would serve unapproved versions: it is
    refused and audited. Unpaired surrogates and absurd nesting are 400s; a bad record does
    not shift the indices of the ones after it; a refusal's audit reason holds no values."""
    unapproved = ready_version(http, deployed, c=10.0)
    moved = http.put(
        f"/api/v1/models/{NAME}/aliases/staging",
        json={"version": unapproved, "reason": "try"},
        headers=deployed["mle"],
    )
    assert moved.status_code == 200, moved.text
    with capture_audit(services) as audit:
        refused = deploy(http, deployed["mle"], "sneaky", model=f"{NAME}@staging")
    assert {e["field"] for e in _problem(refused, 409)["errors"]} == {"model"}
    (denied,) = audit.find("deployment.create")
    assert denied.outcome == "denied"
    good = random_records(1)[0]
    for raw in (b'{"features": {"\\ud800": 1}}', b"[" * 100_000 + b"]" * 100_000):
        answer = http.post(
            f"/api/v1/deployments/{DEPLOYMENT}/predict",
            content=raw,
            headers=deployed["clin"] | {"content-type": "application/json"},
        )
        _problem(answer, 400)
    body = {"records": [{"features": good}, "oops", {"features": good | {"age": 999}}]}
    with capture_audit(services) as audit:
        problem = _problem(predict(http, deployed["clin"], body), 422)
    assert {e["field"] for e in problem["errors"]} == {"records[1].features"}
    body = {"records": [{"features": good}, {"features": good | {"age": 999}}]}
    with capture_audit(services) as audit:
        problem = _problem(predict(http, deployed["clin"], body), 422)
    assert {e["field"] for e in problem["errors"]} == {"records[1].features.age"}
    (failed,) = audit.find("deployments.predict")
    assert failed.reason is not None
    assert "999" not in failed.reason
    assert "records[1].features.age" in failed.reason


def test_an_arm_whose_artifact_is_gone_is_left_out_not_fatal(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """A shadow version whose artifact disappears from the blob store after it was set is
    left out at the next refresh: the deployment keeps answering from its primary."""
    shadow = ready_version(http, deployed, c=2.0)
    started = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": shadow, "reason": "compare"},
        headers=deployed["mle"],
    )
    assert started.status_code == 200, started.text
    digest = http.get(f"/api/v1/models/{NAME}/versions/{shadow}", headers=deployed["mle"]).json()[
        "artifact_digest"
    ]
    hexdigest = digest.removeprefix("sha256:")
    blob = services.settings.blob_dir / "objects" / hexdigest[:2] / hexdigest  # encrypted
    assert blob.exists()
    blob.unlink()
    record = random_records(1)[0]
    answer = predict(http, deployed["clin"], {"features": record})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["version"] == 1
    refused = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": None, "reason": "stop"},
        headers=deployed["mle"],
    )
    assert refused.status_code == 200
    again = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": shadow, "reason": "again"},
        headers=deployed["mle"],
    )
    assert again.status_code == 500
    assert again.json()["type"].endswith("integrity-error")


def test_a_model_rollback_ends_the_canaries_and_shadows_of_its_deployments(
    http: httpx.Client, services: Services, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> None:
    """Rolling production back from v2 to v1 while v3 is a 30% canary and v4 a shadow of the
    deployment that follows it: the rollback also ends the canary and the shadow, in the same
    transaction, each with a deployment event and an audit record naming the rollback, so
    every patient is answered by v1 again."""
    mle = deployed["mle"]
    second = approved(http, deployed, c=2.0)
    clock.advance(timedelta(seconds=1))
    assert promote(http, mle, second).status_code == 200
    third = approved(http, deployed, c=3.0)
    fourth = ready_version(http, deployed, c=4.0)
    assert (
        http.put(
            f"/api/v1/deployments/{DEPLOYMENT}/canary",
            json={"version": third, "percent": 30, "reason": "canary 30%"},
            headers=mle,
        ).status_code
        == 200
    )
    assert (
        http.put(
            f"/api/v1/deployments/{DEPLOYMENT}/shadow",
            json={"version": fourth, "reason": "compare"},
            headers=mle,
        ).status_code
        == 200
    )
    with capture_audit(services) as audit:
        rolled = http.post(
            f"/api/v1/models/{NAME}/aliases/production/rollback",
            json={"reason": "v2 misclassifies the ICU cohort"},
            headers=mle,
        )
    assert rolled.status_code == 200, rolled.text
    state = DeploymentOut.model_validate(
        http.get(f"/api/v1/deployments/{DEPLOYMENT}", headers=mle).json()
    )
    assert (state.version, state.canary_version, state.shadow_version) == (1, None, None)
    (ended,) = audit.find("deployment.rollback")
    assert ended.reason == "v2 misclassifies the ICU cohort"
    assert ended.details is not None
    assert ended.details["before"]["canary_version"] == third
    assert ended.details["after"]["shadow_version"] is None
    assert [e.action for e in audit.events].index("model.rollback") < [
        e.action for e in audit.events
    ].index("deployment.rollback")
    batch = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in
                         enumerate(random_records(100))]}  # fmt: skip
    answers = predict(http, deployed["clin"], batch).json()["predictions"]
    assert {(p["arm"], p["version"]) for p in answers} == {("primary", 1)}
    kinds = [
        e["kind"] for e in http.get(f"/api/v1/deployments/{DEPLOYMENT}/history", headers=mle).json()
    ]
    assert kinds[-1] == "rollback"
