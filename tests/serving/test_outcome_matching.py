"""Outcomes matched by patient reference and time, over HTTP and through the SDK: the latest
non-shadow prediction of the patient on the deployment at or before ``observed_at`` within
the look-back (or within a stated window); no match, or two predictions at the same time, is
a 422 naming the row; a CSV is stored whole or not at all; the patient reference is never
logged or echoed. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from medops.api.app import create_app
from medops.client import Client
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.errors import InvalidInputError
from medops.logs import configure_logging
from medops.services import Services, build_services
from medops.serving.tables import Outcome, Prediction
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import problem
from tests.helpers.registry import DEPLOYMENT, predict, random_records, register

OUTCOMES = f"/api/v1/deployments/{DEPLOYMENT}/outcomes"
CSV = {"content-type": "text/csv"}
MARKER = "PSEUDO-4711"  # a patient reference that must never reach the logs or an error


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("debug")
    try:
        yield capsys
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _score(
    http: httpx.Client, headers: dict[str, str], refs: list[str], seed: int = 0
) -> list[str]:
    """Predict one record per reference (one request); the prediction ids, in order."""
    records = [
        {"features": r, "patient_ref": ref}
        for r, ref in zip(random_records(len(refs), seed), refs, strict=True)
    ]
    answer = predict(http, headers, {"records": records})
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["predictions"]]


def _at(when: datetime) -> str:
    return when.isoformat()


def _count(services: Services, table: Any) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_an_outcome_finds_the_patients_latest_prediction_at_or_before_it(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
    json_logs: pytest.CaptureFixture[str],
) -> None:
    """By patient reference: the latest prediction at or before observed_at within the
    look-back, or the latest within predicted_from..predicted_to; no prediction there, no
    end to the window, an inverted window or an unknown deployment is refused naming the
    field, without the reference; the match is audited with the reference."""
    clin = deployed["clin"]
    t0 = clock.now()
    (first,) = _score(http, clin, [MARKER])
    clock.advance(timedelta(hours=1))
    second, _other = _score(http, clin, [MARKER, "pt-2"], seed=1)
    clock.advance(timedelta(hours=1))
    (third,) = _score(http, clin, [MARKER], seed=2)
    clock.advance(timedelta(minutes=30))

    body = {"patient_ref": MARKER, "label": 1}
    with capture_audit(services) as audit:
        matched = http.post(
            OUTCOMES, json=body | {"observed_at": _at(t0 + timedelta(minutes=90))}, headers=clin
        )
    assert matched.status_code == 201, matched.text
    assert (matched.json()["prediction_id"], matched.json()["created"]) == (second, True)
    (record,) = audit.find("outcome.record")
    assert (record.resource_id, record.patient_ref) == (second, MARKER)
    assert record.details is not None
    assert record.details["matched_by"] == "patient_ref"
    latest = http.post(
        OUTCOMES, json=body | {"observed_at": _at(t0 + timedelta(hours=2))}, headers=clin
    )
    assert latest.json()["prediction_id"] == third  # at the observation's very time
    window = {
        "predicted_from": _at(t0 - timedelta(hours=1)),
        "predicted_to": _at(t0 + timedelta(minutes=30)),
        "observed_at": _at(t0 + timedelta(hours=2, minutes=20)),
    }
    assert http.post(OUTCOMES, json=body | window, headers=clin).json()["prediction_id"] == first

    refusals = {
        "patient_ref": body
        | {"observed_at": _at(t0 + timedelta(minutes=40)), "lookback_days": 15 / 1440},
        "observed_at": body,
        "predicted_from": body
        | {"observed_at": _at(t0), "predicted_from": _at(t0 + timedelta(minutes=1))},
    }
    for field, sent in refusals.items():
        refused = problem(http.post(OUTCOMES, json=sent, headers=clin), 422, "invalid-input")
        assert [e["field"] for e in refused["errors"]] == [field], refused
        assert MARKER not in str(refused)
    before_any = body | {"observed_at": _at(t0 - timedelta(minutes=1))}
    refused = problem(http.post(OUTCOMES, json=before_any, headers=clin), 422, "invalid-input")
    assert "no prediction of this patient" in refused["errors"][0]["reason"]
    stranger = {"patient_ref": "pt-unknown", "label": 0, "observed_at": _at(clock.now())}
    problem(http.post(OUTCOMES, json=stranger, headers=clin), 422, "invalid-input")
    problem(
        http.post("/api/v1/deployments/nope/outcomes", json=body | window, headers=clin),
        404,
        "not-found",
    )
    problem(http.post(OUTCOMES, json=body | window, headers=deployed["mle"]), 403, "forbidden")
    assert _count(services, Outcome) == 3
    assert MARKER not in json_logs.readouterr().err


def test_two_predictions_at_the_same_time_are_ambiguous_and_shadows_never_match(
    http: httpx.Client, services: Services, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> None:
    """Two predictions of the patient at the same latest time are refused, naming both
    ids; a shadow version's copy of a prediction (logged at the same time) is never a
    candidate, so the primary's prediction is matched."""
    clin = deployed["clin"]
    twins = _score(http, clin, ["pt-twin", "pt-twin"])
    sent = {"patient_ref": "pt-twin", "label": 1, "observed_at": _at(clock.now())}
    refused = problem(http.post(OUTCOMES, json=sent, headers=clin), 422, "invalid-input")
    (error,) = refused["errors"]
    assert error["field"] == "patient_ref"
    assert "two predictions of this patient" in error["reason"]
    assert all(i in error["reason"] for i in twins)

    assert register(http, deployed["ds"], c=2.0).status_code == 201
    shadowed = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": 2, "reason": "compare quietly"},
        headers=deployed["mle"],
    )
    assert shadowed.status_code == 200, shadowed.text
    (primary,) = _score(http, clin, ["pt-shadowed"], seed=3)
    for _ in range(250):
        with services.db.session() as session:
            copies = session.scalar(
                select(func.count())
                .select_from(Prediction)
                .where(Prediction.patient_ref == "pt-shadowed")
            )
        if copies == 2:
            break
        time.sleep(0.02)
    assert copies == 2  # the primary's and the shadow's, at the same time
    sent = {"patient_ref": "pt-shadowed", "label": 0, "observed_at": _at(clock.now())}
    matched = http.post(OUTCOMES, json=sent, headers=clin)
    assert matched.status_code == 201, matched.text
    assert matched.json()["prediction_id"] == primary


def test_a_csv_matches_rows_by_patient_and_time_all_or_nothing(
    settings: Settings,
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A CSV mixes rows by prediction id and by patient reference (deployment from a column
    or the parameter, look-back from the parameter); a row with no match, no deployment, a
    deployment its prediction was not made by, or both ids stores nothing and is named; the
    SDK sends both kinds."""
    clin = deployed["clin"]
    t0 = clock.now()
    first_a, by_id = _score(http, clin, ["pt-a", "pt-b"])
    clock.advance(timedelta(hours=3))
    (later_b,) = _score(http, clin, ["pt-b"], seed=1)
    clock.advance(timedelta(hours=1))
    seen = _at(clock.now())

    def upload(text: str, **params: Any) -> httpx.Response:
        return http.post("/api/v1/outcomes", content=text, params=params, headers=clin | CSV)

    header = "prediction_id,patient_ref,deployment,label,observed_at\n"
    bad = header + (
        f"{by_id},,,1,\n"  # by id (pt-b's first prediction)
        f",pt-a,,0,{seen}\n"  # by patient, deployment from the parameter
        f",pt-nobody,{DEPLOYMENT},1,{seen}\n"  # no prediction of this patient
        f",pt-b,,1,\n"  # no observed_at: no window
        f"{later_b},pt-b,,1,{seen}\n"  # both
        f"{later_b},,elsewhere,1,\n"  # the prediction was not made by 'elsewhere'
    )
    refused = problem(upload(bad, deployment=DEPLOYMENT), 422, "invalid-input")
    assert {e["field"] for e in refused["errors"]} == {"rows[3].observed_at", "rows[4]"}
    fixed = bad.replace(",pt-b,,1,\n", f",pt-b,,1,{seen}\n").replace(f"{later_b},pt-b,", ",pt-b,")
    refused = problem(upload(fixed, deployment=DEPLOYMENT), 422, "invalid-input")
    assert {e["field"] for e in refused["errors"]} == {
        "rows[2].patient_ref",
        "rows[5].deployment",
    }
    no_default = problem(upload(fixed), 422, "invalid-input")
    assert "rows[1].deployment" in {e["field"] for e in no_default["errors"]}
    assert _count(services, Outcome) == 0

    good = header + (
        f"{by_id},,,1,\n"
        f",pt-a,,0,{seen}\n"  # pt-a's prediction 4 hours before: within 30 days
        f",pt-b,{DEPLOYMENT},1,{seen}\n"  # pt-b's latest: an hour before
    )
    narrow = problem(upload(good, deployment=DEPLOYMENT, lookback_days=0.1), 422, "invalid-input")
    assert {e["field"] for e in narrow["errors"]} == {"rows[1].patient_ref"}
    done = upload(good, deployment=DEPLOYMENT)
    assert done.status_code == 200, done.text
    assert done.json() == {"rows": 3, "created": 3, "unchanged": 0, "matched": 2}
    with services.db.session() as session:
        attached = set(session.scalars(select(Outcome.prediction_id)))
    assert attached == {first_a, by_id, later_b}

    token = clin["Authorization"].removeprefix("Bearer ")
    second = build_services(settings, clock=clock)  # the SDK's own app on the same database
    transport = EmbeddedTransport(create_app(services=second, owns_services=True))
    with Client(url="https://testserver", token=token, transport=transport) as sdk:
        again = sdk.upload_outcomes(good.encode(), deployment=DEPLOYMENT)
        assert (again.created, again.unchanged, again.matched) == (0, 3, 2)
        one = sdk.record_outcome_for_patient(
            DEPLOYMENT,
            "pt-a",
            0,
            predicted_from=t0 - timedelta(minutes=5),
            predicted_to=t0 + timedelta(minutes=5),
        )
        assert (one.created, one.label) == (False, 0)
        with pytest.raises(InvalidInputError) as caught:
            sdk.record_outcome_for_patient(DEPLOYMENT, "pt-nobody", 1, observed_at=clock.now())
        assert caught.value.errors[0].field == "patient_ref"
