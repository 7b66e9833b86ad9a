"""``medops db``: schema migrations, run on the server's own database."""

from __future__ import annotations

import dataclasses

import typer

from medops.cli.common import settings
from medops.cli.output import JsonOption, print_json, print_record

app = typer.Typer(
    help="Database schema migrations (local: run where the database is).",
    no_args_is_help=True,
)


@app.command("upgrade")
def upgrade(json_output: bool = JsonOption) -> None:
    """Migrate the database to the newest schema of this release."""
    from medops import admin

    result = admin.upgrade(settings())
    if json_output:
        print_json(dataclasses.asdict(result))
    else:
        print_record(
            "database upgraded",
            {
                "database": result.database,
                "from": result.before or "(empty)",
                "to": result.after,
                "blobs encrypted": result.blobs_encrypted,
                "blobs failing their digest": ", ".join(result.blobs_failed) or "none",
            },
        )


@app.command("status")
def status(json_output: bool = JsonOption) -> None:
    """Show the database's schema revision and the newest one."""
    from medops import admin

    result = admin.status(settings())
    record = {
        "database": result.database,
        "current": result.before,
        "head": result.after,
        "up_to_date": result.before == result.after,
    }
    if json_output:
        print_json(record)
    else:
        print_record("database schema", record)
