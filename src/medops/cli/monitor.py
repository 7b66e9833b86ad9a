"""``medops monitor``: compute the due monitoring windows, read their reports, and read or
change a deployment's monitoring configuration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from medops.cli.common import client
from medops.cli.output import (
    JsonOption,
    console,
    print_json,
    print_record,
    print_table,
    progress,
)
from medops.errors import FieldError, InvalidInputError, clip
from medops.files import private_folder, write_output
from medops.monitoring.schemas import Correction, MonitoringConfigOut, ThresholdsMode
from medops.monitoring.titles import file_name, window_title

app = typer.Typer(
    help="Monitoring: drift, performance, calibration and fairness per window.",
    no_args_is_help=True,
)
WindowOption = typer.Option(
    "day",
    "--window",
    help="Window kind: hour, day or week (UTC), or count:N (N consecutive predictions).",
)


@app.command("run")
def run(window: str = WindowOption, json_output: bool = JsonOption) -> None:
    """Compute every complete window not computed yet, for every deployed version."""
    with progress(f"computing the due {window} windows"):
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
    for updated in summary.get("updated", []):
        console.print(
            f"updated {updated['deployment']} v{updated['version']} {updated['start']}: "
            f"{updated['labelled']} of {updated['rows']} with outcome",
            markup=False,
        )
    for skipped in summary["skipped"]:
        console.print(
            f"skipped {skipped['deployment']} v{skipped['version']}: {skipped['reason']}",
            markup=False,
        )
    for pending in summary.get("pending", []):
        console.print(
            f"not complete yet: {pending['deployment']} v{pending['version']} "
            f"({pending['predictions']} predictions so far): {pending['reason']}",
            markup=False,
        )
    if not summary["computed"] and not summary.get("updated"):
        if not summary.get("logged", True):
            console.print(
                "nothing to compute: no prediction has been logged yet "
                "('medops predict DEPLOYMENT ...' scores patients)",
                markup=False,
            )
        elif not summary.get("pending") and not summary["skipped"]:
            console.print(
                f"nothing to compute: every {summary['window']} window is computed already "
                "('medops monitor results DEPLOYMENT' lists them)",
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
        [r.start, str(r.version), str(r.rows), str(r.labelled), r.verdict,
         "; ".join(r.alerts) or "-"]
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
    window: str | None = typer.Option(
        None,
        "--window",
        help="Window kind (hour, day, week, count:N); default: the latest window of any kind.",
    ),
    start: str | None = typer.Option(
        None, "--start", help="Window start (ISO 8601 with offset); default: the latest."
    ),
    version: int | None = typer.Option(
        None, "--version", min=1, max=2**31 - 1, help="The version's windows (canary ones too)."
    ),
    sequence: int | None = typer.Option(
        None, "--sequence", min=0, help="A window's number in its series (count windows)."
    ),
    out: Path = typer.Option(Path(), "--out", help="Folder for the report's HTML and JSON files."),
    json_output: bool = JsonOption,
) -> None:
    """Write one window's page as a self-contained HTML file (the console's window page, its
    style inlined, no script) and its document as JSON into --out; --window, --start,
    --version and --sequence select the window (a canary version's, a count window's)."""
    when = _start(start)
    api = client()
    document = api.monitoring_report(deployment, window, when, version=version, sequence=sequence)
    # The window found, exactly: the HTML is of the same one.
    found_start = datetime.fromisoformat(document.start)
    page = api.monitoring_report_html(
        deployment,
        document.window,
        found_start,
        version=document.version,
        sequence=document.sequence,
    )
    private_folder(out)
    json_path, html_path = out / file_name(document, ".json"), out / file_name(document, ".html")
    write_output(json_path, _dumps(document.dump()))
    write_output(html_path, page)
    if json_output:
        print_json(
            {"html": str(html_path), "json": str(json_path), "window": window_title(document),
             "verdict": document.verdict}
        )  # fmt: skip
        return
    console.print(
        f"{window_title(document)}: {document.verdict}\nwrote {html_path} and {json_path.name}",
        markup=False,
    )


@app.command("config")
def config(
    deployment: str = typer.Argument(..., help="Deployment name."),
    json_output: bool = JsonOption,
) -> None:
    """Show the deployment's monitoring configuration (the defaults until one is set)."""
    found = client().monitoring_config(deployment)
    if json_output:
        print_json(found)
        return
    _print_config(found)


@app.command("configure")
def configure(
    deployment: str = typer.Argument(..., help="Deployment name."),
    threshold: list[str] = typer.Option(
        [],
        "--threshold",
        help="Threshold override FEATURE:TEST=VALUE, e.g. bmi:psi=0.3 (repeat for several).",
    ),
    correction: Correction | None = typer.Option(
        None, "--correction", help="Multiple-testing correction: holm, bonferroni, bh or none."
    ),
    thresholds: ThresholdsMode | None = typer.Option(
        None, "--thresholds", help="fixed (the defaults) or learned (from the reference)."
    ),
    min_samples: int | None = typer.Option(
        None, "--min-samples", min=2, help="Fewest rows a window needs to be judged."
    ),
    clear_thresholds: bool = typer.Option(
        False, "--clear-thresholds", help="Remove every override first (--threshold adds)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Change the deployment's monitoring configuration; what is not given stays as it is.
    Needs monitoring:configure."""
    overrides = [_override(text) for text in threshold]
    if not (overrides or correction or thresholds or min_samples or clear_thresholds):
        raise InvalidInputError(
            "nothing to change: give --threshold, --correction, --thresholds, --min-samples "
            "or --clear-thresholds"
        )
    api = client()
    current = api.monitoring_config(deployment)
    table = {} if clear_thresholds else {f: dict(t) for f, t in current.thresholds.items()}
    for feature, test, value in overrides:
        table.setdefault(feature, {})[test] = value
    changed = api.configure_monitoring(
        deployment,
        {
            "thresholds": table,
            "correction": correction or current.correction,
            "thresholds_mode": thresholds or current.thresholds_mode,
            "min_samples": current.min_samples if min_samples is None else min_samples,
        },
    )
    if json_output:
        print_json(changed)
        return
    _print_config(changed)


def _override(text: str) -> tuple[str, str, float]:
    """``FEATURE:TEST=VALUE`` as (feature, test, value)."""
    feature, _, rest = text.rpartition(":")
    test, _, number = rest.partition("=")
    try:
        value = float(number)
    except ValueError:
        value = None
    if not feature or not test or value is None:
        raise InvalidInputError(
            f"--threshold {clip(text)!r}: expected FEATURE:TEST=VALUE, e.g. bmi:psi=0.3",
            errors=[FieldError("--threshold", "expected FEATURE:TEST=VALUE")],
        )
    return feature, test, value


def _print_config(found: MonitoringConfigOut) -> None:
    overrides = [
        f"{feature}:{test}={value:g}"
        for feature, tests in found.thresholds.items()
        for test, value in tests.items()
    ]
    changed = (
        f"{found.updated_at.isoformat()} by {found.updated_by}"
        if found.updated_at is not None
        else "never (the defaults)"
    )
    print_record(
        f"monitoring configuration of {found.deployment}",
        {
            "thresholds": found.thresholds_mode,
            "threshold overrides": ", ".join(overrides) or "-",
            "correction": found.correction,
            "min samples": found.min_samples,
            "changed": changed,
        },
    )


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
