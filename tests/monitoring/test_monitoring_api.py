"""Monitoring over HTTP: a run computes each complete day of a deployment's predictions once,
against the version's reference profile; results and reports are served; permissions and bad
input are enforced; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import select

from medops.audit.tables import AuditEvent
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.permissions import Role
from medops.monitoring.tables import MonitoringProfile, MonitoringResult
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.http import bearer
from tests.helpers.monitoring_windows import serve_with_outcomes
from tests.helpers.people import make_user
from tests.helpers.registry import DEPLOYMENT, deploy, predict, random_records


def serve_a_day(http: httpx.Client, clin: dict[str, str], clock: FixedClock, n: int = 120) -> None:
    """``n`` predictions, each given its outcome (the predicted label), then the day ends."""
    serve_with_outcomes(http, clin, clock, n, timedelta(days=1))


def test_a_run_computes_each_complete_day_once_and_serves_it(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """The first run builds the profile and computes the finished day; a second run finds
    nothing due; results, the JSON document and the HTML report (with its chart) are served;
    the run is audited."""
    clin, mle = deployed["clin"], deployed["mle"]
    serve_a_day(http, clin, clock)
    first = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert first.status_code == 200, first.text
    computed = first.json()["computed"]
    assert len(computed) == 1
    assert computed[0]["deployment"] == DEPLOYMENT
    assert computed[0]["rows"] == 120
    assert computed[0]["labelled"] == 120
    again = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert again.json()["computed"] == []
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringProfile)).all()) == 1
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "monitoring.run")
        ).all()
    assert len(actions) == 1  # the empty second run changed nothing and recorded nothing

    results = http.get(
        "/api/v1/monitoring/results", params={"deployment": DEPLOYMENT}, headers=clin
    )
    assert results.status_code == 200, results.text
    assert [r["start"] for r in results.json()] == [computed[0]["start"]]
    document = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()
    result = document["result"]
    assert set(result["features"]) == set(random_records(1)[0])
    assert result["performance"]["metrics"]["accuracy"]["value"] == 1.0  # outcome = label
    page = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT},
        headers=clin | {"accept": "text/html"},
    )
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text
    assert DEPLOYMENT in page.text


def test_monitoring_permissions_and_bad_input(
    http: httpx.Client,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Auditors read but do not run; a clinician reads; an unknown window kind is a 422 naming
    the field; a deployment with no computed window is a 404."""
    serve_a_day(http, deployed["clin"], clock, n=40)
    refused = http.post("/api/v1/monitoring/run", json={}, headers=deployed["aud"])
    assert refused.status_code == 403
    bad = http.post("/api/v1/monitoring/run", json={"window": "month"}, headers=deployed["mle"])
    assert bad.status_code == 422
    assert "window" in bad.text
    missing = http.get(
        "/api/v1/monitoring/report", params={"deployment": "nowhere"}, headers=deployed["aud"]
    )
    assert missing.status_code == 404
    assert http.post("/api/v1/monitoring/run", json={}, headers=deployed["mle"]).status_code == 200
    listed = http.get(
        "/api/v1/monitoring/results", params={"deployment": DEPLOYMENT}, headers=deployed["aud"]
    )
    assert listed.status_code == 200
    assert len(listed.json()) == 1


def test_concurrent_runs_store_each_window_once(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    client_for: Callable[..., tuple[httpx.Client, Services]],
    deployed: dict[str, dict[str, str]],
) -> None:
    """Two runs at once (the scheduler of two replicas) store the day once between them:
    the later writer skips what the first stored, neither fails."""
    serve_a_day(http, deployed["clin"], clock, n=40)
    _, other = client_for()
    ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda s: s.monitoring.run(ctx, "day"), [services, other]))
    assert sorted(len(r.computed) for r in runs) == [0, 1]
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringResult)).all()) == 1


def test_outcomes_arriving_later_update_the_window_and_reconcile_the_estimate(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A day computed before any outcome shows CBPE's estimate and no realized metrics; once
    outcomes arrive, the next run computes that day again (same row, audited as updated),
    with realized metrics and the estimate reconciled with them; a further run finds nothing
    new."""
    clin, mle = deployed["clin"], deployed["mle"]
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in
                        enumerate(random_records(120, seed=4))]}  # fmt: skip
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    clock.advance(timedelta(days=1))
    first = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle).json()
    assert [c["labelled"] for c in first["computed"]] == [0]
    assert first["updated"] == []
    before = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()["result"]
    assert before["estimated"]["status"] == "ok"
    assert before["estimated"]["rows"] == 120
    assert 0.0 <= before["estimated"]["metrics"]["accuracy"]["value"] <= 1.0
    assert before["reconciliation"] is None
    assert before["performance"]["status"] == "insufficient-data"
    scraped = http.get("/metrics").text
    assert "medops_monitoring_window_drifted{" in scraped
    assert "medops_monitoring_realized_accuracy{" not in scraped  # no outcomes yet

    clock.advance(timedelta(hours=2))
    for p in answer.json()["predictions"]:
        recorded = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]}, headers=clin
        )
        assert recorded.status_code == 201, recorded.text
    clock.advance(timedelta(minutes=5))
    second = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle).json()
    assert second["computed"] == []
    assert [(u["start"], u["labelled"]) for u in second["updated"]] == [
        (first["computed"][0]["start"], 120)
    ]
    after = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()["result"]
    assert after["estimated"] == before["estimated"]  # same rows, same estimate
    assert after["performance"]["metrics"]["accuracy"]["value"] == 1.0  # outcome = label
    reconciled = after["reconciliation"]
    assert reconciled["coverage"] == 1.0
    assert reconciled["labelled"] == 120
    accuracy = reconciled["metrics"]["accuracy"]
    assert accuracy["realized"] == 1.0
    assert accuracy["difference"] == 1.0 - accuracy["estimated"]
    page = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT},
        headers=clin | {"accept": "text/html"},
    ).text
    assert "Estimated performance (CBPE)" in page
    assert "Realized on 120 rows with outcomes (100% of the window)" in page
    labels = f'deployment="{DEPLOYMENT}",version="1",window="day"'
    scraped = http.get("/metrics").text
    assert f"medops_monitoring_realized_accuracy{{{labels}}} 1.0" in scraped
    baseline = after["performance"]["metrics"]["accuracy"]["baseline"]
    assert f"medops_monitoring_baseline_accuracy{{{labels}}} {float(baseline)}" in scraped
    estimate = before["estimated"]["metrics"]["accuracy"]["value"]
    assert f"medops_monitoring_estimated_accuracy{{{labels}}} {estimate}" in scraped
    assert f"medops_monitoring_window_alerts{{{labels}}} {len(after['alerts'])}.0" in scraped
    third = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle).json()
    assert third["updated"] == []
    assert third["computed"] == []
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringResult)).all()) == 1
        details = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "monitoring.run")
        ).all()
    assert [d["updated"] for d in map(_details, details)] == [0, 1]


def _details(value: object) -> dict[str, object]:
    import json

    return value if isinstance(value, dict) else json.loads(str(value))


def test_count_windows_hold_n_consecutive_predictions(
    http: httpx.Client,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """count:50 over one batch of 120 predictions (one timestamp): two complete windows,
    numbered 0 and 1, the last 20 wait; 40 more complete the third, compared with the second;
    results and reports are served per count kind; bad sizes are 422s naming the window."""
    clin, mle = deployed["clin"], deployed["mle"]
    serve_a_day(http, clin, clock, n=120)
    first = http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=mle)
    assert first.status_code == 200, first.text
    computed = first.json()["computed"]
    assert [(c["rows"], c["window"]) for c in computed] == [(50, "count:50")] * 2
    assert computed[0]["start"] == computed[1]["start"]  # one batch, one timestamp
    assert http.post("/api/v1/monitoring/run", json={"window": "count:50"},
                     headers=mle).json()["computed"] == []  # fmt: skip
    serve_a_day(http, clin, clock, n=40)
    third = http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=mle).json()
    assert [c["rows"] for c in third["computed"]] == [50]
    assert third["computed"][0]["start"] == computed[0]["start"]  # 20 old rows, 30 new
    listed = http.get(
        "/api/v1/monitoring/results",
        params={"deployment": DEPLOYMENT, "window": "count:50"},
        headers=clin,
    ).json()
    assert len(listed) == 3
    report = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT, "window": "count:50"},
        headers=clin,
    ).json()
    assert report["result"]["previous"] is not None  # compared with the window before
    assert report["sequence"] == 2
    second = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT, "window": "count:50", "sequence": 1, "version": 1},
        headers=clin,
    ).json()
    assert (second["sequence"], second["start"]) == (1, computed[0]["start"])
    latest_any = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()
    assert (latest_any["window"], latest_any["sequence"]) == ("count:50", 2)
    missing = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT, "version": 7},
        headers=clin,
    )
    assert missing.status_code == 404
    assert "version 7" in missing.json()["detail"]
    days = http.get(
        "/api/v1/monitoring/results", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()
    assert days == []  # count windows are their own series
    for bad in ("count:5", "count:x", "count:", "fortnight"):
        answer = http.post("/api/v1/monitoring/run", json={"window": bad}, headers=mle)
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "window" in answer.text
        listed_bad = http.get(
            "/api/v1/monitoring/results",
            params={"deployment": DEPLOYMENT, "window": bad},
            headers=clin,
        )
        assert listed_bad.status_code == 422, bad


def test_a_long_silence_in_the_log_is_stepped_over(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Predictions, then none for 600 days (14,400 hourly windows, more than one run's bound
    of 10,000), then predictions again: the next hourly run computes the new hour at once."""
    clin, mle = deployed["clin"], deployed["mle"]
    serve_a_day(http, clin, clock, n=40)
    first = http.post("/api/v1/monitoring/run", json={"window": "hour"}, headers=mle).json()
    assert len(first["computed"]) == 1
    clock.advance(timedelta(days=600))
    ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
    late = bearer(make_user(services, "late-clinician", Role.CLINICIAN))  # old tokens expired
    serve_a_day(http, late, clock, n=40)
    summary = services.monitoring.run(ctx, "hour")
    second = {"computed": summary.computed}
    assert len(second["computed"]) == 1
    assert second["computed"][0]["start"][:10] > first["computed"][0]["start"][:10]
    assert second["computed"][0]["rows"] == 40


def test_outcomes_update_the_count_window_they_belong_to_when_starts_tie(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """One batch of 120 (one timestamp) makes count:50 windows 0 and 1 with the same start;
    outcomes for window 0's rows bring window 0 up to date, not window 1."""
    from medops.serving.tables import Prediction

    clin, mle = deployed["clin"], deployed["mle"]
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in
                        enumerate(random_records(120, seed=3))]}  # fmt: skip
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    labels = {p["id"]: p["label"] for p in answer.json()["predictions"]}
    clock.advance(timedelta(days=1))
    first = http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=mle).json()
    assert [c["labelled"] for c in first["computed"]] == [0, 0]
    with services.db.session() as session:
        in_log_order = session.scalars(
            select(Prediction.id).order_by(Prediction.occurred_at, Prediction.id)
        ).all()
    clock.advance(timedelta(hours=2))
    for prediction in in_log_order[:50]:
        recorded = http.post(
            f"/api/v1/predictions/{prediction}/outcome",
            json={"label": labels[prediction]},
            headers=clin,
        )
        assert recorded.status_code == 201, recorded.text
    clock.advance(timedelta(minutes=5))
    http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=mle)
    with services.db.session() as session:
        stored = session.scalars(select(MonitoringResult).order_by(MonitoringResult.sequence))
        assert [(r.sequence, r.labelled) for r in stored] == [(0, 50), (1, 0)]


def test_a_version_that_cannot_be_monitored_does_not_stop_the_others(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Version 2's model file is lost from the blob store: its windows are skipped with the
    reason, version 1's day is still computed and stored."""
    import uuid

    from sqlalchemy import inspect

    from medops.audit.service import exempt_from_audit_guard
    from medops.registry.tables import ModelVersion
    from medops.serving.tables import Prediction
    from tests.helpers.registry import ready_version

    number = ready_version(http, deployed, c=0.5)
    serve_a_day(http, deployed["clin"], clock, n=40)
    columns = [attr.key for attr in inspect(Prediction).column_attrs]
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # test set-up, as a canary's log would hold them
        for row in session.scalars(select(Prediction)).all():  # logged under v2 as well
            copy = {key: getattr(row, key) for key in columns}
            session.add(Prediction(**copy | {"id": uuid.uuid4().hex, "version": number}))
        digest = session.scalars(
            select(ModelVersion.artifact_digest).where(ModelVersion.version == number)
        ).one()
    blob = services.settings.blob_dir / "objects" / digest[:2] / digest  # encrypted at rest
    assert blob.exists()
    blob.unlink()
    answer = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=deployed["mle"])
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert [(c["version"], c["rows"]) for c in summary["computed"]] == [(1, 40)]
    assert [s["version"] for s in summary["skipped"]] == [str(number)]
    assert summary["skipped"][0]["reason"].startswith("cannot monitor this version: blob")


def test_two_deployments_serving_one_version_share_its_profile(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A second deployment serving the same version: one run builds the version's profile
    once and computes each deployment's day; the next run reuses it (it was a 500 with
    nothing stored, for ever after)."""
    clin, mle = deployed["clin"], deployed["mle"]
    assert deploy(http, mle, name="diabetes-ward").status_code == 201
    body = {"records": [{"features": r} for r in random_records(60, seed=5)]}
    assert predict(http, clin, body, name="diabetes-ward").status_code == 200
    serve_a_day(http, clin, clock)
    first = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert first.status_code == 200, first.text
    computed = first.json()["computed"]
    assert sorted(w["deployment"] for w in computed) == [DEPLOYMENT, "diabetes-ward"]
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringProfile)).all()) == 1
    assert predict(http, clin, body, name="diabetes-ward").status_code == 200
    clock.advance(timedelta(days=1))
    second = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert second.status_code == 200, second.text
    assert [w["deployment"] for w in second.json()["computed"]] == ["diabetes-ward"]
