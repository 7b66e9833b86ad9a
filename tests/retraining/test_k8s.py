"""The training run as a Kubernetes Job: rendered from the run and its spec, validated
offline against Kubernetes' schemas (strict: no unknown field), locked down like the other
Jobs, with a GPU option; deploy/kubernetes/training/job.yaml is the rendering of the example
run below, kept in step with the code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from medops.config import Settings
from medops.retraining.job_schemas import RunOut, RunRequest
from medops.retraining.k8s import job_name, render_job
from tests.helpers.kubernetes import Manifest, Metadata, validate
from tests.helpers.registry import NAME
from tests.helpers.training import add_training_data, sdk, spec, training_table

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "training" / "job.yaml"
WHEN = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


def example_run(**resources: Any) -> RunOut:
    """A queued run of diabetes-risk as a monitoring trigger requests it."""
    return RunOut(
        id="tr_0000000000000001",
        model="diabetes-risk",
        status="queued",
        reason="monitoring: covariate-shift in diabetes v1 hour window 2026-12-06T06:00:00+00:00",
        trigger_id="tt_0000000000000001",
        spec_version=1,
        spec=spec(executor="kubernetes", resources=resources or {"cpu": "2", "memory": "4Gi"}),
        dataset="diabetes-train@3",
        dataset_root="sha256:" + "ab" * 32,
        parameters={"C": 1.0},
        requested_at=WHEN,
        requested_by="system",
        started_at=None,
        started_by=None,
        finished_at=None,
        candidate_version=None,
        code_commit=None,
        environment={},
        error=None,
        mlflow_run=None,
        candidate_report=None,
        within_plan=None,
        rollout=None,
        rollout_state=None,
        log_chars=0,
    )


def _manifest(document: dict[str, Any]) -> Manifest:
    return Manifest(
        api_version=document["apiVersion"],
        kind=document["kind"],
        metadata=Metadata.model_validate(document["metadata"]),
        document=document,
    )


def test_the_committed_example_is_the_rendering_of_the_example_run() -> None:
    """deploy/kubernetes/training/job.yaml equals what render_job makes of the example run
    (regenerate it with this test's example when the code changes)."""
    rendered = render_job(example_run(), Settings())
    assert yaml.safe_load(EXAMPLE.read_text()) == rendered


@pytest.mark.parametrize("gpu", [0, 1], ids=["cpu", "gpu"])
def test_the_job_validates_against_kubernetes_schemas(gpu: int) -> None:
    """The Job (with and without a GPU) is valid Kubernetes 1.32 batch/v1, strictly."""
    document = render_job(example_run(cpu="4", memory="16Gi", gpu=gpu), Settings())
    assert validate(_manifest(document)) is None


def test_the_job_runs_the_run_locked_down_with_its_resources() -> None:
    """The pod runs `medops train execute RUN` in the server's image as non-root on a
    read-only root, never retried by Kubernetes (a retry is a new run), with the spec's
    resources; a GPU asks for nvidia.com/gpu and tolerates its taint."""
    document = render_job(example_run(cpu="4", memory="16Gi", gpu=2), Settings())
    job = document["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert document["metadata"]["name"] == job_name("tr_0000000000000001")
    assert container["args"] == ["train", "execute", "tr_0000000000000001", "--json"]
    assert container["image"] == "medops"
    assert job["backoffLimit"] == 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] == {
        "cpu": "4",
        "memory": "16Gi",
        "nvidia.com/gpu": "2",
    }
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    token = next(e for e in container["env"] if e["name"] == "MEDOPS_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "medops-training-token", "key": "token"}
    cpu_only = render_job(example_run(), Settings())["spec"]["template"]["spec"]
    assert "tolerations" not in cpu_only
    assert "nvidia.com/gpu" not in cpu_only["containers"][0]["resources"]["limits"]


def test_the_spec_image_and_settings_choose_the_image_and_namespace() -> None:
    """The spec's image wins over MEDOPS_TRAINING_IMAGE; the namespace is the setting's."""
    settings = Settings(training_image="registry.example/medops:1.4", training_namespace="ml")
    document = render_job(example_run(), settings)
    assert document["metadata"]["namespace"] == "ml"
    assert document["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example/medops:1.4"
    )
    run = example_run()
    own = run.model_copy(update={"spec": run.spec.model_copy(update={"image": "trainer:2"})})
    assert render_job(own, settings)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "trainer:2"
    )


def test_the_api_renders_a_queued_runs_job(
    app: FastAPI,
    http: httpx.Client,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """`GET /training/runs/{id}/job` answers the run's Job, valid, with its pinned data."""
    mle = sdk(http, settings, deployed["mle"])
    mle.configure_training(NAME, spec(executor="kubernetes"))
    add_training_data(mle, tmp_path / "d", training_table(50), "v1")
    run = mle.request_training_run(NAME, RunRequest(reason="as a Job"))
    document = mle.training_job(run.id)
    assert validate(_manifest(document)) is None
    assert document["metadata"]["annotations"]["medops.io/dataset"] == "diabetes-train@1"
