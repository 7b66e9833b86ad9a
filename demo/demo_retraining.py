"""The retraining part of the demo (issue 24's story), through the SDK on the embedded server.

The ML engineer writes a change-control plan for diabetes-risk (logistic regression, C within
[0.05, 5], AUROC floors, each sex's sensitivity within 0.15 of all rows'; shadow, then a 50%
canary, rolled back below AUROC 0.6), the clinician and a second ML engineer sign it. Then:

1. the ``diabetes`` deployment drifts (BMI shifted), monitoring flags it, the drift trigger
   fires, the runner retrains on the newer pinned data, and the candidate, within the plan,
   goes through shadow and canary to production with no approvals (the plan's signatures);
2. a weekly trigger retrains on a batch short of one sex's positive cases: the candidate breaks
   the subgroup limit and stops for the full approval path;
3. a person's request passes offline, but its canary predictions prove wrong and the rollout is
   rolled back by monitoring.

The server's background loops do not run here: the demo drives each tick (monitoring run,
trigger evaluation, rollout ticks) as the scheduler would. Runs after the feature store demo.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from demo_registry import PASSWORD
from rich.console import Console
from rich.table import Table

from medops import examples
from medops.client import Client
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.errors import MedopsError
from medops.retraining.entrypoints import execute
from medops.retraining.job_schemas import RunOut, RunRequest, TrainingSpec, TriggerIn
from medops.services import build_services

console = Console(width=160)
NAME = "diabetes-risk"
DEPLOYMENT = "diabetes"
DATASET = "diabetes-train"
EVAL = "diabetes-eval"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
PLAN: dict[str, Any] = {
    "description": "Retraining of the diabetes progression risk model",
    "allowed": {
        "hyperparameters": {"logisticregression__C": {"low": 0.05, "high": 5.0}},
        "families": ["logistic_regression"],
    },
    "fixed": {
        "intended_use": "Flag adults at risk of diabetes progression within a year",
        "population": "Adults 18-110 in the outpatient diabetes clinic",
    },
    "floors": {"minimum": {"auroc": 0.6}, "auroc_non_inferiority_margin": 0.1},
    "subgroup_limits": [{"attribute": "sex", "metric": "sensitivity", "max_gap": 0.15}],
    "rollout": {
        "shadow_predictions": 4,
        "canary_steps": [{"percent": 50, "minutes": 0, "min_predictions": 4}],
        "canary_min_auroc": 0.6,
        "canary_min_labelled": 10,
    },
}


def _frames() -> tuple[Any, Any, Any, Any]:
    return examples.diabetes_frames()


def _table(*, shift: float = 0.0, short_of_positives: bool = False) -> bytes:
    """The training split as a labelled CSV: ``shift`` standard deviations added to bmi (a
    changed population), or most of the second sex's positive cases missing."""
    x_train, _, y_train, _ = _frames()
    frame = x_train.copy()
    if shift:
        frame["bmi"] = frame["bmi"] + shift * float(x_train["bmi"].std())
    frame[examples.LABEL] = y_train.to_numpy()
    if short_of_positives:
        positives = frame.index[(frame["sex"] == 2.0) & (frame[examples.LABEL] == 1)]
        dropped = np.random.default_rng(0).permutation(positives)[int(0.15 * len(positives)) :]
        frame = frame.drop(dropped)
    text: str = frame.to_csv(index=False)
    return text.encode()


def _records(n: int, seed: int, *, bmi_shift: float = 0.0) -> list[dict[str, Any]]:
    """Valid records drawn around the evaluation data."""
    _, x_eval, _, _ = _frames()
    rng = np.random.default_rng(seed)
    rows = x_eval.to_numpy()[rng.integers(0, len(x_eval), n)]
    rows = rows + rng.normal(0, 0.05, rows.shape) * rows.std(axis=0)
    rows[:, 0] = np.clip(np.round(rows[:, 0]), 18, 110)
    rows[:, 1] = rng.choice([1.0, 2.0], n)
    rows[:, 2] = np.clip(rows[:, 2] + bmi_shift, 10, 80)
    out = [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]
    return [{"features": r, "patient_ref": f"rt-{seed}-{i}"} for i, r in enumerate(out)]


def _add(ds: Client, folder: Path, name: str, table: bytes, message: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_bytes(table)
    return ds.add_dataset(name, [folder / "train.csv"], message=message).version.number


class _Later:
    """The wall clock ``ahead`` of now: the scheduler's run as it would happen later."""

    def __init__(self, ahead: timedelta) -> None:
        self._ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self._ahead

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _system(settings: Settings, ahead: timedelta, action: Callable[[Any, Context], Any]) -> Any:
    """What the server's scheduler does ``ahead`` of now, run here (its loops do not run in
    the demo)."""
    services = build_services(settings, clock=_Later(ahead))
    try:
        return action(services, Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local")))
    finally:
        services.close()


def _tick_until(engineer: Client, clinician: Client, state: str, serve: int, seed: int) -> str:
    """Serve ``serve`` predictions and tick the rollout driver until the open rollout is in
    ``state``, serving again while it is not (shadow rows are logged off the hot path)."""
    moved = ""
    for attempt in range(20):
        clinician.predict(DEPLOYMENT, records=_records(serve, seed + 1000 * attempt))
        for _ in range(50):
            ticked = engineer.tick_rollouts()
            moved = ticked[0].state if ticked else moved
            if moved == state:
                return moved
            time.sleep(0.02)
    return moved


def _arms(engineer: Client) -> str:
    d = engineer.deployment(DEPLOYMENT)
    return f"shadow v{d.shadow_version}, canary v{d.canary_version} ({d.canary_percent}%)"


def _sign(client: Client, number: int) -> None:
    client.sign_plan(NAME, number, PASSWORD, comment="reviewed")


def retraining_demo(  # noqa: PLR0912, PLR0915 - one story, told in order
    settings: Settings,
    login: Callable[[Client, str], None],
    folder: Path,
    otp: Callable[[str], str | None] = lambda _username: None,
) -> list[str]:
    """Run the retraining story; returns the outcomes that differ from what must happen.
    ``otp`` gives an MFA user's current one-time code (a plan signature re-authenticates)."""
    started = time.monotonic()
    problems: list[str] = []
    console.rule("retraining under a change-control plan")
    work = folder / "retraining"
    work.mkdir(exist_ok=True)
    with (
        Client(settings=settings) as ds,
        Client(settings=settings) as engineer,
        Client(settings=settings) as second,
        Client(settings=settings) as clinician,
    ):
        login(ds, "data-scientist")
        login(engineer, "ml-engineer")
        login(second, "ml-engineer-2")
        login(clinician, "clinician")
        _, x_eval, _, y_eval = _frames()
        evaluation = examples.labeled_csv(x_eval, y_eval)
        (work / "evaluation.csv").write_bytes(evaluation)
        plan = PLAN | {
            "evaluation": {
                "fixed_set": {
                    "path": str(work / "evaluation.csv"),
                    "sha256": hashlib.sha256(evaluation).hexdigest(),
                },
                "label_column": examples.LABEL,
                "recent_min_rows": 20,
            }
        }
        created = engineer.create_plan(NAME, plan)
        _sign(clinician, created.number)
        signed = _sign_last(second, created.number, otp("ml-engineer-2"))
        console.print(f"plan {created.number} signed by the clinician and ml-engineer-2: {signed}")
        ds.add_dataset(EVAL, [work / "evaluation.csv"], message="fixed evaluation set")
        _add(ds, work / "d1", DATASET, _table(), "the first patients")
        ref = {"dataset": EVAL, "path": "evaluation.csv", "label": examples.LABEL}
        engineer.configure_training(
            NAME,
            TrainingSpec.model_validate(
                {
                    "entry_point": "retrain_entry:train",
                    "dataset": DATASET,
                    "path": "train.csv",
                    "label": examples.LABEL,
                    "parameters": {"C": 1.0},
                    "tags": {"model_family": "logistic_regression"},
                    "validation": ref,
                    "evaluate": True,
                    "recent": ref,
                    "deployment": DEPLOYMENT,
                }
            ),
        )
        drift = engineer.create_training_trigger(
            TriggerIn(model=NAME, kind="monitoring", deployment=DEPLOYMENT)
        )
        champion = engineer.get_model(NAME).aliases["production"]
        rows: list[tuple[str, ...]] = []

        # 1. drift -> trigger -> retrain on newer data -> shadow -> canary -> promoted
        for batch in range(4):  # a new population, outweighing the hour's earlier patients
            clinician.predict(DEPLOYMENT, records=_records(100, 100 + batch, bmi_shift=12.0))
        hour = timedelta(hours=1, minutes=2)
        later = _system(settings, hour, lambda s, ctx: s.monitoring.run(ctx, "hour"))
        verdicts = [f"{w['deployment']}: {w['verdict']}" for w in later.computed]
        console.print(f"monitoring's hourly run: {verdicts}")
        newer = _add(ds, work / "d2", DATASET, _table(shift=0.1), "the newer population")
        fired = _system(settings, hour, lambda s, ctx: s.training_triggers.evaluate(ctx)).events
        if [(e.outcome, e.trigger_id) for e in fired if e.outcome == "fired"] != [
            ("fired", drift.id)
        ]:
            problems.append(f"retraining: the drift trigger did not fire ({fired})")
            return problems
        first = _run(ds, fired[0].run_id, work)
        v2 = first.candidate_version
        rows.append(_row("drift trigger", first))
        if (first.status, first.within_plan, first.rollout_state) != ("succeeded", True, "shadow"):
            problems.append(f"retraining: the drift candidate was not in shadow ({first})")
            return problems
        if first.dataset != f"{DATASET}@{newer}":
            problems.append(f"retraining: trained on {first.dataset}, not @{newer}")
        console.print(f"  v{v2} in shadow: {_arms(engineer)}")
        state = _tick_until(engineer, clinician, "canary", 6, 1)
        console.print(f"  after 6 predictions: {state}; {_arms(engineer)}")
        state = _tick_until(engineer, clinician, "promoted", 40, 2)
        production = engineer.get_model(NAME).aliases["production"]
        console.print(f"  after 40 more: {state}; production v{champion} -> v{production}")
        if production != v2 or engineer.approvals(f"{NAME}/{v2}"):
            problems.append(f"retraining: v{v2} was not promoted on the plan ({state})")

        # 2. a weekly trigger; a batch short of positives; outside the plan; stops
        weekly = engineer.create_training_trigger(
            TriggerIn(model=NAME, kind="schedule", every_seconds=7 * 86400)
        )
        _add(ds, work / "d3", DATASET, _table(short_of_positives=True), "this week's batch")
        week = _system(
            settings, timedelta(days=7, minutes=1), lambda s, ctx: s.training_triggers.evaluate(ctx)
        )
        fired = [e for e in week.events if e.outcome == "fired"]
        if [e.trigger_id for e in fired] != [weekly.id]:
            problems.append(f"retraining: the weekly trigger did not fire ({week.events})")
            return problems
        second_run = _run(ds, fired[0].run_id, work)
        rows.append(_row("weekly trigger", second_run))
        if second_run.candidate_report is None:
            problems.append(f"retraining: the weekly run has no report ({second_run.error})")
            return problems
        report = ds.candidate_report(NAME, second_run.candidate_report)
        for reason in report.reasons:
            console.print(f"  outside the plan: {reason}")
        stopped = ds.rollout(NAME, second_run.rollout or "") if second_run.rollout else None
        if (second_run.within_plan, second_run.rollout_state) != (False, "stopped") or not any(
            "sex" in r and "sensitivity" in r for r in report.reasons
        ):
            problems.append(f"retraining: the short batch's candidate did not stop ({report})")
        elif stopped is not None:
            console.print(f"  rollout stopped: {stopped.events[0].detail}")
        engineer.pause_training_trigger(weekly.id, "the batch's ascertainment is being reviewed")

        # 3. a person's request; passes offline; wrong in canary; rolled back
        _add(ds, work / "d4", DATASET, _table(), "the reviewed batch")
        asked = ds.request_training_run(
            NAME, RunRequest(reason="retrain on the reviewed batch", parameters={"C": 2.0})
        )
        third = _run(ds, asked.id, work)
        rows.append(_row("a person's request", third))
        if (third.within_plan, third.rollout_state) != (True, "shadow"):
            problems.append(f"retraining: the third candidate was not in shadow ({third})")
            return problems
        _tick_until(engineer, clinician, "canary", 6, 3)
        canary: list[dict[str, Any]] = []
        for attempt in range(20):  # the serving runtime picks the canary up within moments
            served = clinician.predict(DEPLOYMENT, records=_records(40, 4 + 1000 * attempt))
            canary += [p for p in served["predictions"] if p.get("arm") == "canary"]
            if len(canary) >= 10:
                break
            time.sleep(0.2)
        for p in canary:  # what happened to these patients contradicts every canary score
            other = next(k for k in p["probabilities"] if str(k) != str(p["label"]))
            label = type(p["label"])(int(other) if isinstance(p["label"], int) else other)
            clinician.record_outcome(p["id"], label)
        aborted = engineer.tick_rollouts()
        state = aborted[0].state if aborted else "nothing"
        reason = aborted[0].reasons[0] if aborted and aborted[0].reasons else ""
        console.print(f"  {len(canary)} canary outcomes contradict it -> {state}: {reason}")
        if state != "aborted" or engineer.get_model(NAME).aliases["production"] != v2:
            problems.append(f"retraining: the wrong canary was not rolled back ({state})")

    table = Table(title="training runs", show_lines=False)
    for column in ("why", "data", "status", "candidate", "within plan", "rollout"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"retraining part: {time.monotonic() - started:.1f} s")
    return problems


def _sign_last(client: Client, number: int, code: str | None) -> str:
    try:
        return client.sign_plan(NAME, number, PASSWORD, otp=code, comment="reviewed").status
    except MedopsError as exc:
        return f"not signed: {exc}"


def _run(ds: Client, run_id: str | None, work: Path) -> RunOut:
    assert run_id is not None
    return execute(ds, run_id, workdir=work)


def _row(why: str, run: RunOut) -> tuple[str, ...]:
    return (
        why,
        run.dataset,
        run.status,
        f"v{run.candidate_version}",
        str(run.within_plan),
        str(run.rollout_state),
    )
