"""The runner: takes a queued training run, trains on its pinned data in a subprocess, converts
the fitted model to ONNX on this side, registers it as a candidate version and reports the run's
record. Used by ``medops train run`` (a workstation), ``medops train execute RUN`` (the
Kubernetes Job's command) and ``medops train work`` (takes every queued run).

Everything goes through the SDK: the run is claimed (``training.start``), the pinned dataset
file is read on the server (audited with the run as its purpose), the candidate is registered
with the same dataset version as its training data (so the registry draws the lineage edge and
the server checks the pin at ``training.finish``), the champion's signature (same features,
demographic attributes and bands: a retraining may not change the schema) and the champion's
validation and reference pins.

The entry point runs in a child process (``python -m medops.retraining.entrypoints SPEC``):
the user's code never runs in the runner's process, its output (stdout and stderr) is captured
as the run's logs, and a timeout ends it. A Python entry point ``module:function`` is called
as ``function(data, params)`` with the training table as a pandas DataFrame; the child converts
what it returns with ``medops.packaging.package_model`` (parity measured on the training rows)
and writes the package beside. A container ``command`` gets ``MEDOPS_TRAIN_DATA``,
``MEDOPS_TRAIN_PARAMS`` and ``MEDOPS_TRAIN_OUTPUT`` and must write ``model.onnx`` there (and
may write ``metrics.json``: {name: number}).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess  # nosec B404 - the runner starts git and the model's own entry point, never a shell
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from medops.retraining.job_schemas import MAX_LOG_CHARS, RunOut, RunRecord

if TYPE_CHECKING:
    from medops.client import Client
    from medops.core.signature import ModelSignature
    from medops.packaging import Package

PACKAGES = ("medops", "numpy", "scikit-learn", "onnx", "onnxruntime", "pandas", "skl2onnx")
CHAMPION_ALIAS = "production"


@dataclass(frozen=True)
class ChildSpec:
    """What the child process is told (written as JSON)."""

    entry_point: str
    data: str
    label: str
    parameters: dict[str, Any]
    signature: dict[str, Any]
    output: str


def environment() -> dict[str, str]:
    """The runner's environment as recorded with the run: Python, platform and the versions
    of the packages a model's numbers depend on."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def git_commit(folder: Path) -> str | None:
    """The commit checked out at ``folder`` (None outside a git work tree or without git)."""
    try:
        answer = subprocess.run(  # noqa: S603  # nosec B603 B607 - fixed argument list (git from PATH), no shell
            ["git", "-C", str(folder), "rev-parse", "HEAD"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = answer.stdout.strip()
    return commit if answer.returncode == 0 and len(commit) >= 7 else None


def champion(api: Client, model: str) -> int:
    """The version a candidate is trained to replace: production, else the newest."""
    found = api.get_model(model)
    number = found.aliases.get(CHAMPION_ALIAS, found.latest_version)
    if number is None:
        msg = f"model {model!r} has no version to take the signature from"
        raise ValueError(msg)
    return number


def execute(api: Client, run_id: str, *, workdir: Path | None = None) -> RunOut:
    """Claim run ``run_id``, train, register the candidate and report; returns the ended run.
    A failure of the entry point (or of its conversion or registration) ends the run as
    ``failed`` with its logs and the error."""
    run = api.start_training_run(run_id)
    logs = ""
    commit: str | None = None
    champ: Any = None
    try:
        with tempfile.TemporaryDirectory(prefix="medops-train-", dir=workdir) as folder:
            work = Path(folder)
            champ = api.get_version(f"{run.model}/{champion(api, run.model)}")
            data = work / "data" / PurePosixPath(run.spec.path).name
            data.parent.mkdir()
            data.write_bytes(
                api.read_dataset_file(run.dataset, run.spec.path, f"training run {run.id}")
            )
            output = work / "out"
            output.mkdir()
            logs, commit = _train(run, champ.signature, data, output)
            package = _package(run, champ.signature, output)
            pins = champ.lineage.get("datasets", {})
            version = api.register_package(
                run.model,
                package,
                description=f"candidate from training run {run.id}: {run.reason}"[:10_000],
                training_data={"dataset": run.dataset},
                validation_data=_pin(pins, "validation"),
                reference_data=_pin(pins, "reference"),
                code={"commit": commit, "path": run.spec.entry_point} if commit else None,
                tags={**run.spec.tags, "training_run": run.id, "candidate": "true"},
            )
    except Exception as exc:  # noqa: BLE001 - any failure ends the run, recorded
        if isinstance(exc, TrainingFailedError) and exc.logs:
            logs = exc.logs
        record = RunRecord(
            status="failed",
            code_commit=commit,
            environment=environment(),
            logs=logs[-MAX_LOG_CHARS:],
            error=f"{type(exc).__name__}: {exc}"[:4000],
        )
        return api.finish_training_run(run_id, record)
    record = RunRecord(
        status="succeeded",
        candidate_version=version.version,
        code_commit=commit,
        environment=environment(),
        logs=logs[-MAX_LOG_CHARS:],
    )
    try:
        record = follow_up(api, run, champ.version, version.version, record)
    except Exception as exc:  # noqa: BLE001 - the candidate stands; the step that failed is named
        record = record.model_copy(update={"error": f"after registration: {exc}"[:4000]})
    return api.finish_training_run(run_id, record)


def follow_up(
    api: Client, run: RunOut, champion_version: int, candidate: int, record: RunRecord
) -> RunRecord:
    """What the spec asks after registration: a validation report, the champion's card,
    the candidate report under the active plan, and the rollout it allows (or the stop that
    waits for the full approval path). Returns the record with the report and rollout."""
    spec = run.spec
    ref = f"{run.model}/{candidate}"
    if spec.validation is not None:
        api.validate_from_dataset(
            ref, dataset=spec.validation.dataset, path=spec.validation.path,
            label=spec.validation.label,
        )  # fmt: skip
    if spec.copy_card:
        api.copy_card(f"{run.model}/{champion_version}", ref)
    if not spec.evaluate:
        return record
    recent = None
    if spec.recent is not None:
        newest = api.dataset_version(spec.recent.dataset)  # NAME: its newest version
        recent = {"dataset": newest.version.ref, "path": spec.recent.path}
    report = api.evaluate_candidate(run.model, candidate, recent)
    update: dict[str, Any] = {"candidate_report": report.id, "within_plan": report.within_plan}
    if spec.deployment is not None:
        rollout = api.start_rollout(run.model, candidate, spec.deployment)
        update |= {"rollout": rollout.id, "rollout_state": rollout.state}
    return record.model_copy(update=update)


def _pin(pins: dict[str, Any], role: str) -> dict[str, str] | None:
    found = pins.get(role)
    return {"dataset": str(found["dataset"])} if isinstance(found, dict) else None


class TrainingFailedError(RuntimeError):
    """The entry point exited non-zero, timed out or wrote no model (with its output)."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


def _train(
    run: RunOut, signature: ModelSignature, data: Path, output: Path
) -> tuple[str, str | None]:
    """Run the entry point in a child process; returns (its output, the code's commit)."""
    spec = run.spec
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if spec.entry_point is not None:
        child = ChildSpec(
            entry_point=spec.entry_point,
            data=str(data),
            label=spec.label,
            parameters=run.parameters,
            signature=signature.model_dump(mode="json"),
            output=str(output),
        )
        spec_file = output.parent / "child.json"
        spec_file.write_text(json.dumps(asdict(child)))
        command = [sys.executable, "-m", "medops.retraining.entrypoints", str(spec_file)]
        env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), *sys.path])
    else:
        assert spec.command is not None
        command = list(spec.command)
        env |= {
            "MEDOPS_TRAIN_DATA": str(data),
            "MEDOPS_TRAIN_PARAMS": json.dumps(run.parameters),
            "MEDOPS_TRAIN_OUTPUT": str(output),
            "MEDOPS_TRAIN_RUN": run.id,
        }
    try:
        done = subprocess.run(  # noqa: S603  # nosec B603 - the model's declared entry point, no shell
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=spec.timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode(errors="replace")
        raise TrainingFailedError(f"timed out after {spec.timeout_seconds} s", partial) from None
    logs = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise TrainingFailedError(f"the entry point exited with status {done.returncode}", logs)
    commit_file = output / "commit.txt"
    commit = commit_file.read_text().strip() if commit_file.exists() else git_commit(Path.cwd())
    return logs, commit or None


def _package(run: RunOut, signature: ModelSignature, output: Path) -> Package:
    from medops.packaging import Package
    from medops.packaging.parity import ParityEvidence

    onnx = output / "model.onnx"
    if not onnx.exists():
        msg = f"the entry point wrote no model.onnx into {output}"
        raise TrainingFailedError(msg)
    described = output / "package.json"
    meta: dict[str, Any] = json.loads(described.read_text()) if described.exists() else {}
    metrics_file = output / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    parity = meta.get("parity")
    return Package(
        onnx=onnx.read_bytes(),
        signature=signature,
        framework=str(meta.get("framework", "onnx")),
        parity=ParityEvidence(**parity) if parity else None,
        hyperparameters=meta.get("hyperparameters", {}),
        lineage={
            "training_run": run.id,
            "trigger": run.trigger_id,
            "reason": run.reason,
            "training_parameters": run.parameters,
        },
        training_metrics={str(k): float(v) for k, v in (meta.get("metrics") or metrics).items()},
    )


# -- the child process ------------------------------------------------------------------------


def _source_commit(module: Any) -> str | None:
    path = getattr(module, "__file__", None)
    return git_commit(Path(path).parent) if path else None


def child_main(spec_path: str) -> None:
    """The child: load the training table, call the entry point, convert and write the
    package into the output folder."""
    import pandas as pd  # type: ignore[import-untyped]

    from medops.core.signature import ModelSignature
    from medops.packaging import package_model
    from medops.packaging.package import summarize_params

    spec = ChildSpec(**json.loads(Path(spec_path).read_text()))
    signature = ModelSignature.model_validate(spec.signature)
    path = Path(spec.data)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    module_name, _, function_name = spec.entry_point.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)
    print(  # noqa: T201 - the child's output is the run's log
        f"medops: training {spec.entry_point} on {path.name}: {len(frame)} rows, "
        f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}",
        flush=True,
    )
    fitted = function(frame, dict(spec.parameters))
    features = [f.name for f in signature.inputs]
    sample = frame[features]
    package = package_model(fitted, sample=sample, signature=signature)
    output = Path(spec.output)
    (output / "model.onnx").write_bytes(package.onnx)
    parity = asdict(package.parity) if package.parity else None
    meta = {
        "framework": package.framework,
        "hyperparameters": package.hyperparameters or summarize_params(fitted),
        "metrics": package.training_metrics,
        "parity": parity,
    }
    (output / "package.json").write_text(json.dumps(meta, default=str))
    commit = _source_commit(module)
    if commit:
        (output / "commit.txt").write_text(commit)
    print("medops: converted to ONNX, parity checked", flush=True)  # noqa: T201


if __name__ == "__main__":  # pragma: no cover - run as the child process
    child_main(sys.argv[1])
