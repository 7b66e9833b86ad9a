"""``medops predict``: score records with a deployment (through the SDK).

``--input`` takes a JSON object of features, a JSON list of records, a request body
(``{"features": ...}`` or ``{"records": [...]}``), ``@FILE`` or ``FILE`` holding one of those,
or a ``.csv`` FILE whose header row names the features (and optionally ``patient_ref``): each
row becomes a record; empty cells are sent as null, cells that read as numbers as numbers.

Without ``--output`` the records go in one request and the answer is printed (a table, or
JSON); an input larger than the server takes in one request is refused, naming ``--output``.
With ``--output results.csv`` (or ``.jsonl``) the input is streamed to the server in batches
within its per-request limits and every row's result is written to that file, with a
progress bar on an interactive terminal (medops/bulk_predict.py says how failures are kept
to their rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from medops.bulk_input import CsvInput, InputRow, json_rows
from medops.bulk_predict import (
    BulkPredictor,
    BulkSummary,
    ResultWriter,
    open_results,
    results_format,
)
from medops.cli.common import client
from medops.cli.output import (
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    print_table,
)
from medops.errors import FieldError, InvalidInputError, clip

if TYPE_CHECKING:
    from medops.client import Client
    from medops.serving.schemas import PredictLimits

# The most records any server takes in one request (the bound of MEDOPS_SERVING_MAX_RECORDS),
# and the default: over the default, the CLI asks the server before sending one request.
MOST_RECORDS: Final = 100_000
DEFAULT_RECORDS: Final = 1000
SHOWN_FAILURES: Final = 20


@dataclass
class PredictInput:
    """What ``--input`` held: one record's features or several records, and the request's
    own patient reference and metadata when it was a whole request body."""

    features: dict[str, Any] | None = None
    records: list[dict[str, Any]] | None = None
    patient_ref: str | None = None
    metadata: dict[str, Any] | None = None


def _bad(message: str, where: str = "input") -> InvalidInputError:
    return InvalidInputError(message, errors=[FieldError(where, message)])


def _csv_records(path: Path, where: str) -> list[dict[str, Any]]:
    """Every record of a CSV file for one request; a row the file gets wrong refuses it."""
    source = CsvInput(path, where)
    records: list[dict[str, Any]] = []
    try:
        for row in source:
            if row.record is None:
                raise _bad(f"{where} line {row.line}: {row.problem}")
            if len(records) >= MOST_RECORDS:
                raise _bad(
                    f"{where} has more than {MOST_RECORDS:,} rows: give --output results.csv "
                    "(or .jsonl) to send it in batches"
                )
            records.append(row.record)
    finally:
        source.close()
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


def _input_file(value: str) -> Path | None:
    """The file ``--input`` names, or None when it is JSON text."""
    if value.strip()[:1] in ("{", "["):
        return None
    return Path(value[1:] if value.startswith("@") else value)


def _where(path: Path) -> str:
    return f"--input {clip(path, 200)}"


def read_input(value: str) -> PredictInput:
    """Parse ``--input`` whole: JSON text, ``@FILE`` or ``FILE`` (JSON, or CSV by its
    suffix)."""
    path = _input_file(value)
    if path is None:
        text, where = value.strip(), "--input"
    else:
        where = _where(path)
        if path.suffix.lower() == ".csv":
            return PredictInput(records=_csv_records(path, where))
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise _bad(
                f"cannot read {where}: {exc.strerror} (give JSON text, @FILE or FILE)"
            ) from None
        except UnicodeDecodeError:
            raise _bad(f"{where} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad(f"{where} is not valid JSON: {exc}") from None
    return _from_json(data, where)


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def _served(p: dict[str, Any]) -> str:
    return f"v{p.get('version')} {p.get('arm')}" + (" cached" if p.get("cached") else "")


def _print_predictions(answer: dict[str, Any], name: str) -> None:
    predictions = answer.get("predictions", [])
    print_table(
        f"predictions of {answer.get('deployment', name)}",
        ("#", "id", "patient", "label", "score", "served by"),
        [
            (
                i,
                p.get("id"),
                p.get("patient_ref") or "-",
                p.get("label"),
                _score(p.get("score")),
                _served(p),
            )
            for i, p in enumerate(predictions)
        ],
    )
    total = answer.get("timing_ms", {}).get("total")
    if total is not None:
        console.print(f"{len(predictions)} prediction(s) in {total:.1f} ms, logged")


def predict(
    name: str = typer.Argument(..., help="Deployment name."),
    input_: str = typer.Option(
        ...,
        "--input",
        help="JSON text, @FILE or FILE: features, records, or a .csv of feature rows.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Send the input in batches and write one result row per input row to this "
        "file: .csv or .jsonl (prediction id, label, score, version, arm, or why not).",
    ),
    patient_ref: str | None = typer.Option(
        None, "--patient-ref", help="Patient reference for records that have none."
    ),
    fhir: bool = typer.Option(
        False, "--fhir", help="Answer as FHIR R4 RiskAssessment JSON (needs a patient reference)."
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Explain each prediction: its largest feature contributions as a bar chart.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Score one record or several with a deployment; every prediction is logged. A large
    file goes in batches with --output."""
    if output is not None:
        if fhir:
            raise _bad("--fhir prints one answer: leave out --output to use it", "fhir")
        if explain:
            raise _bad("--explain prints one answer: leave out --output to use it", "explain")
        _predict_to_file(name, input_, output, patient_ref, json_output=json_output)
        return
    parsed = read_input(input_)
    with client() as c:
        if parsed.records is not None and len(parsed.records) > DEFAULT_RECORDS:
            limits = c.predict_limits(name)
            if len(parsed.records) > limits.max_records:
                raise _bad(
                    f"the input has {len(parsed.records):,} records and deployment {name} "
                    f"takes at most {limits.max_records:,} per request: give --output "
                    "results.csv (or .jsonl) to send them in batches",
                    "output",
                )
        answer = c.predict(
            name,
            parsed.features,
            records=parsed.records,
            patient_ref=patient_ref if patient_ref is not None else parsed.patient_ref,
            metadata=parsed.metadata,
            fhir=fhir,
            explain=explain,
        )
    if json_output or fhir:
        print_json(answer)
        return
    _print_predictions(answer, name)
    if explain:
        from medops.cli.explain_chart import print_explanation

        for i, p in enumerate(answer.get("predictions", [])):
            if p.get("explanation") is not None:
                print_explanation(
                    p["explanation"], f"#{i} {p.get('id')}: why score {_score(p.get('score'))}"
                )


# -- in batches, to a file -----------------------------------------------------------------


def _with_ref(rows: Iterator[InputRow], patient_ref: str | None) -> Iterator[InputRow]:
    """Rows whose records without a patient reference get ``patient_ref``."""
    for row in rows:
        if patient_ref is None or row.record is None or "patient_ref" in row.record:
            yield row
        else:
            yield InputRow(row.row, row.line, row.record | {"patient_ref": patient_ref})


def _predict_to_file(
    name: str, value: str, output: Path, patient_ref: str | None, *, json_output: bool
) -> None:
    results_format(output)
    path = _input_file(value)
    if path is not None and output.resolve() == path.resolve():
        raise _bad("--output names the input file: give another file for the results", "output")
    source: CsvInput | None = None
    records: list[dict[str, Any]] = []
    if path is not None and path.suffix.lower() == ".csv":
        source = CsvInput(path, _where(path))
    else:
        parsed = read_input(value)
        records = parsed.records or [{"features": parsed.features or {}}]
        patient_ref = patient_ref if patient_ref is not None else parsed.patient_ref
    try:
        with client() as c:
            limits = c.predict_limits(name)
            if source is not None:
                source.check_columns(limits)
            rows = _with_ref(
                iter(source) if source is not None else json_rows(records), patient_ref
            )
            results = open_results(output)
            try:
                summary = _run(c, limits, results, rows, source, len(records), json_output)
            finally:
                results.close()
    finally:
        if source is not None:
            source.close()
    _report(summary, output, json_output=json_output)


def _run(
    c: Client,
    limits: PredictLimits,
    results: ResultWriter,
    rows: Iterator[InputRow],
    source: CsvInput | None,
    count: int,
    json_output: bool,
) -> BulkSummary:
    """Run the batches, with a progress bar on stderr when it is an interactive terminal
    (never under --json): by bytes of a CSV file read, or by records of a JSON input."""
    if json_output or not err_console.is_interactive:
        return BulkPredictor(c, limits, results).run(rows)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[failed]:,} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console.current,
    )
    total = source.size if source is not None else count
    task = progress.add_task(f"predict {limits.deployment}", total=total, rows=0, failed=0)

    def advance(summary: BulkSummary) -> None:
        done = source.position() if source is not None else summary.rows
        progress.update(
            task,
            completed=done,
            rows=summary.rows,
            failed=summary.failed + summary.not_sent,
        )

    with progress:
        summary = BulkPredictor(c, limits, results, on_batch=advance).run(rows)
        progress.update(task, completed=total)
    return summary


def _report(summary: BulkSummary, output: Path, *, json_output: bool) -> None:
    """The summary (counts; the first failures) on stdout; a line on stderr and exit 1
    when any row was not scored."""
    kind = output.suffix.lower().lstrip(".")
    if json_output:
        print_json(summary.as_dict() | {"output": str(output), "format": kind})
    else:
        console.print(
            f"{summary.succeeded:,} of {summary.rows:,} rows scored by {summary.deployment} "
            f"in {summary.requests:,} request(s), {summary.seconds:.1f} s; results in "
            f"{output} ({kind.upper()})",
            markup=False,
            highlight=False,
        )
        if summary.served:
            served = ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.served.items()))
            console.print(f"served by {served}", markup=False, highlight=False)
        if summary.failures:
            shown = summary.failures[:SHOWN_FAILURES]
            print_table(
                f"rows not scored ({summary.failed:,} failed, {summary.not_sent:,} not sent)",
                ("row", "line", "why"),
                [(f.row, "-" if f.line is None else f.line, f.reason) for f in shown],
            )
            more = summary.failed + summary.not_sent - len(shown)
            if more > 0:
                console.print(f"and {more:,} more, marked in {output}", markup=False)
    if summary.complete:
        return
    if summary.stopped is not None:
        raise fail(
            f"the run stopped: {summary.stopped}; the {summary.succeeded:,} rows scored are "
            f"in {output}, the others are marked 'failed' or 'not-sent' there with why: fix "
            "the cause and send those rows again"
        )
    raise fail(
        f"{summary.failed:,} of {summary.rows:,} rows were not scored (marked 'failed' in "
        f"{output} with why; the scored rows are kept): fix those rows and send them again"
    )
