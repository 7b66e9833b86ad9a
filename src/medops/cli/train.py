"""``medops train``: a model's training spec, runs (run here or as a Kubernetes Job, status,
logs, list), triggers (add, list, pause, resume, evaluate) and their events."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from medops.cli.common import client, read_json_file
from medops.cli.output import JsonOption, console, fail, print_json, print_table
from medops.errors import FieldError, InvalidInputError
from medops.files import write_output
from medops.retraining.job_schemas import (
    RunOut,
    RunRequest,
    TrainingSpec,
    TriggerIn,
    TriggerOut,
)

app = typer.Typer(
    help="Training: run a model's training entry point on pinned data, triggers, history.",
    no_args_is_help=True,
)
UNSET = "—"


def _when(value: object) -> str:
    return UNSET if value is None else str(value)[:19].replace("T", " ")


def _run_rows(runs: list[RunOut]) -> list[list[str]]:
    return [
        [
            r.id,
            r.model,
            r.status,
            r.dataset,
            str(r.candidate_version) if r.candidate_version else UNSET,
            _when(r.requested_at),
            r.requested_by,
            r.reason[:60],
        ]
        for r in runs
    ]


RUN_COLUMNS = ["run", "model", "status", "data", "candidate", "requested", "by", "reason"]


def _show_run(run: RunOut, json_output: bool) -> None:
    if json_output:
        print_json(run)
        return
    print_table(f"Training run {run.id}", RUN_COLUMNS, _run_rows([run]))
    if run.error:
        console.print(f"error: {run.error}", markup=False)


def _parameters(pairs: list[str]) -> dict[str, object]:
    found: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            reason = f"{pair!r} is not NAME=VALUE"
            raise InvalidInputError(reason, errors=[FieldError("param", reason)])
        try:
            value: object = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = text
        found[key] = value
    return found


def _spec(file: Path) -> TrainingSpec:
    raw = read_json_file(file, "training spec")
    try:
        return TrainingSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise InvalidInputError(
            f"{file}: {where}: {first['msg']}", errors=[FieldError(where, first["msg"])]
        ) from None


@app.command("configure")
def configure(
    model: str = typer.Argument(..., help="Model name."),
    file: Path = typer.Option(
        ...,
        "--file",
        help="JSON training spec: {entry_point: 'module:function' | command: [...], dataset, "
        "path, label, parameters, executor, image, resources: {cpu, memory, gpu}}.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Store a new version of the model's training spec (needs training:configure)."""
    stored = client().configure_training(model, _spec(file))
    if json_output:
        print_json(stored)
        return
    target = stored.spec.entry_point or " ".join(stored.spec.command or ())
    console.print(
        f"training spec v{stored.version} of {model}: {target} on {stored.spec.dataset}"
        f"/{stored.spec.path}",
        markup=False,
    )


@app.command("spec")
def spec(
    model: str = typer.Argument(..., help="Model name."), json_output: bool = JsonOption
) -> None:
    """Show the model's current training spec."""
    stored = client().training_spec(model)
    if json_output:
        print_json(stored)
        return
    print_table(
        f"Training spec of {model} (v{stored.version})",
        ["field", "value"],
        [[k, v] for k, v in stored.spec.model_dump(mode="json").items()],
    )


@app.command("run")
def run(
    model: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option("requested by a person", "--reason", help="Why (audited)."),
    param: list[str] = typer.Option(
        [], "--param", help="NAME=VALUE over the spec's parameters (repeatable)."
    ),
    dataset_version: int | None = typer.Option(
        None, "--dataset-version", help="Pin this version of the spec's dataset, not the newest."
    ),
    kubernetes: bool = typer.Option(
        False,
        "--kubernetes",
        help="Queue the run and write its Kubernetes Job manifest (to --out) instead of "
        "running it here.",
    ),
    queue: bool = typer.Option(
        False, "--queue", help="Only queue the run (a runner takes it: medops train work)."
    ),
    out: Path | None = typer.Option(None, "--out", help="With --kubernetes: the manifest file."),
    json_output: bool = JsonOption,
) -> None:
    """Request a run of the model on pinned data and run it here (a subprocess, logs
    captured, the model converted to ONNX here and registered as a candidate version), or
    hand it to Kubernetes."""
    api = client()
    request = RunRequest(
        reason=reason, parameters=_parameters(param), dataset_version=dataset_version
    )
    queued = api.request_training_run(model, request)
    if kubernetes:
        import json

        manifest = json.dumps(api.training_job(queued.id), indent=2) + "\n"
        if out is not None:
            write_output(out, manifest)
        if json_output:
            print_json({"run": queued, "manifest": str(out) if out else None})
        elif out is not None:
            console.print(f"queued {queued.id}; kubectl apply -f {out}", markup=False)
        else:
            typer.echo(manifest, nl=False)
        return
    if queue:
        _show_run(queued, json_output)
        return
    from medops.retraining.entrypoints import execute

    done = execute(api, queued.id)
    _show_run(done, json_output)
    if done.status != "succeeded":
        raise fail(f"training run {done.id} failed: {done.error}")


@app.command("execute")
def execute_run(
    run_id: str = typer.Argument(..., help="A queued run's id (tr_...)."),
    json_output: bool = JsonOption,
) -> None:
    """Run one queued run here: the Kubernetes Job's command."""
    from medops.retraining.entrypoints import execute

    done = execute(client(), run_id)
    _show_run(done, json_output)
    if done.status != "succeeded":
        raise fail(f"training run {done.id} failed: {done.error}")


@app.command("work")
def work(
    limit: int = typer.Option(10, "--max", min=1, max=1000, help="Most runs to take."),
    json_output: bool = JsonOption,
) -> None:
    """Run every queued run here, oldest first (a worker, or a CronJob)."""
    from medops.retraining.entrypoints import execute

    api = client()
    done = [execute(api, r.id) for r in api.training_runs(statuses=["queued"])[-limit:][::-1]]
    if json_output:
        print_json(done)
        return
    print_table("Training runs done", RUN_COLUMNS, _run_rows(done))


@app.command("status")
def status(
    run_id: str = typer.Argument(..., help="Run id (tr_...)."), json_output: bool = JsonOption
) -> None:
    """One run: status, pinned data, candidate version, error."""
    _show_run(client().training_run(run_id), json_output)


@app.command("list")
def list_runs(
    model: str | None = typer.Option(None, "--model", help="Only this model's runs."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    json_output: bool = JsonOption,
) -> None:
    """Runs, newest first."""
    runs = client().training_runs(model, limit=limit)
    if json_output:
        print_json(runs)
        return
    print_table("Training runs", RUN_COLUMNS, _run_rows(runs))


@app.command("logs")
def logs(
    run_id: str = typer.Argument(..., help="Run id (tr_...)."), json_output: bool = JsonOption
) -> None:
    """A run's captured output."""
    found = client().training_logs(run_id)
    if json_output:
        print_json(found)
        return
    typer.echo(found.logs, nl=not found.logs.endswith("\n"))


def _trigger_rows(found: list[TriggerOut]) -> list[list[str]]:
    rows = []
    for t in found:
        d = t.definition
        condition = {
            "schedule": f"every {d.every_seconds} s",
            "monitoring": f"{d.deployment}: {', '.join(d.verdicts)}"
            + (" or alerts" if d.on_alerts else ""),
            "labelled-data": f"{d.min_labelled} new outcomes",
            "manual": "a person",
        }[d.kind]
        rows.append(
            [t.id, d.model, d.kind, condition, "paused" if t.paused else "active",
             _when(t.last_fired_at)]
        )  # fmt: skip
    return rows


@app.command("triggers")
def triggers(
    model: str | None = typer.Option(None, "--model", help="Only this model's triggers."),
    json_output: bool = JsonOption,
) -> None:
    """The retraining triggers and their state."""
    found = client().training_triggers(model)
    if json_output:
        print_json(found)
        return
    print_table(
        "Retraining triggers",
        ["trigger", "model", "kind", "condition", "state", "last fired"],
        _trigger_rows(found),
    )


@app.command("add-trigger")
def add_trigger(
    file: Path = typer.Option(
        ...,
        "--file",
        help="JSON trigger: {model, kind: schedule|monitoring|labelled-data|manual, "
        "every_seconds, deployment, verdicts, on_alerts, min_labelled}.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Add a retraining trigger (needs training:configure); audited."""
    raw = read_json_file(file, "trigger")
    try:
        definition = TriggerIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "trigger"
        raise InvalidInputError(
            f"{file}: {where}: {first['msg']}", errors=[FieldError(where, first["msg"])]
        ) from None
    created = client().create_training_trigger(definition)
    if json_output:
        print_json(created)
        return
    console.print(f"trigger {created.id} ({definition.kind}) of {definition.model}", markup=False)


def _paused(found: TriggerOut, json_output: bool) -> None:
    if json_output:
        print_json(found)
        return
    console.print(f"trigger {found.id}: {'paused' if found.paused else 'active'}", markup=False)


@app.command("pause")
def pause(
    trigger_id: str = typer.Argument(..., help="Trigger id (tt_...)."),
    reason: str = typer.Option("", "--reason", help="Why (audited)."),
    json_output: bool = JsonOption,
) -> None:
    """Pause a trigger: it fires no more until resumed."""
    _paused(client().pause_training_trigger(trigger_id, reason), json_output)


@app.command("resume")
def resume(
    trigger_id: str = typer.Argument(..., help="Trigger id (tt_...)."),
    reason: str = typer.Option("", "--reason", help="Why (audited)."),
    json_output: bool = JsonOption,
) -> None:
    """Resume a trigger: it looks at what happens from now on."""
    _paused(client().resume_training_trigger(trigger_id, reason), json_output)


@app.command("evaluate")
def evaluate(json_output: bool = JsonOption) -> None:
    """Evaluate every trigger now (what the server does every
    MEDOPS_TRAINING_TRIGGER_SECONDS; a CronJob can run this instead)."""
    result = client().evaluate_training_triggers()
    if json_output:
        print_json(result)
        return
    console.print(
        f"{result.checked} trigger(s) checked, {len(result.events)} event(s)", markup=False
    )
    for event in result.events:
        console.print(f"  {event.outcome}: {event.model} {event.detail}", markup=False)


@app.command("events")
def events(
    model: str | None = typer.Option(None, "--model", help="Only this model's events."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    json_output: bool = JsonOption,
) -> None:
    """Trigger events (fired, deduplicated, failed), newest first."""
    found = client().training_events(model, limit=limit)
    if json_output:
        print_json(found)
        return
    print_table(
        "Trigger events",
        ["at", "model", "kind", "outcome", "run", "detail"],
        [[_when(e.at), e.model, e.kind, e.outcome, e.run_id or UNSET, e.detail[:80]]
         for e in found],
    )  # fmt: skip
