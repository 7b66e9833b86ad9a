"""``medops deploy`` and ``medops outcomes``: the inference service from the command line
(all through the SDK; ``medops predict`` is in predict.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.errors import FieldError, InvalidInputError
from medops.serving.schemas import (
    LOOKBACK_DAYS_MAX,
    DeploymentEventOut,
    DeploymentOut,
    RolloutLimits,
)


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, errors=[FieldError("input", message)])


app = typer.Typer(
    help="Deployments: serve a model version, canary, shadow, roll back.", no_args_is_help=True
)
outcomes_app = typer.Typer(
    help="Attach ground-truth outcomes to earlier predictions.", no_args_is_help=True
)

ReasonOption = typer.Option(..., "--reason", help="Why (kept in the deployment's history).")
MaxErrorRateOption = typer.Option(
    None, "--max-error-rate", min=0.0, max=1.0, help="Canary error rate that ends it (0-1)."
)
MaxP99Option = typer.Option(
    None, "--max-p99-ms", min=0.0, help="Canary p99 latency in ms that ends it."
)
MinRequestsOption = typer.Option(
    None, "--min-requests", min=1, help="Canary records the limits are judged over."
)


def _given_limits(
    max_error_rate: float | None, max_p99_ms: float | None, min_requests: int | None
) -> dict[str, Any]:
    values = {
        "max_error_rate": max_error_rate,
        "max_p99_ms": max_p99_ms,
        "min_requests": min_requests,
    }
    return {k: v for k, v in values.items() if v is not None}


def _limits_text(limits: RolloutLimits) -> str:
    return (
        f"error rate <= {limits.max_error_rate:g}, p99 <= {limits.max_p99_ms:g} ms, "
        f"over {limits.min_requests} canary records"
    )


def _show_deployment(deployment: DeploymentOut, json_output: bool, title: str) -> None:
    if json_output:
        print_json(deployment)
        return
    d = deployment
    print_record(
        title,
        {
            "name": d.name,
            "target": f"{d.target} ({'follows the alias' if d.alias else 'pinned'})",
            "serves": f"{d.model}/{d.version}" if d.version else "nothing: no version at target",
            "canary": f"{d.model}/{d.canary_version} at {d.canary_percent}%"
            if d.canary_version
            else "-",
            "shadow": f"{d.model}/{d.shadow_version}" if d.shadow_version else "-",
            "cache": f"{d.cache_size} entries" if d.cache_size else "off",
            "explain": "every prediction" if d.explain else "when asked",
            "limits": _limits_text(d.limits),
            "revision": d.revision,
            "created": f"{d.created_at.isoformat(timespec='seconds')} by {d.created_by}",
            "updated": f"{d.updated_at.isoformat(timespec='seconds')} by {d.updated_by}",
        },
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Deployment name (the endpoint)."),
    model: str = typer.Option(
        ..., "--model", help="NAME@ALIAS to follow an alias, or NAME/VERSION to pin one."
    ),
    cache_size: int = typer.Option(
        0, "--cache-size", min=0, help="Predictions kept in memory per server (0: no cache)."
    ),
    max_error_rate: float | None = MaxErrorRateOption,
    max_p99_ms: float | None = MaxP99Option,
    min_requests: int | None = MinRequestsOption,
    explain: bool = typer.Option(
        False, "--explain", help="Explain every prediction (feature contributions), asked or not."
    ),
    reason: str = typer.Option(
        "created", "--reason", help="Why (kept in the deployment's history)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Create a deployment bound to a model alias or a pinned version (which must pass the
    gates of production)."""
    limits = _given_limits(max_error_rate, max_p99_ms, min_requests) or None
    with client() as c:
        deployment = c.create_deployment(
            name, model, cache_size=cache_size, limits=limits, explain=explain, reason=reason
        )
    _show_deployment(deployment, json_output, f"created deployment {deployment.name}")


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List deployments and what each serves now."""
    with client() as c:
        deployments = c.list_deployments()
    if json_output:
        print_json(deployments)
        return
    print_table(
        "deployments",
        ("name", "target", "version", "canary", "shadow", "cache", "updated", "by"),
        [
            (
                d.name,
                d.target,
                d.version or "-",
                f"{d.canary_version} at {d.canary_percent}%" if d.canary_version else "-",
                d.shadow_version or "-",
                d.cache_size or "off",
                d.updated_at.isoformat(timespec="seconds"),
                d.updated_by,
            )
            for d in deployments
        ],
    )


@app.command("status")
def status(
    name: str = typer.Argument(..., help="Deployment name."),
    json_output: bool = JsonOption,
) -> None:
    """Show a deployment: target, version served, canary, shadow, cache, limits and the
    server's live figures per arm."""
    with client() as c:
        deployment = c.deployment(name)
    _show_deployment(deployment, json_output, f"deployment {deployment.name}")
    if json_output:
        return
    if not deployment.live:
        console.print("live figures: none (this server process has scored no records of it)")
        return
    print_table(
        "live figures of this server process",
        ("arm/version", "records", "errors", "error rate", "p50 ms", "p99 ms"),
        [
            (
                arm,
                s.records,
                s.errors,
                "-" if s.error_rate is None else f"{s.error_rate:.4f}",
                _ms(s.p50_ms),
                _ms(s.p99_ms),
            )
            for arm, s in sorted(deployment.live.items())
        ],
    )


def _flat(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"limits": {"min_requests": 50}}`` as ``{"limits.min_requests": 50}``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _change(event: DeploymentEventOut) -> str:
    """What an event changed: every field at creation, else each field that moved."""

    def shown(value: object) -> str:
        return "-" if value is None else str(value)

    after = _flat(event.after)
    if event.before is None:
        return ", ".join(f"{k}={shown(v)}" for k, v in sorted(after.items()))
    before = _flat(event.before)
    return ", ".join(
        f"{k}: {shown(before.get(k))} -> {shown(after.get(k))}"
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    )


@app.command("history")
def history(
    name: str = typer.Argument(..., help="Deployment name."),
    json_output: bool = JsonOption,
) -> None:
    """Every change of a deployment: when, what, who and why (oldest first)."""
    with client() as c:
        events = c.deployment_history(name)
    if json_output:
        print_json(events)
        return
    print_table(
        f"history of deployment {name}",
        ("when (UTC)", "kind", "change", "who", "why"),
        [
            (e.occurred_at.isoformat(timespec="seconds"), e.kind, _change(e), e.actor, e.reason)
            for e in events
        ],
    )


@app.command("canary")
def canary(
    name: str = typer.Argument(..., help="Deployment name."),
    version: int | None = typer.Option(
        None, "--version", min=1, help="Candidate version (must pass the gates)."
    ),
    percent: int | None = typer.Option(
        None, "--percent", min=0, max=100, help="Share of patients sent to it (0 ends it)."
    ),
    off: bool = typer.Option(False, "--off", help="End the canary (same as --percent 0)."),
    max_error_rate: float | None = MaxErrorRateOption,
    max_p99_ms: float | None = MaxP99Option,
    min_requests: int | None = MinRequestsOption,
    reason: str = ReasonOption,
    json_output: bool = JsonOption,
) -> None:
    """Send a share of records (sticky per patient) to a candidate version, change the share
    or the limits, or end the canary with --off."""
    if off and (version is not None or percent not in (None, 0)):
        problem = "--off ends the canary: give no --version or --percent with it"
        raise InvalidInputError(problem, errors=[FieldError("off", problem)])
    if not off and percent is None:
        problem = "give --percent (0 ends the canary) or --off"
        raise InvalidInputError(problem, errors=[FieldError("percent", problem)])
    share = 0 if off or percent is None else percent
    if share > 0 and version is None:
        problem = "a canary needs --version, the candidate"
        raise InvalidInputError(problem, errors=[FieldError("version", problem)])
    given = _given_limits(max_error_rate, max_p99_ms, min_requests)
    with client() as c:
        limits = c.deployment(name).limits.model_dump() | given if given else None
        deployment = c.set_canary(name, version, share, reason, limits=limits)
    title = (
        f"canary of {deployment.name}: {deployment.model}/{deployment.canary_version} "
        f"at {deployment.canary_percent}%"
        if deployment.canary_version
        else f"canary of {deployment.name} ended"
    )
    _show_deployment(deployment, json_output, title)


@app.command("shadow")
def shadow(
    name: str = typer.Argument(..., help="Deployment name."),
    version: int | None = typer.Option(
        None, "--version", min=1, help="Version that scores a copy of every record."
    ),
    off: bool = typer.Option(False, "--off", help="Stop shadow scoring."),
    reason: str = ReasonOption,
    json_output: bool = JsonOption,
) -> None:
    """Score a copy of every record with a version (logged, never returned), or stop."""
    if off == (version is not None):
        problem = "give either --version N or --off"
        raise InvalidInputError(problem, errors=[FieldError("version", problem)])
    with client() as c:
        deployment = c.set_shadow(name, version, reason)
    title = (
        f"shadow of {deployment.name}: {deployment.model}/{deployment.shadow_version}"
        if deployment.shadow_version
        else f"shadow of {deployment.name} stopped"
    )
    _show_deployment(deployment, json_output, title)


@app.command("explain")
def explain(
    name: str = typer.Argument(..., help="Deployment name."),
    always: bool = typer.Option(False, "--always", help="Explain every prediction, asked or not."),
    off: bool = typer.Option(
        False, "--off", help="Explain only the predictions whose request asks."
    ),
    reason: str = ReasonOption,
    json_output: bool = JsonOption,
) -> None:
    """Explain every prediction of a deployment (--always), or only those asked for (--off)."""
    if always == off:
        problem = "give either --always or --off"
        raise InvalidInputError(problem, errors=[FieldError("always", problem)])
    with client() as c:
        deployment = c.set_explain(name, always, reason)
    title = (
        f"{deployment.name} explains every prediction"
        if deployment.explain
        else f"{deployment.name} explains predictions when asked"
    )
    _show_deployment(deployment, json_output, title)


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Deployment name."),
    reason: str = ReasonOption,
    json_output: bool = JsonOption,
) -> None:
    """End the canary at once; without one, move the deployment back to its previous
    version (a followed alias is rolled back, which needs models:promote)."""
    with client() as c:
        deployment = c.rollback_deployment(name, reason)
    title = f"rolled back {deployment.name}: serves {deployment.model}/{deployment.version}"
    _show_deployment(deployment, json_output, title)


# -- outcomes -----------------------------------------------------------------------------


@outcomes_app.command("upload")
def upload(
    file: Path = typer.Argument(
        ...,
        help="CSV with label and prediction_id, or patient_ref (matched by time), and "
        "optionally observed_at, deployment, predicted_from, predicted_to.",
    ),
    deployment: str | None = typer.Option(
        None,
        "--deployment",
        help="Deployment of the rows matched by patient_ref that have no deployment cell.",
    ),
    lookback_days: float | None = typer.Option(
        None,
        "--lookback-days",
        min=0.0,
        max=LOOKBACK_DAYS_MAX,
        help="How far before observed_at a patient's prediction may lie (default 30).",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Attach outcomes from a CSV; one bad row stores nothing and every bad row is listed.
    A row with patient_ref instead of prediction_id takes that patient's latest prediction
    on the deployment at or before observed_at (within the look-back; shadow ones never)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {file}: {exc.strerror}") from None
    with client() as c:
        result = c.upload_outcomes(data, deployment=deployment, lookback_days=lookback_days)
    if json_output:
        print_json(result)
    else:
        print_record(f"outcomes from {file.name}", result.model_dump(mode="json"))
