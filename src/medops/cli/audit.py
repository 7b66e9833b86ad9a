"""``medops audit``: verify the tamper-evident log, sign checkpoints (local, offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from medops.cli.common import client, settings
from medops.cli.output import JsonOption, console, fail, print_json, print_record, print_table
from medops.errors import FieldError, InvalidInputError
from medops.files import write_output

app = typer.Typer(
    help="The tamper-evident audit log: search and export (auditors, through the API); "
    "verify, checkpoint and public-key (local, offline).",
    no_args_is_help=True,
)

ActorOption = typer.Option(None, "--actor", help="Only records of this username.")
ActionOption = typer.Option(None, "--action", help="Only this action, e.g. auth.login.")
ResourceOption = typer.Option(None, "--resource", help="Only this resource id.")
PatientOption = typer.Option(None, "--patient", help="Only records about this patient reference.")
OutcomeOption = typer.Option(None, "--outcome", help="success, failure or denied.")
SinceOption = typer.Option(None, "--since", help="From this time (ISO 8601 with a zone).")
UntilOption = typer.Option(None, "--until", help="Before this time (ISO 8601 with a zone).")


def _filters(**values: str | None) -> dict[str, str]:
    names = {"resource": "resource_id"}
    return {names.get(k, k): v for k, v in values.items() if v is not None}


@app.command("search")
def search(
    actor: str | None = ActorOption,
    action: str | None = ActionOption,
    resource: str | None = ResourceOption,
    patient: str | None = PatientOption,
    outcome: str | None = OutcomeOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many records."),
    json_output: bool = JsonOption,
) -> None:
    """Search the audit trail, newest first (needs audit:read)."""
    filters = _filters(
        actor=actor,
        action=action,
        resource=resource,
        patient=patient,
        outcome=outcome,
        since=since,
        until=until,
    )
    with client() as c:
        page = c.audit_events(limit=limit, filters=filters)
    if json_output:
        print_json(page)
        return
    print_table(
        "audit records",
        ("seq", "time (UTC)", "actor", "via", "action", "resource", "patient", "outcome"),
        [
            (
                e.seq,
                e.occurred_at.isoformat(timespec="seconds"),
                e.actor_name or "(anonymous)",
                e.auth_method or "",
                e.action,
                f"{e.resource_type or ''} {e.resource_id or ''}".strip(),
                e.patient_ref or "",
                e.outcome,
            )
            for e in page.events
        ],
    )


@app.command("export")
def export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or fhir (an R4 Bundle)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
    actor: str | None = ActorOption,
    action: str | None = ActionOption,
    resource: str | None = ResourceOption,
    patient: str | None = PatientOption,
    outcome: str | None = OutcomeOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    json_output: bool = JsonOption,
) -> None:
    """Export every matching record, oldest first (needs audit:read). With --json and
    --output, prints where it wrote what (the export itself is in --format)."""
    filters = _filters(
        actor=actor,
        action=action,
        resource=resource,
        patient=patient,
        outcome=outcome,
        since=since,
        until=until,
    )
    with client() as c:
        data = c.audit_export(fmt, filters)
    if output is None:
        if json_output and fmt != "fhir":
            raise InvalidInputError(
                "--json without --output: give --output FILE, or --format fhir (JSON itself)",
                errors=[FieldError("output", "required with --json")],
            )
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_output(output, data)
        if json_output:
            print_json({"path": str(output), "format": fmt, "bytes": len(data)})
        else:
            console.print(f"wrote {len(data)} bytes to {output}")


@app.command("verify")
def verify(
    checkpoints: Path | None = typer.Option(
        None,
        "--checkpoints",
        help="Folder of exported checkpoints (default: MEDOPS_AUDIT_CHECKPOINT_DIR).",
    ),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="PEM file of the checkpoint key (see 'medops audit public-key')."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Check every chain, checkpoint and bound row; exit 1 naming the first bad record."""
    from medops import admin
    from medops.audit.verify import summary

    report = admin.audit_verify(settings(), checkpoints, public_key)
    first = report.first
    result = summary(report)
    if json_output:
        print_json(result)
    elif first is None:
        shown = result.model_dump(exclude={"findings", "limits", "rows"})
        print_record(
            "audit verification", shown | {f"{k} checked": v for k, v in result.rows.items()}
        )
        for limit in result.limits:
            console.print(f"not checked: {limit}")
    if first is not None:
        where = f"seq {first.seq} ({first.where})" if first.seq is not None else first.where
        raise fail(f"audit log does not verify: {where}: {first.reason}")


@app.command("checkpoint")
def checkpoint(
    accept_problems: str | None = typer.Option(
        None,
        "--accept-problems",
        help="Sign even though records in the range fail verification, for this reason "
        "(after the intrusion was investigated; the problems stay reported by verify).",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Check and sign a checkpoint of the records since the last one (the server does this
    itself); refused, exit 1, when a record in the range fails verification."""
    from medops import admin

    made = admin.audit_checkpoint(settings(), accept=accept_problems)
    if json_output:
        print_json(made)
    elif made is None:
        console.print("no new audit records since the last checkpoint")
    else:
        print_record("audit checkpoint", made)


@app.command("public-key")
def public_key(json_output: bool = JsonOption) -> None:
    """Print the checkpoint verification key (PEM) to give to auditors."""
    from medops import admin

    pem = admin.audit_public_key(settings())
    if json_output:
        print_json({"public_key_pem": pem})
        return
    sys.stdout.write(pem)


@app.command("explanation")
def explanation(
    prediction_id: str = typer.Argument(..., help="The prediction's id."),
    json_output: bool = JsonOption,
) -> None:
    """Show what a clinician was shown of why: the logged explanation of a prediction (every
    feature's contribution as a bar chart, those the answer showed marked), checked against
    the prediction's audit record."""
    from medops.cli.explain_chart import print_explanation

    with client() as c:
        found = c.prediction_explanation(prediction_id)
    if json_output:
        print_json(found)
        return
    shown = sum(1 for item in found.contributions if item.shown)
    print_explanation(
        {
            "method": found.method,
            "exact": found.exact,
            "scale": found.scale,
            "base_value": found.base_value,
            "output": found.output,
            "error_estimate": found.error_estimate,
            "contributions": [
                item.model_dump() | {"feature": f"{item.feature}{'' if item.shown else ' *'}"}
                for item in found.contributions
            ],
        },
        f"prediction {found.prediction_id} ({found.model}/{found.version}, "
        f"{found.occurred_at.isoformat(timespec='seconds')})",
    )
    console.print(
        f"{shown} contribution(s) shown in the answer; * = logged, not shown. "
        + (
            "Matches its audit record."
            if found.audited
            else "DOES NOT match its audit record's digest."
        )
    )
