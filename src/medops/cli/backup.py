"""Backups (local: run where the database and stores are): create, list, verify, restore, prune.

Each backup is a consistent copy of the database and the blob stores, encrypted and signed
with the backup key (MEDOPS_BACKUP_KEY / MEDOPS_BACKUP_KEY_FILE), written to every target of
MEDOPS_BACKUP_TARGETS (folders or s3://bucket/prefix) or to --to. Audited as backup.*.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medops.cli.common import settings
from medops.cli.output import JsonOption, console, fail, print_json, print_record, print_table

app = typer.Typer(help=__doc__, no_args_is_help=True)

ToOption = typer.Option(
    None,
    "--to",
    help="A target (folder or s3://bucket/prefix) instead of MEDOPS_BACKUP_TARGETS; repeatable.",
)
FromOption = typer.Option(
    None,
    "--from",
    help="The target to read the backup from (default: the first of MEDOPS_BACKUP_TARGETS "
    "that holds it).",
)


def _rule_text(met: bool, reason: str) -> str:
    return "3-2-1 rule: met" if met else f"3-2-1 rule: NOT met ({reason})"


@app.command("create")
def create(
    to: list[str] | None = ToOption,
    json_output: bool = JsonOption,
) -> None:
    """Back up the database and the blob stores now (while the server serves)."""
    from medops.backup.service import create_backup

    result = create_backup(settings(), targets=to or None)
    if json_output:
        print_json(result)
    else:
        print_record(
            f"backup {result.id}",
            {
                "created_at": result.created_at.isoformat(timespec="seconds"),
                "database": f"{result.database}, {result.database_bytes} bytes",
                "objects": f"{result.objects} ({result.object_bytes} bytes)",
                "seconds": result.seconds,
            },
        )
        print_table(
            "targets",
            ("target", "copied", "reused", "bytes copied", "result"),
            [
                (t.target, t.copied, t.reused, t.bytes_copied, t.error or "ok")
                for t in result.targets
            ],
        )
        console.print(_rule_text(result.rule.met, result.rule.reason), markup=False)
    if not result.ok:
        failed = next(t for t in result.targets if t.error)
        raise fail(f"backup {result.id} missed target {failed.target}: {failed.error}")


@app.command("list")
def list_(
    to: list[str] | None = typer.Option(
        None, "--target", help="List this target instead of MEDOPS_BACKUP_TARGETS; repeatable."
    ),
    json_output: bool = JsonOption,
) -> None:
    """The backups in the targets, newest first, and whether the 3-2-1 rule is met."""
    from medops.backup.service import list_backups

    result = list_backups(settings(), targets=to or None)
    if json_output:
        print_json(result)
        return
    print_table(
        "backups",
        ("id", "created_at", "database", "revision", "objects", "bytes", "targets"),
        [
            (
                b.id,
                b.created_at.isoformat(timespec="seconds"),
                b.database,
                b.schema_revision or "-",
                b.objects,
                b.bytes,
                ", ".join(b.targets),
            )
            for b in result.backups
        ],
    )
    console.print(_rule_text(result.rule.met, result.rule.reason), markup=False)
    for error in result.errors:
        console.print(f"could not read {error}", markup=False)


@app.command("verify")
def verify(
    backup_id: str = typer.Argument(..., metavar="ID", help="The backup ('medops backup list')."),
    source: str | None = FromOption,
    json_output: bool = JsonOption,
) -> None:
    """Check a backup: its signature, every object's digest, and that the dump decrypts."""
    from medops.backup.service import verify_backup

    result = verify_backup(settings(), backup_id, source=source)
    if json_output:
        print_json(result)
    else:
        print_record(
            f"backup {result.id}",
            {
                "target": result.target,
                "verdict": "valid" if result.ok else "invalid",
                "objects": result.objects,
                "bytes": result.bytes,
                "seconds": result.seconds,
            },
        )
    if not result.ok:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        raise fail(f"backup {backup_id} is not valid: {result.problems[0]}{more}")


@app.command("restore")
def restore(
    backup_id: str = typer.Argument(..., metavar="ID", help="The backup ('medops backup list')."),
    source: str | None = FromOption,
    json_output: bool = JsonOption,
) -> None:
    """Restore a backup onto this empty machine (empty MEDOPS_HOME and database)."""
    from medops.backup.service import restore_backup

    result = restore_backup(settings(), backup_id, source=source)
    if json_output:
        print_json(result)
    else:
        print_record(
            f"restored {result.id}",
            {
                "from": result.source,
                "database": result.database,
                "schema_revision": result.schema_revision,
                "objects": result.objects,
                "audit_records": result.audit_records,
                "chain heads match": "yes" if result.chain_heads_match else "no",
                "checkpoint matches": "yes" if result.checkpoint_matches else "no",
                "audit verified": {True: "yes", False: "no", None: "not checked"}[
                    result.audit_verified
                ],
                "seconds": result.seconds,
            },
        )
        if result.audit_problem:
            console.print(result.audit_problem, markup=False)
    if not (result.chain_heads_match and result.checkpoint_matches) or (
        result.audit_verified is False
    ):
        raise fail(
            f"backup {backup_id} was restored but does not match its manifest or its audit "
            "trail fails: run 'medops audit verify'"
        )


@app.command("prune")
def prune(
    to: list[str] | None = typer.Option(
        None, "--target", help="Prune this target instead of MEDOPS_BACKUP_TARGETS; repeatable."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
    json_output: bool = JsonOption,
) -> None:
    """Apply retention (MEDOPS_BACKUP_KEEP_DAILY/WEEKLY/MONTHLY) and remove unneeded objects."""
    from medops.backup.service import prune_backups

    results = prune_backups(settings(), targets=to or None, dry_run=dry_run)
    if json_output:
        print_json(results)
        return
    print_table(
        "prune" + (" (dry run)" if dry_run else ""),
        ("target", "kept", "removed", "objects removed", "bytes removed"),
        [
            (r.target, len(r.kept), ", ".join(r.removed) or "-", r.objects_removed, r.bytes_removed)
            for r in results
        ],
    )


wal_app = typer.Typer(
    help="PostgreSQL WAL archiving into the backup targets, for point-in-time recovery.",
    no_args_is_help=True,
)
app.add_typer(wal_app, name="wal")


@wal_app.command("push")
def wal_push(
    path: Path = typer.Argument(..., help="The WAL file (PostgreSQL's %p)."),
    json_output: bool = JsonOption,
) -> None:
    """archive_command: encrypt one WAL file into every target (idempotent)."""
    from medops.backup import wal

    written = wal.push(settings(), path)
    if json_output:
        print_json({"wal": path.name, "written": written})


@wal_app.command("fetch")
def wal_fetch(
    name: str = typer.Argument(..., help="The WAL file's name (PostgreSQL's %f)."),
    into: Path = typer.Argument(..., help="Where to write it (PostgreSQL's %p)."),
    json_output: bool = JsonOption,
) -> None:
    """restore_command: bring one WAL file back (exit 1 when the archive lacks it)."""
    from medops.backup import wal

    wal.fetch(settings(), name, into)
    if json_output:
        print_json({"wal": name, "written_to": str(into)})
