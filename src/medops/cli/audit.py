"""``medops audit``: verify the tamper-evident log, sign checkpoints (local, offline)."""

from __future__ import annotations

from pathlib import Path

import typer

from medops.cli.common import settings
from medops.cli.output import JsonOption, console, fail, print_json, print_record

app = typer.Typer(
    help="The tamper-evident audit log (local: runs on the database itself).", no_args_is_help=True
)


@app.command("verify")
def verify(
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Folder of exported checkpoints to compare with the database."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Check every chain and checkpoint; exit 1 naming the first bad record if any."""
    from medops import admin

    report = admin.audit_verify(settings(), checkpoints)
    first = report.first
    summary = {
        "ok": report.ok,
        "records": report.records,
        "chains": report.chains,
        "checkpoints": report.checkpoints,
        "exported_checkpoints": report.exported,
        "problems": len(report.problems),
        "first_bad_seq": first.seq if first else None,
        "first_problem": f"{first.where}: {first.reason}" if first else None,
    }
    if json_output:
        print_json(summary)
    elif first is None:
        print_record("audit verification", summary)
    if first is not None:
        where = f"seq {first.seq} ({first.where})" if first.seq is not None else first.where
        raise fail(f"audit log does not verify: {where}: {first.reason}")


@app.command("checkpoint")
def checkpoint(json_output: bool = JsonOption) -> None:
    """Sign a checkpoint of the records since the last one (the server does this itself)."""
    from medops import admin

    made = admin.audit_checkpoint(settings())
    if json_output:
        print_json(made)
    elif made is None:
        console.print("no new audit records since the last checkpoint")
    else:
        print_record("audit checkpoint", made)
