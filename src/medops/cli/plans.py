"""``medops plans``: change-control plans (create, sign, show, list), candidate reports
(evaluate, candidates), and the rollouts a plan allows (rollout, rollouts, abort, tick)."""

from __future__ import annotations

from pathlib import Path

import typer

from medops.cli.common import (
    PasswordStdinOption,
    client,
    read_json_file,
    read_password,
    with_one_time_code,
)
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.retraining.plan_schemas import CandidateReport, PlanOut, RolloutOut

app = typer.Typer(
    help="Change-control plans: create, sign, show; candidates against the champion; rollouts.",
    no_args_is_help=True,
)


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _show_plan(plan: PlanOut, json_output: bool, title: str) -> None:
    if json_output:
        print_json(plan)
        return
    spec = plan.spec
    print_record(
        title,
        {
            "model": plan.model,
            "plan": plan.number,
            "status": plan.status,
            "sha256": plan.plan_hash,
            "champion at creation": plan.champion if plan.champion is not None else "",
            "created": f"{plan.created_at:%Y-%m-%d %H:%M:%S}Z by {plan.created_by}",
            "families": ", ".join(spec.allowed.families),
            "threshold": f"{spec.allowed.threshold_low:g} to {spec.allowed.threshold_high:g}",
            "hyperparameters": ", ".join(
                f"{k} {r.describe()}" for k, r in sorted(spec.allowed.hyperparameters.items())
            ),
            "floors": ", ".join(f"{k} >= {v:g}" for k, v in sorted(spec.floors.minimum.items())),
            "subgroup limits": ", ".join(
                f"{s.attribute} {s.metric} gap <= {s.max_gap:g}" for s in spec.subgroup_limits
            ),
            "rollout": f"shadow {spec.rollout.shadow_predictions} predictions, canary "
            + " -> ".join(f"{s.percent}%" for s in spec.rollout.canary_steps),
            "signatures": ", ".join(
                f"{s.printed_name} ({s.role}{'' if s.valid else ', INVALID'})"
                for s in plan.signatures
            ),
        },
    )
    for line in plan.needs:
        _say(f"still needs: {line}")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Model name."),
    plan_file: Path = typer.Argument(..., help="The plan, a JSON file (docs/retraining.md)."),
    json_output: bool = JsonOption,
) -> None:
    """Propose a new plan version (needs plans:write); active once signed."""
    with client() as c:
        plan = c.create_plan(name, read_json_file(plan_file, "plan"))
    _show_plan(plan, json_output, f"proposed plan {plan.number} of {name}")
    if not json_output:
        _say(
            "next: a clinician and an ML engineer sign it: "
            f"'medops plans sign {name} {plan.number}'"
        )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name."),
    number: int | None = typer.Argument(None, help="Plan number (default: the active plan)."),
    json_output: bool = JsonOption,
) -> None:
    """One plan version (default: the active one), its signatures and what it still needs."""
    with client() as c:
        plan = c.plan(name, number)
    _show_plan(plan, json_output, f"plan {plan.number} of {name}")


@app.command("list")
def list_(
    name: str = typer.Argument(..., help="Model name."),
    json_output: bool = JsonOption,
) -> None:
    """Every plan version of a model, newest first."""
    with client() as c:
        plans = c.plans(name)
    if json_output:
        print_json(plans)
        return
    print_table(
        f"change-control plans of {name}",
        ("plan", "status", "created by", "created at", "valid signatures", "sha256"),
        [
            (
                p.number,
                p.status,
                p.created_by,
                f"{p.created_at:%Y-%m-%d %H:%M}Z",
                sum(s.valid for s in p.signatures),
                p.plan_hash[:16],
            )
            for p in plans
        ],
    )


@app.command("sign")
def sign(
    name: str = typer.Argument(..., help="Model name."),
    number: int = typer.Argument(..., help="Plan number."),
    comment: str | None = typer.Option(None, "--comment", help="A note kept with the signature."),
    otp: str | None = typer.Option(None, "--otp", help="One-time code, where MFA is enrolled."),
    password_stdin: bool = PasswordStdinOption,
    json_output: bool = JsonOption,
) -> None:
    """Sign a pending plan (needs models:approve): re-enter your password (and code)."""
    password = read_password(from_stdin=password_stdin, prompt="Password (to sign)")
    with client() as c:
        plan = with_one_time_code(
            lambda code: c.sign_plan(name, number, password, otp=code, comment=comment),
            otp,
            from_stdin=password_stdin,
        )
    title = "activated" if plan.status == "active" else "signed"
    _show_plan(plan, json_output, f"{title} plan {plan.number} of {name}")


def _show_report(report: CandidateReport, json_output: bool) -> None:
    if json_output:
        print_json(report)
        return
    verdict = "WITHIN the plan" if report.within_plan else "OUTSIDE the plan"
    print_record(
        f"candidate report {report.id}",
        {
            "model": report.model,
            "candidate": report.candidate,
            "champion": report.champion if report.champion is not None else "",
            "plan": f"{report.plan} (sha256 {report.plan_hash[:16]})",
            "verdict": verdict,
        },
    )
    for evaluation in report.evaluations:
        print_table(
            f"{evaluation.name} set: {evaluation.rows} rows, candidate - champion",
            ("metric", "test", "candidate", "champion", "difference", "95% CI", "p"),
            [
                (
                    cmp.metric,
                    cmp.test,
                    f"{cmp.candidate:.4f}",
                    f"{cmp.champion:.4f}",
                    f"{cmp.difference:+.4f}",
                    ""
                    if cmp.ci_low is None or cmp.ci_high is None
                    else f"{cmp.ci_low:+.4f} to {cmp.ci_high:+.4f}",
                    "" if cmp.p_value is None else f"{cmp.p_value:.4g}",
                )
                for cmp in evaluation.comparisons
            ],
        )
    for reason in report.reasons:
        _say(f"outside the plan: {reason}")


@app.command("evaluate")
def evaluate(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="The candidate version."),
    recent_dataset: str | None = typer.Option(
        None, "--recent-dataset", help="Newest labelled data: a dataset version NAME@N."
    ),
    recent_path: str | None = typer.Option(
        None, "--recent-path", help="The CSV: a file of --recent-dataset, or a server file."
    ),
    recent_sha256: str | None = typer.Option(
        None, "--recent-sha256", help="The server file's SHA-256 (without --recent-dataset)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Judge a candidate against the active plan and the champion (needs training:run)."""
    recent = None
    if recent_path is not None:
        recent = {"dataset": recent_dataset, "path": recent_path, "sha256": recent_sha256}
    with client() as c:
        report = c.evaluate_candidate(name, version, recent)
    _show_report(report, json_output)


@app.command("candidates")
def candidates(
    name: str = typer.Argument(..., help="Model name."),
    json_output: bool = JsonOption,
) -> None:
    """A model's candidate reports, newest first."""
    with client() as c:
        reports = c.candidate_reports(name)
    if json_output:
        print_json(reports)
        return
    print_table(
        f"candidates of {name}",
        ("report", "candidate", "champion", "plan", "within plan", "reasons"),
        [
            (
                r.id,
                r.candidate,
                r.champion if r.champion is not None else "",
                r.plan,
                "yes" if r.within_plan else "no",
                len(r.reasons),
            )
            for r in reports
        ],
    )


def _show_rollout(rollout: RolloutOut, json_output: bool) -> None:
    if json_output:
        print_json(rollout)
        return
    print_record(
        f"rollout {rollout.id}",
        {
            "model": f"{rollout.model}/{rollout.version}",
            "deployment": rollout.deployment,
            "plan": rollout.plan,
            "report": rollout.report,
            "state": rollout.state,
            "step": "" if rollout.step is None else rollout.step + 1,
        },
    )
    for event in rollout.events:
        _say(f"{event.at:%Y-%m-%d %H:%M:%S}Z {event.state}: {event.detail}")


@app.command("rollout")
def rollout(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="The candidate version."),
    deployment: str = typer.Option(..., "--deployment", help="Deployment following production."),
    json_output: bool = JsonOption,
) -> None:
    """Start the plan's shadow and canary protocol for a within-plan candidate."""
    with client() as c:
        out = c.start_rollout(name, version, deployment)
    _show_rollout(out, json_output)


@app.command("rollouts")
def rollouts(
    name: str = typer.Argument(..., help="Model name."),
    json_output: bool = JsonOption,
) -> None:
    """A model's rollouts, newest first (its retraining history)."""
    with client() as c:
        found = c.rollouts(name)
    if json_output:
        print_json(found)
        return
    print_table(
        f"rollouts of {name}",
        ("rollout", "version", "deployment", "plan", "state", "started"),
        [
            (r.id, r.version, r.deployment, r.plan, r.state, f"{r.started_at:%Y-%m-%d %H:%M}Z")
            for r in found
        ],
    )


@app.command("abort")
def abort(
    name: str = typer.Argument(..., help="Model name."),
    rollout_id: str = typer.Argument(..., help="The rollout's id (roll_...)."),
    reason: str = typer.Option(..., "--reason", help="Why it is stopped."),
    json_output: bool = JsonOption,
) -> None:
    """Stop a rollout in progress (needs deployments:manage)."""
    with client() as c:
        out = c.abort_rollout(name, rollout_id, reason)
    _show_rollout(out, json_output)


@app.command("tick")
def tick(json_output: bool = JsonOption) -> None:
    """Advance every rollout in progress now (the server does it every
    MEDOPS_ROLLOUT_INTERVAL_SECONDS; run this from a scheduler when that is 0)."""
    with client() as c:
        moved = c.tick_rollouts()
    if json_output:
        print_json(moved)
        return
    print_table(
        "rollouts in progress",
        ("rollout", "model", "version", "state", "step"),
        [(r.id, r.model, r.version, r.state, "" if r.step is None else r.step + 1) for r in moved],
    )
