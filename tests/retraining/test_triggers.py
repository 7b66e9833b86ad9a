"""Retraining triggers: a schedule, a monitoring verdict from real drifted predictions,
labelled data reaching a size; each firing recorded and audited, deduplicated while a run is
active, and nothing fired while paused."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from medops.api.app import create_app
from medops.client import Client
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.errors import InvalidInputError
from medops.jobs import JobLease, process_holder
from medops.retraining.job_schemas import RunOut, RunRecord, TriggerIn
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.registry import DEPLOYMENT, NAME, predict, random_records
from tests.helpers.training import add_training_data, audit_actions, sdk, spec, training_table


@pytest.fixture
def api(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    tmp_path: Any,
) -> Client:
    """An ML engineer's SDK client; the model has a training spec and a dataset version."""
    mle = sdk(http, settings, deployed["mle"])
    mle.configure_training(NAME, spec())
    add_training_data(mle, tmp_path / "data", training_table(120), "v1")
    return mle


def _evaluation_rows(n: int, *, bmi_shift: float = 0.0) -> list[dict[str, Any]]:
    """The first ``n`` rows of the evaluation split (the reference), bmi moved by
    ``bmi_shift`` (a changed population)."""
    _, x_eval, _, _ = model_data.frames()
    records: list[dict[str, Any]] = x_eval.iloc[:n].to_dict("records")
    for r in records:
        r["bmi"] = min(float(r["bmi"]) + bmi_shift, 80.0)
    return records


def test_a_schedule_fires_once_per_period(api: Client, clock: FixedClock) -> None:
    """Nothing before the period has passed; one run after it; the next period's firing
    while that run is active is recorded as deduplicated, not a second run."""
    trigger = api.create_training_trigger(
        TriggerIn(model=NAME, kind="schedule", every_seconds=3600)
    )
    clock.advance(timedelta(minutes=59))
    assert api.evaluate_training_triggers().events == []
    clock.advance(timedelta(minutes=2))
    fired = api.evaluate_training_triggers().events
    assert [(e.outcome, e.trigger_id) for e in fired] == [("fired", trigger.id)]
    run = api.training_run(fired[0].run_id or "")
    assert (run.trigger_id, run.status) == (trigger.id, "queued")
    assert run.reason.startswith("schedule: every 3600 s")
    clock.advance(timedelta(minutes=30))
    assert api.evaluate_training_triggers().events == []  # the period restarted at the firing
    clock.advance(timedelta(minutes=31))
    again = api.evaluate_training_triggers().events
    assert [(e.outcome, e.run_id) for e in again] == [("deduplicated", run.id)]
    assert len(api.training_runs(NAME)) == 1


def test_the_server_evaluates_triggers_by_itself_under_its_lease(
    api: Client, clock: FixedClock, services: Services
) -> None:
    """With MEDOPS_TRAINING_TRIGGER_SECONDS set, a server's own loop (the training.triggers
    lease) fires a schedule that is due and queues its run; nobody calls evaluate."""
    trigger = api.create_training_trigger(
        TriggerIn(model=NAME, kind="schedule", every_seconds=3600)
    )
    clock.advance(timedelta(minutes=61))
    services.settings = services.settings.model_copy(update={"training_trigger_seconds": 0.05})
    server = create_app(services=services, owns_services=False)
    runs: list[RunOut] = []
    with httpx.Client(transport=EmbeddedTransport(server), base_url="https://testserver"):
        for _ in range(200):
            runs = api.training_runs(NAME)
            if runs:
                break
            time.sleep(0.05)
    assert [(r.trigger_id, r.status) for r in runs] == [(trigger.id, "queued")]
    with services.db.session() as session:
        lease = session.get(JobLease, "training.triggers")
    assert lease is not None
    assert lease.holder == process_holder(services)


def test_a_paused_trigger_does_not_fire_and_resumes_from_now(
    api: Client, clock: FixedClock, http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """Paused, a due schedule fires nothing; resumed, it does not fire for what passed
    while paused... only once due again from its last firing; pause and resume are audited."""
    trigger = api.create_training_trigger(TriggerIn(model=NAME, kind="schedule", every_seconds=600))
    api.pause_training_trigger(trigger.id, "maintenance window")
    clock.advance(timedelta(hours=2))
    assert api.evaluate_training_triggers().checked == 0
    assert api.training_runs(NAME) == []
    resumed = api.resume_training_trigger(trigger.id, "done")
    assert not resumed.paused
    assert audit_actions(http, deployed["aud"], "training.trigger.") == [
        "training.trigger.create",
        "training.trigger.pause",
        "training.trigger.resume",
    ]


def test_a_drift_verdict_fires_a_retraining(
    api: Client,
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    clock: FixedClock,
) -> None:
    """Stable windows fire nothing; a monitoring window with a covariate-shift verdict,
    computed from drifted predictions, fires one run whose reason names it."""
    trigger = api.create_training_trigger(
        TriggerIn(model=NAME, kind="monitoring", deployment=DEPLOYMENT)
    )
    clin, mle = deployed["clin"], deployed["mle"]

    def serve_and_monitor(records: list[dict[str, Any]]) -> list[str]:
        assert predict(http, clin, {"records": [{"features": r} for r in records]}).is_success
        clock.advance(timedelta(hours=1, minutes=2))  # the hour is over, and its grace
        ran = http.post("/api/v1/monitoring/run", json={"window": "hour"}, headers=mle)
        assert ran.status_code == 200, ran.text
        windows = http.get(
            "/api/v1/monitoring/results",
            params={"deployment": DEPLOYMENT, "window": "hour"},
            headers=mle,
        ).json()
        return [w["verdict"] for w in windows]

    assert serve_and_monitor(_evaluation_rows(120)) == ["stable"]
    assert api.evaluate_training_triggers().events == []
    assert serve_and_monitor(_evaluation_rows(120, bmi_shift=8.0)) == ["covariate-shift", "stable"]
    events = api.evaluate_training_triggers().events
    assert [(e.outcome, e.trigger_id) for e in events] == [("fired", trigger.id)]
    assert "monitoring: covariate-shift in diabetes" in events[0].detail
    assert api.evaluate_training_triggers().events == []  # the window was consumed


def test_labelled_data_reaching_a_size_fires(
    api: Client, http: httpx.Client, deployed: dict[str, dict[str, str]], clock: FixedClock
) -> None:
    """Outcomes recorded for the model's predictions count towards min_labelled; 30 of 40
    fire nothing, 40 fire one run."""
    api.create_training_trigger(TriggerIn(model=NAME, kind="labelled-data", min_labelled=40))
    clock.advance(timedelta(seconds=1))
    clin = deployed["clin"]
    answer = predict(http, clin, {"records": [{"features": r} for r in random_records(40)]})
    ids = [p["id"] for p in answer.json()["predictions"]]
    for n, prediction in enumerate(ids):
        if n == 30:
            assert api.evaluate_training_triggers().events == []
        recorded = http.post(
            f"/api/v1/predictions/{prediction}/outcome", json={"label": 1}, headers=clin
        )
        assert recorded.status_code == 201, recorded.text
    events = api.evaluate_training_triggers().events
    assert [e.outcome for e in events] == ["fired"]
    assert "40 new outcomes" in events[0].detail


def test_a_trigger_that_cannot_request_records_the_failure(api: Client, clock: FixedClock) -> None:
    """A due trigger of a model whose dataset version was pinned away is recorded as
    failed with the reason, and fires again once fixed (the run ends, a new one starts)."""
    api.create_training_trigger(TriggerIn(model=NAME, kind="schedule", every_seconds=60))
    clock.advance(timedelta(minutes=2))
    first = api.evaluate_training_triggers().events
    run = api.training_run(first[0].run_id or "")
    api.start_training_run(run.id)
    api.finish_training_run(run.id, RunRecord(status="failed", error="by hand"))
    api.configure_training(NAME, spec(dataset="no-such-data"))
    clock.advance(timedelta(minutes=2))
    failed = api.evaluate_training_triggers().events
    assert [e.outcome for e in failed] == ["failed"]
    assert "no dataset version no-such-data" in failed[0].detail


def test_trigger_definitions_are_checked() -> None:
    """A schedule needs its period, a monitoring trigger its deployment, a labelled-data
    trigger its size."""
    for kind in ("schedule", "monitoring", "labelled-data"):
        with pytest.raises(ValueError, match=f"a {kind} trigger needs"):
            TriggerIn(model=NAME, kind=kind)


def test_a_monitoring_trigger_names_a_deployment_of_its_model(api: Client) -> None:
    """A deployment that does not serve the model is refused."""
    with pytest.raises(InvalidInputError, match="no deployment 'elsewhere'"):
        api.create_training_trigger(
            TriggerIn(model=NAME, kind="monitoring", deployment="elsewhere")
        )
