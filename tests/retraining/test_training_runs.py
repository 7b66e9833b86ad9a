"""Training runs end to end through the SDK and the real runner: the pinned dataset version,
the entry point in a child process, the candidate registered with its lineage, the record, one
run at a time per model, and failures recorded with their logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medops.config import Settings
from medops.errors import InvalidInputError, PermissionDeniedError, TrainingBusyError
from medops.retraining.entrypoints import execute
from medops.retraining.job_schemas import RunRecord, RunRequest
from medops.retraining.jobs import LOST_RUNNER_GRACE
from medops.testing import FixedClock
from tests.helpers.registry import NAME
from tests.helpers.training import (
    DATASET,
    add_training_data,
    audit_actions,
    sdk,
    spec,
    training_table,
)

pytestmark = pytest.mark.slow  # each run starts a Python child process


def test_a_run_trains_on_the_newest_pinned_data_and_registers_a_candidate_with_lineage(
    app: FastAPI,
    settings: Settings,
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """The run pins the dataset's newest version, the child's output is the run's log, and
    the candidate (v2) pins that version as its training data, with the champion's
    signature, the parameters and the run in its lineage; every step is audited."""
    ds = sdk(http, settings, deployed["ds"])
    mle = sdk(http, settings, deployed["mle"])
    add_training_data(ds, tmp_path / "a", training_table(200), "first 200 rows")
    newest = add_training_data(ds, tmp_path / "b", training_table(), "all rows")
    mle.configure_training(NAME, spec())
    queued = ds.request_training_run(NAME, RunRequest(reason="more data", parameters={"C": 0.5}))
    assert (queued.status, queued.dataset) == ("queued", f"{DATASET}@{newest}")
    assert queued.parameters == {"C": 0.5}

    done = execute(ds, queued.id, workdir=tmp_path)

    assert done.status == "succeeded", done.error
    assert done.candidate_version == 2
    logs = ds.training_logs(done.id).logs
    assert "fitting on 309 rows with C=0.5" in logs
    assert "converted to ONNX" in logs
    assert done.environment["python"]
    assert "scikit-learn" in done.environment
    candidate = ds.get_version(f"{NAME}/2")
    champion = ds.get_version(f"{NAME}/1")
    assert candidate.lineage["datasets"]["training"]["dataset"] == f"{DATASET}@{newest}"
    assert candidate.lineage["training_run"] == done.id
    assert candidate.tags == {"training_run": done.id, "candidate": "true"}
    assert candidate.signature == champion.signature
    assert candidate.parity is not None
    assert candidate.parity.max_abs_diff < 1e-4
    assert candidate.hyperparameters["logisticregression__C"] == 0.5
    assert candidate.lineage["training_parameters"] == {"C": 0.5}
    graph = http.get(
        "/api/v1/lineage", params={"ref": f"model:{NAME}/2"}, headers=deployed["mle"]
    ).json()
    assert f"{DATASET}@{newest}" in str(graph)
    assert audit_actions(http, deployed["aud"], "training.") == [
        "training.configure",
        "training.request",
        "training.start",
        "training.finish",
    ]


def test_one_retraining_at_a_time_per_model(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """A second request while a run is queued is refused (409 training-busy) and recorded as
    a deduplicated event; once the run ends, a new one may be requested."""
    ds = sdk(http, settings, deployed["ds"])
    sdk(http, settings, deployed["mle"]).configure_training(NAME, spec())
    add_training_data(ds, tmp_path / "a", training_table(150), "v1")
    first = ds.request_training_run(NAME, RunRequest(reason="first"))
    with pytest.raises(TrainingBusyError):
        ds.request_training_run(NAME, RunRequest(reason="second"))
    events = ds.training_events(NAME)
    assert [(e.outcome, e.run_id) for e in events] == [
        ("deduplicated", first.id),
        ("fired", first.id),
    ]
    assert len(ds.training_runs(NAME)) == 1
    ds.start_training_run(first.id)
    ds.finish_training_run(first.id, RunRecord(status="failed", error="stopped by hand"))
    second = ds.request_training_run(NAME, RunRequest(reason="again"))
    assert second.status == "queued"


def test_a_failing_entry_point_ends_the_run_failed_with_its_output(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """The child's exception is the run's error; what it printed is in the logs; nothing is
    registered and the model is free for the next run."""
    ds = sdk(http, settings, deployed["ds"])
    sdk(http, settings, deployed["mle"]).configure_training(
        NAME, spec("tests.helpers.training:broken")
    )
    add_training_data(ds, tmp_path / "a", training_table(100), "v1")
    run = ds.request_training_run(NAME, RunRequest(reason="try"))
    done = execute(ds, run.id, workdir=tmp_path)
    assert done.status == "failed"
    assert done.error is not None
    assert "exited with status 1" in done.error
    logs = ds.training_logs(run.id).logs
    assert "loaded 100 rows" in logs
    assert "no column 'hba1c'" in logs
    assert [v.version for v in ds.list_versions(NAME)] == [1]
    assert ds.request_training_run(NAME, RunRequest(reason="next")).status == "queued"


def test_a_run_is_finished_only_with_a_candidate_that_pins_its_data(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """A runner cannot claim v1 (which pins other data) as the run's candidate, nor finish
    a run it has not started, nor start it twice."""
    ds = sdk(http, settings, deployed["ds"])
    sdk(http, settings, deployed["mle"]).configure_training(NAME, spec())
    add_training_data(ds, tmp_path / "a", training_table(100), "v1")
    run = ds.request_training_run(NAME, RunRequest(reason="check"))
    with pytest.raises(Exception, match="not running"):
        ds.finish_training_run(run.id, RunRecord(status="failed"))
    ds.start_training_run(run.id)
    with pytest.raises(Exception, match="not queued"):
        ds.start_training_run(run.id)
    with pytest.raises(InvalidInputError, match="does not pin the run's training data"):
        ds.finish_training_run(run.id, RunRecord(status="succeeded", candidate_version=1))


def test_training_permissions(
    app: FastAPI, http: httpx.Client, settings: Settings, deployed: dict[str, dict[str, str]]
) -> None:
    """A clinician reads runs but neither configures nor requests one; a data scientist
    requests but does not configure."""
    clin = sdk(http, settings, deployed["clin"])
    ds = sdk(http, settings, deployed["ds"])
    assert clin.training_runs() == []
    with pytest.raises(PermissionDeniedError):
        clin.request_training_run(NAME, RunRequest(reason="x"))
    with pytest.raises(PermissionDeniedError):
        ds.configure_training(NAME, spec())


def test_a_run_needs_a_spec_and_a_dataset_version(
    app: FastAPI, http: httpx.Client, settings: Settings, deployed: dict[str, dict[str, str]]
) -> None:
    """Without a spec, or without any version of its dataset, a request is a 422 naming
    what is missing."""
    ds = sdk(http, settings, deployed["ds"])
    with pytest.raises(InvalidInputError, match="no training specification"):
        ds.request_training_run(NAME, RunRequest(reason="x"))
    sdk(http, settings, deployed["mle"]).configure_training(NAME, spec())
    with pytest.raises(InvalidInputError, match="no dataset version diabetes-train"):
        ds.request_training_run(NAME, RunRequest(reason="x"))


def test_a_run_whose_runner_went_silent_expires_at_the_next_request(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    """A run taken by a runner that never reports blocks the model only until its timeout
    and the grace have passed; then the next request ends it as failed (audited) and queues."""
    ds = sdk(http, settings, deployed["ds"])
    sdk(http, settings, deployed["mle"]).configure_training(NAME, spec(timeout_seconds=60))
    add_training_data(ds, tmp_path / "a", training_table(100), "v1")
    lost = ds.request_training_run(NAME, RunRequest(reason="runner dies"))
    ds.start_training_run(lost.id)
    clock.advance(timedelta(seconds=60 + LOST_RUNNER_GRACE))
    with pytest.raises(TrainingBusyError):
        ds.request_training_run(NAME, RunRequest(reason="too soon"))
    clock.advance(timedelta(seconds=1))
    fresh = ds.request_training_run(NAME, RunRequest(reason="after the grace"))
    assert fresh.status == "queued"
    ended = ds.training_run(lost.id)
    assert ended.status == "failed"
    assert ended.error is not None
    assert "no report from the runner" in ended.error
