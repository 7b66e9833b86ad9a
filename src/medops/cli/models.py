"""``medops models``: the model registry from the command line (all through the SDK).

Packaging happens here, on the registering user's machine: a scikit-learn, LightGBM or
XGBoost model saved with joblib is loaded (which runs code: load only your own files),
converted to ONNX and checked for parity; the server receives only the ONNX file.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from medops.cli.common import PasswordStdinOption, client, read_password, with_one_time_code
from medops.cli.common import read_json_file as _read_json
from medops.cli.output import JsonOption, console, print_json, print_record, print_table, progress
from medops.core.signature import ModelSignature
from medops.errors import FieldError, InvalidInputError, clip
from medops.files import write_output
from medops.registry.refs import parse_ref
from medops.registry.schemas import QUANTIZE_TOLERANCE, AliasEventOut, VersionCreate, VersionOut
from medops.registry.validation_report import MetricValue

app = typer.Typer(
    help="Model registry: register, validate, card, approve, promote, roll back.",
    no_args_is_help=True,
)

DemographicOption = typer.Option(
    [], "--demographic", help="A feature that is a demographic attribute (repeatable)."
)
ToleranceOption = typer.Option(
    1e-4, "--tolerance", help="Largest allowed |ONNX - native| probability."
)
RangeOption = typer.Option(
    [], "--range", help="Allowed range of a numeric feature, e.g. age=18,110 (repeatable)."
)
BandsOption = typer.Option(
    [], "--bands", help="Subgroup band edges of a numeric demographic, e.g. age=40,60 (repeatable)."
)


def _bands(values: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for value in values:
        name, _, edges = value.partition("=")
        try:
            out[name.strip()] = [float(e) for e in edges.split(",") if e.strip()]
        except ValueError:
            reason = "use NAME=EDGE,EDGE,... with numbers"
            raise InvalidInputError(
                f"--bands {clip(value)!r}: {reason}", errors=[FieldError("bands", reason)]
            ) from None
        if not name.strip() or not out[name.strip()]:
            raise InvalidInputError(f"--bands {clip(value)!r}: use NAME=EDGE,EDGE,...")
    return out


def _ranges(values: list[str]) -> dict[str, tuple[float, float]]:
    edges = _bands(values)
    bad = [name for name, pair in edges.items() if len(pair) != 2]
    if bad:
        reason = "use NAME=MIN,MAX"
        raise InvalidInputError(f"--range {bad[0]}: {reason}", errors=[FieldError("range", reason)])
    return {name: (pair[0], pair[1]) for name, pair in edges.items()}


def _tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                f"--tag {clip(value)!r}: use KEY=VALUE", errors=[FieldError("tag", "KEY=VALUE")]
            )
        tags[key] = val
    return tags


def _pinned(value: str) -> bool:
    """``NAME@VERSION`` names a dataset version; anything else is an unchecked URI."""
    from medops.datasets.schemas import DatasetRef

    if "@" not in value:
        return False
    try:
        DatasetRef.parse(value)
    except InvalidInputError:
        return False
    return True


def _lineage(
    training_data: str | None,
    training_digest: str | None,
    commit: str | None,
    repository: str | None,
    validation_data: str | None = None,
    reference_data: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if training_data and _pinned(training_data):
        if training_digest:
            raise InvalidInputError(
                "--training-digest is for a URI: a dataset version carries its own digest",
                errors=[FieldError("training_digest", "not with NAME@VERSION")],
            )
        out["training_data"] = {"dataset": training_data}
    elif training_data:
        out["training_data"] = {"uri": training_data, "digest": training_digest}
    elif training_digest:
        raise InvalidInputError("--training-digest needs --training-data")
    for role, value in (("validation", validation_data), ("reference", reference_data)):
        if value is None:
            continue
        if not _pinned(value):
            reason = "give a dataset version as NAME@VERSION"
            raise InvalidInputError(
                f"--{role}-data {value!r}: {reason}", errors=[FieldError(f"{role}_data", reason)]
            )
        out[f"{role}_data"] = {"dataset": value}
    if commit:
        out["code"] = {"commit": commit, "repository": repository}
    elif repository:
        raise InvalidInputError("--repository needs --commit")
    return out


def _show_version(version: VersionOut, json_output: bool, title: str) -> None:
    if json_output:
        print_json(version)
        return
    parity = version.parity
    print_record(
        title,
        {
            "ref": version.ref,
            "aliases": ", ".join(version.aliases) or "-",
            "status": version.status,
            "artifact sha256": version.artifact_digest,
            "size (bytes)": version.artifact_size,
            "framework": version.framework,
            "features": ", ".join(version.signature.feature_names),
            "demographic": ", ".join(f.name for f in version.signature.demographics) or "-",
            "classes": ", ".join(str(c) for c in version.signature.outputs.class_labels),
            "parity": (
                f"max |diff| {parity.max_abs_diff:.3g} <= {parity.tolerance:g} "
                f"on {parity.rows} rows"
            )
            if parity
            else "not checked",
            **_derivation(version),
            "training data": version.training_data.uri if version.training_data else "-",
            "pinned data": ", ".join(
                f"{role} {pin.get('dataset')}"
                for role, pin in sorted(version.lineage.get("datasets", {}).items())
                if isinstance(pin, dict)
            )
            or "-",
            "code": version.code.commit if version.code else "-",
            "registered": (
                f"{version.created_at.isoformat(timespec='seconds')} by {version.created_by}"
            ),
        },
    )
    for warning in version.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def _derivation(version: VersionOut) -> dict[str, str]:
    """The parent and, for an INT8 version, what quantization measured (empty otherwise)."""
    out = {"parent": version.parent} if version.parent else {}
    q = version.lineage.get("quantization")
    if isinstance(q, dict):
        out["quantization"] = (
            f"INT8 of {q.get('parent')}: {q.get('us_per_row', 0):.3g} vs "
            f"{q.get('parent_us_per_row', 0):.3g} µs/row, {q.get('size')} vs "
            f"{q.get('parent_size')} bytes, max |diff| {q.get('max_probability_diff', 0):.3g}"
        )
    return out


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Model name."),
    description: str | None = typer.Option(None, "--description", help="What the model is for."),
    policy: Path | None = typer.Option(
        None, "--policy", help="Promotion policy JSON file (needs models:policy)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Register a model name (versions are added with 'register')."""
    with client() as c:
        model = c.create_model(
            name, description=description, policy=_read_json(policy, "policy") if policy else None
        )
    if json_output:
        print_json(model)
    else:
        print_record(f"created model {model.name}", model.model_dump(mode="json"))


@app.command("policy")
def policy_(
    name: str = typer.Argument(..., help="Model name."),
    set_file: Path | None = typer.Option(
        None, "--set", help="Replace the policy with this JSON file."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Show a model's promotion policy, or replace it with --set (needs models:policy)."""
    with client() as c:
        model = (
            c.set_policy(name, _read_json(set_file, "policy")) if set_file else c.get_model(name)
        )
    if json_output:
        print_json(model.policy)
    else:
        print_record(f"promotion policy of {model.name}", model.policy.model_dump(mode="json"))


@app.command("register")
def register(
    name: str = typer.Argument(..., help="Model name (create it first)."),
    model_file: Path = typer.Argument(
        ..., help="A .onnx file, or a joblib file of a scikit-learn/LightGBM/XGBoost model."
    ),
    sample: Path | None = typer.Option(
        None, "--sample", help="CSV of feature rows: signature inference and the parity check."
    ),
    signature: Path | None = typer.Option(
        None, "--signature", help="Signature JSON (required for a .onnx file)."
    ),
    demographic: list[str] = DemographicOption,
    bands: list[str] = BandsOption,
    ranges: list[str] = RangeOption,
    tolerance: float = ToleranceOption,
    training_data: str | None = typer.Option(
        None,
        "--training-data",
        help="The training data: a dataset version NAME@VERSION (checked; recorded in the "
        "lineage), or the URI of data outside medops (unchecked).",
    ),
    validation_data: str | None = typer.Option(
        None, "--validation-data", help="The validation data's dataset version NAME@VERSION."
    ),
    reference_data: str | None = typer.Option(
        None,
        "--reference-data",
        help="The reference (monitoring baseline) data's dataset version NAME@VERSION.",
    ),
    training_digest: str | None = typer.Option(
        None, "--training-digest", help="SHA-256 of the training data."
    ),
    commit: str | None = typer.Option(None, "--commit", help="Git commit of the training code."),
    repository: str | None = typer.Option(
        None, "--repository", help="Repository of the training code."
    ),
    description: str | None = typer.Option(
        None, "--description", help="What changed in this version."
    ),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag (repeatable)."),
    json_output: bool = JsonOption,
) -> None:
    """Package a model as ONNX (with a parity check) and register it as the next version."""
    lineage = _lineage(
        training_data, training_digest, commit, repository, validation_data, reference_data
    )
    with client() as c:
        if model_file.suffix.lower() == ".onnx":
            if signature is None:
                raise InvalidInputError(
                    "a .onnx file needs --signature FILE.json",
                    errors=[FieldError("signature", "required for .onnx")],
                )
            try:
                onnx = model_file.read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"cannot read {model_file}: {exc.strerror}") from None
            metadata = VersionCreate(
                signature=ModelSignature.model_validate(_read_json(signature, "signature")),
                framework="onnx",
                description=description,
                tags=_tags(tag),
                **lineage,
            )
            with progress(f"registering {model_file.name} (the server checks the ONNX file)"):
                version = c.register_version(name, onnx, metadata)
        else:
            from medops.packaging import package_model
            from medops.packaging.files import load_native, read_sample

            if sample is None:
                raise InvalidInputError(
                    "a native model needs --sample CSV for the parity check",
                    errors=[FieldError("sample", "required")],
                )
            native = load_native(model_file)
            with progress(f"converting {model_file.name} to ONNX and checking parity"):
                package = package_model(
                    native,
                    sample=read_sample(sample),
                    signature=ModelSignature.model_validate(_read_json(signature, "signature"))
                    if signature
                    else None,
                    demographic=demographic,
                    bands=_bands(bands),
                    ranges=_ranges(ranges),
                    tolerance=tolerance,
                )
            with progress("registering (the server re-measures parity)"):
                version = c.register_package(
                    name, package, description=description, tags=_tags(tag), **lineage
                )
    _show_version(version, json_output, f"registered {version.ref}")
    if not json_output and "uri" in lineage.get("training_data", {}):
        console.print(
            "note: the training data is an unchecked URI; pin a dataset version instead with "
            "--training-data NAME@VERSION (after 'medops data add NAME PATH')",
            markup=False,
            highlight=False,
        )


@app.command("import-mlflow")
def import_mlflow(
    uri: str = typer.Argument(
        ..., help="MLflow model URI: runs:/RUN_ID/PATH or models:/NAME/VERSION."
    ),
    name: str = typer.Option(..., "--name", help="medops model to register the version under."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: MLflow's own default)."
    ),
    sample: Path | None = typer.Option(
        None, "--sample", help="CSV rows for the parity check (default: the logged input example)."
    ),
    demographic: list[str] = DemographicOption,
    bands: list[str] = BandsOption,
    ranges: list[str] = RangeOption,
    tolerance: float = ToleranceOption,
    json_output: bool = JsonOption,
) -> None:
    """Import a model logged with MLflow: its run id, params and metrics become lineage."""
    from medops.packaging.files import read_sample
    from medops.packaging.mlflow import import_mlflow as do_import

    with progress(f"importing {uri} from MLflow and checking parity"):
        package = do_import(
            uri,
            tracking_uri=tracking_uri,
            sample=read_sample(sample) if sample else None,
            demographic=demographic,
            bands=_bands(bands),
            ranges=_ranges(ranges),
            tolerance=tolerance,
        )
    with client() as c, progress("registering (the server re-measures parity)"):
        version = c.register_package(name, package, description=f"imported from MLflow {uri}")
    _show_version(version, json_output, f"imported {uri} as {version.ref}")


@app.command("list")
def list_(
    name: str | None = typer.Argument(None, help="A model: list its versions."),
    json_output: bool = JsonOption,
) -> None:
    """List models, or the versions of one model."""
    with client() as c:
        if name is None:
            models = c.list_models()
            if json_output:
                print_json(models)
                return
            print_table(
                "models",
                ("name", "latest", "aliases", "created", "by"),
                [
                    (
                        m.name,
                        m.latest_version or "-",
                        ", ".join(f"{a}->{v}" for a, v in sorted(m.aliases.items())) or "-",
                        m.created_at.isoformat(timespec="seconds"),
                        m.created_by,
                    )
                    for m in models
                ],
            )
            return
        versions = c.list_versions(name)
    if json_output:
        print_json(versions)
        return
    print_table(
        f"versions of {name}",
        ("version", "aliases", "framework", "sha256", "parity", "registered", "by"),
        [
            (
                v.version,
                ", ".join(v.aliases) or "-",
                v.framework,
                v.artifact_digest[:16],
                f"{v.parity.max_abs_diff:.2g}" if v.parity else "-",
                v.created_at.isoformat(timespec="seconds"),
                v.created_by,
            )
            for v in versions
        ],
    )


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        reason = "use an ISO 8601 time such as 2026-11-27T10:00:00Z"
        raise InvalidInputError(
            f"--at {clip(value)!r}: {reason}", errors=[FieldError("at", reason)]
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@ALIAS, NAME/VERSION or NAME (latest)."),
    at: str | None = typer.Option(
        None,
        "--at",
        help="With NAME@ALIAS: the version it pointed at at this time (UTC if no zone).",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Show a version; with --at, which version an alias pointed at at that moment."""
    parsed = parse_ref(ref)
    with client() as c:
        if at is not None:
            if parsed.alias is None:
                raise InvalidInputError(
                    "--at needs a reference NAME@ALIAS",
                    errors=[FieldError("ref", "alias required with --at")],
                )
            when = _parse_time(at)
            number = c.alias_version(parsed.name, parsed.alias, when)
            version = c.get_version(f"{parsed.name}/{number}")
            _show_version(version, json_output, f"{ref} at {when.isoformat()} was version {number}")
            return
        version = c.get_version(parsed)
    _show_version(version, json_output, version.ref)


@app.command("validate")
def validate(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME."),
    data: Path | None = typer.Option(
        None, "--data", help="Labeled evaluation CSV (header row) on this machine."
    ),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Re-run from a dataset version NAME@VERSION instead (with --path): the server "
        "reads the file, audited, and the report equals an upload of the same file.",
    ),
    path: str | None = typer.Option(
        None, "--path", help="With --dataset: the CSV file's path in the dataset version."
    ),
    label: str = typer.Option(..., "--label", help="The label column."),
    threshold: float = typer.Option(
        0.5, "--threshold", help="Operating threshold for the headline metrics."
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", help="Bootstrap resamples for the 95% intervals."
    ),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    html: Path | None = typer.Option(
        None, "--html", help="Also write the HTML report to this file."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Compute a validation report on the server (metrics per subgroup, calibration), from
    a CSV file here (--data) or a file of a dataset version (--dataset NAME@V --path F)."""
    if (data is None) == (dataset is None) or (dataset is None) != (path is None):
        reason = "give --data FILE.csv, or --dataset NAME@VERSION with --path FILE.csv"
        raise InvalidInputError(reason, errors=[FieldError("data", reason)])
    if data is not None:
        _require_file(data)
    with client() as c:
        source = data.name if data is not None else f"{dataset}:{path}"
        with progress(f"validating {ref} on {source} ({bootstrap} bootstrap resamples)"):
            if data is not None:
                report = c.validate(
                    ref, data, label=label, threshold=threshold, bootstrap=bootstrap, seed=seed
                )
            else:
                assert dataset is not None
                assert path is not None
                report = c.validate_from_dataset(
                    ref, dataset, path, label=label, threshold=threshold, bootstrap=bootstrap,
                    seed=seed,
                )  # fmt: skip
        if html is not None:
            write_output(html, c.report_html(ref, report_id=report.id))
    if json_output:
        print_json(report)
        return
    rows = [
        (k, "-" if v is None else f"{v:.4f}", _ci(report.report.metrics.get(k)))
        for k, v in report.metrics.items()
    ]
    print_table(
        f"validation report {report.id} of {report.model}/{report.version} "
        f"({report.dataset_rows} rows)",
        ("metric", "value", "95% CI"),
        rows,
    )
    verdict = (
        "passes the promotion policy"
        if report.passed
        else "FAILS the promotion policy: " + "; ".join(report.failures)
    )
    console.print(verdict, markup=False, highlight=False)
    if html is not None:
        console.print(f"HTML report written to {html}", markup=False, highlight=False)


def _require_file(data: Path) -> None:
    """Refuse a --data path that is not a file before anything is sent."""
    if not data.is_file():
        raise InvalidInputError(
            f"--data {data}: no such file", errors=[FieldError("data", "no such file")]
        )


@app.command("quantize")
def quantize(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME to quantize."),
    data: Path = typer.Option(..., "--data", help="Labeled evaluation CSV (header row)."),
    label: str = typer.Option(..., "--label", help="The label column."),
    tolerance: float = typer.Option(
        QUANTIZE_TOLERANCE,
        "--tolerance",
        help="Largest allowed |parent - INT8| probability on the evaluation rows.",
    ),
    description: str | None = typer.Option(
        None, "--description", help="Description of the new version."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Derive an INT8 version (ONNX Runtime dynamic quantization), measured against its parent."""
    _require_file(data)
    with client() as c, progress(f"quantizing {ref} to INT8 and measuring it on {data.name}"):
        version = c.quantize(ref, data, label=label, tolerance=tolerance, description=description)
    if json_output:
        print_json(version)
        return
    q = version.quantization
    print_table(
        f"INT8 quantization of {q.parent} ({q.rows} rows of {q.dataset_name})",
        ("measure", q.parent, version.ref, "change"),
        [
            (
                "latency (µs/row)",
                f"{q.parent_us_per_row:.3g}",
                f"{q.us_per_row:.3g}",
                _times(q.speedup, "faster", "slower"),
            ),
            (
                "size (bytes)",
                q.parent_size,
                q.size,
                _times(q.parent_size / q.size, "smaller", "larger"),
            ),
            ("accuracy", _num(q.parent_accuracy), _num(q.accuracy), _num(q.accuracy_change, "+")),
            ("AUROC", _num(q.parent_auroc), _num(q.auroc), _num(q.auroc_change, "+")),
        ],
    )
    diff = f"max |probability difference| {q.max_probability_diff:.3g} (tolerance {q.tolerance:g})"
    for line in (
        f"{diff}; labels agree on {q.label_agreement:.1%} of rows",
        f"quantized operators: {', '.join(q.quantized_ops)}",
        f"registered {version.ref} (parent {q.parent}); validate it before promoting it",
    ):
        console.print(line, markup=False, highlight=False)


def _times(ratio: float, more: str, less: str) -> str:
    return f"{ratio:.2f}x {more}" if ratio >= 1 else f"{1 / ratio:.2f}x {less}"


def _num(value: float | None, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.4f}"


def _ci(metric: MetricValue | None) -> str:
    if metric is None or metric.ci_low is None or metric.ci_high is None:
        return "-"
    low, high = metric.ci_low, metric.ci_high
    return f"<= {high:.3f}" if metric.ci_method == "upper-bound" else f"{low:.3f}-{high:.3f}"


@app.command("report")
def report_(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME."),
    report_id: str | None = typer.Option(
        None, "--id", help="A specific report (default: the latest)."
    ),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML report to this file."),
    json_output: bool = JsonOption,
) -> None:
    """Show a version's latest validation report (or write it as HTML)."""
    with client() as c:
        report = c.report(ref, report_id=report_id)
        if html is not None:
            write_output(html, c.report_html(ref, report_id=report.id))
    if json_output:
        print_json(report)
        return
    print_record(
        f"validation report {report.id}", report.model_dump(mode="json", exclude={"report"})
    )


@app.command("card")
def card(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME."),
    set_file: Path | None = typer.Option(
        None, "--set", help="JSON file of team-written fields to set."
    ),
    from_ref: str | None = typer.Option(
        None,
        "--from",
        help="Copy the team-written fields of this version first (a number, or NAME/N).",
    ),
    fmt: str = typer.Option("md", "--format", help="md, html or json."),
    output: Path | None = typer.Option(
        None, "--output", help="Write the card to this file instead of stdout."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Show or edit a model card; lists what is missing before it is complete."""
    if fmt not in {"md", "html", "json"}:
        raise InvalidInputError(
            f"--format {fmt!r}: use md, html or json",
            errors=[FieldError("format", "md, html or json")],
        )
    with client() as c:
        if from_ref is not None:
            source = f"{parse_ref(ref).name}/{from_ref}" if from_ref.isdigit() else from_ref
            c.copy_card(source, ref)
        if set_file is not None:
            c.update_card(ref, _read_json(set_file, "card fields"))
        document = c.card(ref)
        text = (
            json.dumps(document, indent=2)
            if fmt == "json" or json_output
            else c.card_text(ref, fmt)
        )
    if output is not None:
        write_output(output, text)
        missing = document["completeness"]["missing"]
        state = "complete" if not missing else "incomplete, missing " + ", ".join(missing)
        console.print(f"card written to {output} ({state})", markup=False, highlight=False)
    else:
        typer.echo(text)


@app.command("approve")
def approve(
    ref: str = typer.Argument(..., help="NAME/VERSION to sign."),
    meaning: str = typer.Option(
        "approval", "--meaning", help="review, approval or responsibility."
    ),
    comment: str | None = typer.Option(None, "--comment", help="A note kept with the signature."),
    otp: str | None = typer.Option(None, "--otp", help="One-time code, where MFA is enrolled."),
    password_stdin: bool = PasswordStdinOption,
    json_output: bool = JsonOption,
) -> None:
    """Sign a version electronically: re-enter your password (and one-time code)."""
    if parse_ref(ref).version is None:
        reason = "name the version you sign: NAME/VERSION"
        raise InvalidInputError(
            f"approve {clip(ref)!r}: {reason}", errors=[FieldError("ref", reason)]
        )
    password = read_password(from_stdin=password_stdin, prompt="Password (to sign)")
    with client() as c:
        approval = with_one_time_code(
            lambda code: c.approve(ref, password, otp=code, meaning=meaning, comment=comment),
            otp,
            from_stdin=password_stdin,
        )
    if json_output:
        print_json(approval)
        return
    print_record(
        f"signed {approval.model}/{approval.version}",
        approval.model_dump(mode="json", exclude={"invalid_reasons"}),
    )


@app.command("gates")
def gates(
    ref: str = typer.Argument(..., help="NAME/VERSION to check."),
    alias: str = typer.Option("production", "--alias", help="The alias it would move."),
    json_output: bool = JsonOption,
) -> None:
    """Check the promotion gates of a version without moving anything."""
    with client() as c:
        result = c.gates(ref, alias)
    if json_output:
        print_json(result)
        return
    print_table(
        f"gates of {result.model}/{result.version} for @{result.alias}",
        ("check", "met"),
        [(k, "yes" if v else "NO") for k, v in result.checks.items()],
    )
    for line in result.unmet:
        console.print(f"missing: {line}", markup=False, highlight=False)


@app.command("sbom")
def sbom(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the CycloneDX JSON to this file."
    ),
    json_output: bool = JsonOption,
) -> None:
    """The version's ML bill of materials (CycloneDX 1.6 JSON): artifact digest, training
    data, framework, converter, opset, runtime, report hash, signers."""
    from medops.registry.sbom import summarize

    with client() as c:
        document = c.sbom(ref)
    text = json.dumps(document, indent=2) + "\n"
    if output is not None:
        write_output(output, text)
    if json_output:
        sys.stdout.write(text)
        return
    summary = summarize(document)
    print_record(
        f"ML-BOM of {summary.model}/{summary.version} (CycloneDX {document['specVersion']})",
        {
            "artifact sha256": summary.artifact_sha256,
            "framework": summary.framework,
            "converter": summary.converter,
            "opset": summary.opset,
            "onnxruntime": summary.onnxruntime,
            "datasets": summary.datasets,
            "report sha256": summary.report_sha256,
            "signers": summary.signers,
            "written to": str(output) if output is not None else None,
        },
    )


@app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="NAME/VERSION to promote."),
    alias: str = typer.Option("production", "--alias", help="The alias to move."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the history)."),
    json_output: bool = JsonOption,
) -> None:
    """Move an alias to a version; a protected alias checks every gate first."""
    parsed = parse_ref(ref)
    if parsed.version is None:
        raise InvalidInputError(
            "promote takes NAME/VERSION", errors=[FieldError("ref", "NAME/VERSION")]
        )
    with client() as c:
        event = c.promote(parsed.name, alias, parsed.version, reason)
    _show_event(event, json_output, f"{event.model}@{event.alias} -> version {event.to_version}")


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option("production", "--alias", help="The alias to move back."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the history)."),
    json_output: bool = JsonOption,
) -> None:
    """Move an alias (default production) back to the version it pointed at before."""
    with client() as c:
        event = c.rollback(name, reason, alias=alias)
    title = f"{event.model}@{event.alias} rolled back to version {event.to_version}"
    _show_event(event, json_output, title)


def _show_event(event: AliasEventOut, json_output: bool, title: str) -> None:
    if json_output:
        print_json(event)
    else:
        print_record(title, event.model_dump(mode="json", exclude={"evidence"}))


@app.command("history")
def history(
    name: str = typer.Argument(..., help="Model name."),
    alias: str | None = typer.Option(None, "--alias", help="Only this alias."),
    json_output: bool = JsonOption,
) -> None:
    """Every alias move: who, when, from which version to which, and why."""
    with client() as c:
        events = c.history(name, alias)
    if json_output:
        print_json(events)
        return
    print_table(
        f"alias history of {name}",
        ("when (UTC)", "alias", "kind", "from", "to", "who", "why"),
        [
            (
                e.occurred_at.isoformat(timespec="seconds"),
                e.alias,
                e.kind,
                e.from_version or "-",
                e.to_version,
                e.actor,
                e.reason,
            )
            for e in events
        ],
    )


def _policy_changes() -> None:
    from medops.cli import policy

    app.add_typer(policy.app, name="policy-change")


_policy_changes()
