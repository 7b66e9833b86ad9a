"""``medops monitor``: compute the due monitoring windows and read their reports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_table
from medops.errors import FieldError, InvalidInputError

app = typer.Typer(
    help="Monitoring: drift, performance, calibration and fairness per window.",
    no_args_is_help=True,
)
WindowOption = typer.Option("day", "--window", help="Window kind: hour, day or week (UTC).")


@app.command("run")
def run(window: str = WindowOption, json_output: bool = JsonOption) -> None:
    """Compute every complete window not computed yet, for every deployed version."""
    summary = client().run_monitoring(window)
    if json_output:
        print_json(summary)
        return
    rows = [
        [c["deployment"], str(c["version"]), c["start"], str(c["rows"]), c["verdict"],
         str(len(c["alerts"]))]
        for c in summary["computed"]
    ]  # fmt: skip
    print_table(
        f"Monitoring run ({summary['window']} windows)",
        ["deployment", "version", "window start", "rows", "verdict", "alerts"],
        rows,
    )
    for skipped in summary["skipped"]:
        console.print(
            f"skipped {skipped['deployment']} v{skipped['version']}: {skipped['reason']}",
            markup=False,
        )


@app.command("results")
def results(
    deployment: str = typer.Argument(..., help="Deployment name."),
    window: str = WindowOption,
    limit: int = typer.Option(30, "--limit", min=1, max=1000, help="Newest windows shown."),
    json_output: bool = JsonOption,
) -> None:
    """The deployment's computed windows, newest first."""
    found = client().monitoring_results(deployment, window, limit=limit)
    if json_output:
        print_json(found)
        return
    rows = [
        [r["start"], str(r["version"]), str(r["rows"]), str(r["labelled"]), r["verdict"],
         "; ".join(r["alerts"]) or "-"]
        for r in found
    ]  # fmt: skip
    print_table(
        f"{deployment}: {window} windows",
        ["window start", "version", "rows", "with outcome", "verdict", "alerts"],
        rows,
    )


@app.command("report")
def report(
    deployment: str = typer.Argument(..., help="Deployment name."),
    window: str = WindowOption,
    start: str | None = typer.Option(
        None, "--start", help="Window start (ISO 8601 with offset); default: the latest."
    ),
    out: Path = typer.Option(Path(), "--out", help="Folder for the report's HTML and JSON files."),
) -> None:
    """Write one window's report as HTML (with plots) and JSON into --out."""
    when = _start(start)
    api = client()
    document = api.monitoring_report(deployment, window, when)
    page = api.monitoring_report_html(deployment, window, when)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"monitoring-{deployment}-{window}-{document['start'][:19].replace(':', '')}"
    (out / f"{stem}.json").write_text(_dumps(document))
    (out / f"{stem}.html").write_text(page)
    console.print(f"wrote {out / stem}.html and .json ({document['verdict']})", markup=False)


def _start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInputError(
            "--start must be an ISO 8601 time with an offset, e.g. 2026-11-27T00:00:00+00:00",
            errors=[FieldError("--start", "expected an ISO 8601 time with an offset")],
        )
    return moment


def _dumps(document: object) -> str:
    import json

    return json.dumps(document, indent=2, sort_keys=True) + "\n"
