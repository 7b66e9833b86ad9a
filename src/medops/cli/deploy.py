"""``medops deploy``, ``medops predict`` and ``medops outcomes``: the inference service from
the command line (all through the SDK).

``predict --input`` takes a JSON object of features, a JSON list of records, a request body
(``{"features": ...}`` or ``{"records": [...]}``), ``@FILE`` or ``FILE`` holding one of those,
or a ``.csv`` FILE whose header row names the features (and optionally ``patient_ref``): each
row becomes a record; empty cells are sent as null, cells that read as numbers as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.errors import FieldError, InvalidInputError, clip
from medops.serving.schemas import DeploymentEventOut, DeploymentOut, RolloutLimits

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
            name, model, cache_size=cache_size, limits=limits, reason=reason
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


# -- predict ------------------------------------------------------------------------------


@dataclass
class PredictInput:
    """What ``--input`` held: one record's features or several records, and the request's
    own patient reference and metadata when it was a whole request body."""

    features: dict[str, Any] | None = None
    records: list[dict[str, Any]] | None = None
    patient_ref: str | None = None
    metadata: dict[str, Any] | None = None


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _cell(text: str) -> Any:
    """A CSV cell as JSON: empty is null, a number is a number, anything else a string."""
    value = text.strip()
    if not value:
        return None
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, errors=[FieldError("input", message)])


def _csv_records(text: str, where: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    names = reader.fieldnames or []
    if not names:
        raise _bad(f"{where} has no header row of feature names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _bad(f"{where}: column {clip(duplicates[0])!r} appears more than once")
    records = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise _bad(f"{where} line {line}: more cells than the header names")
            if any(v is None for v in row.values()):
                raise _bad(f"{where} line {line}: fewer cells than the header names")
            ref = (row.pop("patient_ref", None) or "").strip()
            record: dict[str, Any] = {"features": {k: _cell(v) for k, v in row.items()}}
            if ref:
                record["patient_ref"] = ref
            records.append(record)
    except csv.Error as exc:
        raise _bad(f"{where} line {reader.line_num}: {exc}") from None
    if not records:
        raise _bad(f"{where} has a header but no rows")
    return records


def _as_record(item: object, index: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad(f"--input record {index} is not a JSON object")
    return item if isinstance(item.get("features"), dict) else {"features": item}


def _from_json(data: object, where: str) -> PredictInput:
    if isinstance(data, list):
        return PredictInput(records=[_as_record(item, i) for i, item in enumerate(data)])
    if not isinstance(data, dict):
        raise _bad(f"{where} must be a JSON object of features or a list of records")
    if "records" not in data and not isinstance(data.get("features"), dict):
        return PredictInput(features=data)
    unknown = sorted(set(data) - {"features", "records", "patient_ref", "metadata"})
    if unknown:
        raise _bad(f"{where}: unknown field {clip(unknown[0])!r} next to 'features'/'records'")
    records = data.get("records")
    if records is not None and not isinstance(records, list):
        raise _bad(f"{where}: 'records' must be a list")
    return PredictInput(
        features=data.get("features"),
        records=None if records is None else [_as_record(r, i) for i, r in enumerate(records)],
        patient_ref=data.get("patient_ref"),
        metadata=data.get("metadata"),
    )


def read_input(value: str) -> PredictInput:
    """Parse ``--input``: JSON text, ``@FILE`` or ``FILE`` (JSON, or CSV by its suffix)."""
    text = value.strip()
    if text[:1] in ("{", "["):
        where = "--input"
    else:
        path = Path(value[1:] if value.startswith("@") else value)
        where = f"--input {clip(path, 200)}"
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise _bad(
                f"cannot read {where}: {exc.strerror} (give JSON text, @FILE or FILE)"
            ) from None
        except UnicodeDecodeError:
            raise _bad(f"{where} is not UTF-8 text") from None
        if path.suffix.lower() == ".csv":
            return PredictInput(records=_csv_records(text, where))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad(f"{where} is not valid JSON: {exc}") from None
    return _from_json(data, where)


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def predict(
    name: str = typer.Argument(..., help="Deployment name."),
    input_: str = typer.Option(
        ...,
        "--input",
        help="JSON text, @FILE or FILE: features, records, or a .csv of feature rows.",
    ),
    patient_ref: str | None = typer.Option(
        None, "--patient-ref", help="Patient reference for records that have none."
    ),
    fhir: bool = typer.Option(
        False, "--fhir", help="Answer as FHIR R4 RiskAssessment JSON (needs a patient reference)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Score one record or several with a deployment; every prediction is logged."""
    parsed = read_input(input_)
    with client() as c:
        answer = c.predict(
            name,
            parsed.features,
            records=parsed.records,
            patient_ref=patient_ref if patient_ref is not None else parsed.patient_ref,
            metadata=parsed.metadata,
            fhir=fhir,
        )
    if json_output or fhir:
        print_json(answer)
        return
    predictions = answer.get("predictions", [])
    print_table(
        f"predictions of {answer.get('deployment', name)}",
        ("#", "patient", "label", "score", "arm", "version", "cached", "id"),
        [
            (
                i,
                p.get("patient_ref") or "-",
                p.get("label"),
                _score(p.get("score")),
                p.get("arm"),
                p.get("version"),
                "yes" if p.get("cached") else "no",
                p.get("id"),
            )
            for i, p in enumerate(predictions)
        ],
    )
    total = answer.get("timing_ms", {}).get("total")
    if total is not None:
        console.print(f"{len(predictions)} prediction(s) in {total:.1f} ms, logged")


# -- outcomes -----------------------------------------------------------------------------


@outcomes_app.command("upload")
def upload(
    file: Path = typer.Argument(..., help="CSV with prediction_id,label[,observed_at]."),
    json_output: bool = JsonOption,
) -> None:
    """Attach outcomes from a CSV; one bad row stores nothing and every bad row is listed."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {file}: {exc.strerror}") from None
    with client() as c:
        result = c.upload_outcomes(data)
    if json_output:
        print_json(result)
    else:
        print_record(f"outcomes from {file.name}", result.model_dump(mode="json"))
