"""``medops data``: dataset versions (add, list, show, diff, checkout, verify, rm), legal
holds, push and pull to a remote, and audited re-identification. Every command answers
``--json``; long work shows a progress bar on a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, err_console, print_json, print_record, print_table

app = typer.Typer(
    help="Datasets: versions (add, checkout, verify), holds, remotes, re-identification.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The data encryption keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
PurposeOption = typer.Option(..., "--purpose", help="Why you read the data (audited).")
RemoteOption = typer.Option(
    None, "--remote", help="The configured remote (MEDOPS_DATA_REMOTE); the server uses no other."
)


@contextlib.contextmanager
def _bars(quiet: bool) -> Iterator[Any]:
    """A progress callback drawing one bar per stage on stderr (a terminal, not --json)."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err_console.current,
        transient=True,
    ) as bars:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update


def _version_rows(versions: list[Any]) -> list[list[Any]]:
    return [
        [
            v.ref,
            v.root[:19],
            v.file_count,
            v.total_bytes,
            v.deidentified,
            v.created_by,
            v.created_at.isoformat(),
            v.message,
        ]
        for v in versions
    ]


VERSION_COLUMNS = ("version", "root", "files", "bytes", "de-identified", "by", "at", "message")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The dataset's name."),
    paths: list[Path] = typer.Argument(..., help="Files and folders to version."),
    message: str | None = typer.Option(None, "--message", "-m", help="What this version is."),
    deidentify: bool = typer.Option(
        False, "--deidentify", help="De-identify DICOM files (PS3.15 Annex E) before upload."
    ),
    retain_dates: str = typer.Option(
        "off", "--retain-dates", help="off, full or modified (shifted per patient)."
    ),
    clean_descriptors: bool = typer.Option(
        False, "--clean-descriptors", help="Keep descriptions, cleaned (Annex E option)."
    ),
    project: str | None = typer.Option(
        None, "--project", help="De-identification project (default: the dataset's name)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Record a new version of NAME from PATHs (unchanged files are not read again)."""
    if retain_dates not in ("off", "full", "modified"):
        from medops.errors import FieldError, InvalidInputError

        raise InvalidInputError(
            "--retain-dates must be off, full or modified",
            errors=[FieldError("retain_dates", "off, full or modified")],
        )
    with client() as c, _bars(as_json) as progress:
        result = c.add_dataset(
            name,
            paths,
            message=message,
            deidentify=deidentify,
            retain_dates=retain_dates,
            clean_descriptors=clean_descriptors,
            project=project,
            progress=progress,
        )
    if as_json:
        print_json(result)
        return
    state = "unchanged" if result.unchanged else "added"
    print_table(f"{result.version.ref} {state}", VERSION_COLUMNS, _version_rows([result.version]))


@app.command("list")
def list_(
    name: str | None = typer.Argument(None, help="A dataset: list its versions."),
    deleted: bool = typer.Option(False, "--deleted", help="Include deleted versions."),
    as_json: bool = JsonOption,
) -> None:
    """Datasets, or one dataset's versions."""
    with client() as c:
        if name is None:
            found = c.datasets()
            if as_json:
                print_json(found)
                return
            print_table(
                "Datasets",
                ("name", "project", "versions", "latest", "holds", "by"),
                [[d.name, d.project, d.versions, d.latest, d.holds, d.created_by] for d in found],
            )
            return
        versions = c.dataset_versions(name, include_deleted=deleted)
    if as_json:
        print_json(versions)
        return
    print_table(f"Versions of {name}", VERSION_COLUMNS, _version_rows(versions))


@app.command("show")
def show(ref: str = typer.Argument(..., help="NAME@VERSION"), as_json: bool = JsonOption) -> None:
    """A version: what it holds, its DICOM series, tabular schemas and holds."""
    with client() as c:
        detail = c.dataset_version(ref)
    if as_json:
        print_json(detail)
        return
    v = detail.version
    print_record(
        v.ref,
        {
            "root": v.root,
            "files": v.file_count,
            "bytes": v.total_bytes,
            "de-identified": v.deidentified,
            "derived from": v.derived_from,
            "added by": v.created_by,
            "at": v.created_at.isoformat(),
            "message": v.message,
            "deleted": v.deleted_at,
        },
    )
    if detail.series:
        print_table(
            "DICOM series",
            ("series", "modality", "patient", "slices", "burned in"),
            [
                [s.series_uid, s.modality, s.patient_ref, s.slices, s.burned_in]
                for s in detail.series
            ],
        )
    for path, table in (detail.contents.get("tables") or {}).items():
        columns = table.get("columns", []) if isinstance(table, dict) else []
        print_table(
            f"Table {path}",
            ("column", "type", "nulls"),
            [[c.get("name"), c.get("type"), c.get("nulls")] for c in columns],
        )
    if detail.holds:
        print_table(
            "Holds", ("id", "reason", "by"), [[h.id, h.reason, h.placed_by] for h in detail.holds]
        )


@app.command("diff")
def diff(
    name: str = typer.Argument(..., help="The dataset."),
    old: str = typer.Argument(..., help="The older version."),
    new: str = typer.Argument("latest", help="The newer version."),
    as_json: bool = JsonOption,
) -> None:
    """What changed between two versions."""
    with client() as c:
        result = c.dataset_diff(name, old, new)
    if as_json:
        print_json(result)
        return
    rows = [["added", f.path] for f in result.added] + [["removed", f.path] for f in result.removed]
    rows += [["modified", f.path] for f in result.modified]
    rows += [["renamed", f"{r.old} -> {r.new}"] for r in result.renamed]
    print_table(
        f"{result.old} -> {result.new} ({result.unchanged} unchanged)", ("change", "path"), rows
    )


@app.command("checkout")
def checkout(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    dest: Path = typer.Argument(..., help="The folder to write the files in."),
    purpose: str = PurposeOption,
    force: bool = typer.Option(False, "--force", help="Overwrite files that differ."),
    as_json: bool = JsonOption,
) -> None:
    """Write a version's exact bytes under DEST, each file verified (audited)."""
    with client() as c, _bars(as_json) as progress:
        answer = c.checkout_dataset(ref, dest, purpose=purpose, force=force, progress=progress)
    summary = {
        "ref": answer.version.ref,
        "root": answer.version.root,
        "files": len(answer.files),
        "dest": str(dest),
    }
    if as_json:
        print_json(summary)
        return
    print_record(f"Checked out {answer.version.ref}", summary)


@app.command("verify")
def verify(ref: str = typer.Argument(..., help="NAME@VERSION"), as_json: bool = JsonOption) -> None:
    """Decrypt and hash every stored byte of a version; names what is bad (exit 1)."""
    with client() as c:
        result = c.verify_dataset(ref)
    if as_json:
        print_json(result)
    else:
        verdict = "ok" if result.ok else "failed"
        print_record(
            f"{result.ref}: {verdict}",
            {
                "objects": result.objects,
                "files": result.files,
                "bad objects": result.bad_objects,
                "bad files": result.bad_files[:50],
            },
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("rm")
def rm(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    reason: str = typer.Option(..., "--reason", help="Why it goes (audited)."),
    as_json: bool = JsonOption,
) -> None:
    """Delete a version under the retention rule (refused while a model or a hold needs it)."""
    with client() as c:
        result = c.delete_dataset_version(ref, reason)
    if as_json:
        print_json(result)
        return
    print_record(f"Deleted {result.version.ref}", {"objects removed": result.objects_deleted})


@app.command("hold")
def hold(
    name: str = typer.Argument(..., help="The dataset."),
    reason: str = typer.Option(..., "--reason", help="Why (audited)."),
    version: int | None = typer.Option(None, "--version", help="Only this version."),
    as_json: bool = JsonOption,
) -> None:
    """Place a legal hold: no version it covers can be deleted."""
    with client() as c:
        result = c.hold_dataset(name, reason, version)
    if as_json:
        print_json(result)
        return
    print_record(
        f"Hold {result.id}",
        {"dataset": result.dataset, "version": result.version, "reason": result.reason},
    )


@app.command("release")
def release(
    hold_id: str = typer.Argument(..., help="The hold's id (see 'medops data show')."),
    as_json: bool = JsonOption,
) -> None:
    """Release a legal hold."""
    with client() as c:
        result = c.release_hold(hold_id)
    if as_json:
        print_json(result)
        return
    print_record(f"Released {result.id}", {"dataset": result.dataset, "by": result.released_by})


def _transfer(kind: str, ref: str, remote: str | None, as_json: bool) -> None:
    with client() as c:
        result = c.push_dataset(ref, remote) if kind == "push" else c.pull_dataset(ref, remote)
    if as_json:
        print_json(result)
        return
    print_record(f"{kind} {result.ref}", result.model_dump(mode="json"))


@app.command("push")
def push(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    remote: str | None = RemoteOption,
    as_json: bool = JsonOption,
) -> None:
    """Copy a version's encrypted objects to the remote (MEDOPS_DATA_REMOTE); resumable."""
    _transfer("push", ref, remote, as_json)


@app.command("pull")
def pull(
    ref: str = typer.Argument(..., help="NAME@NUMBER"),
    remote: str | None = RemoteOption,
    as_json: bool = JsonOption,
) -> None:
    """Fetch a version from the remote, every object verified; then 'medops data checkout'."""
    _transfer("pull", ref, remote, as_json)


@app.command("reidentify")
def reidentify(
    project: str = typer.Argument(..., help="The de-identification project."),
    pseudonym: str = typer.Argument(..., help="The pseudonym or new UID."),
    reason: str = typer.Option(..., "--reason", help="Why (audited)."),
    kind: str | None = typer.Option(None, "--kind", help="patient, uid, ..."),
    as_json: bool = JsonOption,
) -> None:
    """Map a pseudonym back to the original (data:reidentify; audited with the reason)."""
    with client() as c:
        result = c.reidentify(project, pseudonym, reason, kind)
    if as_json:
        print_json(result)
        return
    print_table(
        f"{project}: {pseudonym}",
        ("kind", "original"),
        [[o.kind, o.original] for o in result.originals],
    )


@keys_app.command("rotate")
def rotate(as_json: bool = JsonOption) -> None:
    """Re-wrap every data key under the current KEK (put the new key first in
    MEDOPS_DATA_KEK or the key file); no data is re-encrypted."""
    with client() as c:
        result = c.rotate_data_keys()
    if as_json:
        print_json(result)
        return
    print_record(f"Keys now wrapped by {result.kek_id}", result.model_dump(mode="json"))
