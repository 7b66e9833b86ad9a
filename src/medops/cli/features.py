"""``medops features``: register definitions from a ``features.yaml`` (``apply``), see them
(``list``, ``show``), and build a point-in-time correct training set (``training-set``), which
runs here, where the source files are, and can be recorded as a dataset version with its
lineage to the definitions. Every command answers ``--json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.errors import FieldError, InvalidInputError
from medops.features.schemas import (
    DatasetSource,
    DefinitionKind,
    FeatureRepo,
    TrainingSetOut,
    TrainingSetRecordIn,
    parse_refs,
)

app = typer.Typer(
    help="Feature store: definitions (apply, list, show) and point-in-time training sets.",
    no_args_is_help=True,
)
KINDS = ("entity", "feature_view", "on_demand_feature", "feature_service")


def _bad(field: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {reason}", errors=[FieldError(field, reason)])


def _kind(kind: str | None) -> DefinitionKind | None:
    if kind is not None and kind not in KINDS:
        raise _bad("kind", f"one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def _load(path: Path) -> FeatureRepo:
    from pydantic import ValidationError

    try:
        return FeatureRepo.from_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad("file", f"cannot read {path}: {exc.strerror}") from None
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()
        raise _bad("file", " ".join(first[:3])) from None


@app.command("apply")
def apply(
    file: Path = typer.Argument(..., help="features.yaml: entities, feature views, ..."),
    json_output: bool = JsonOption,
) -> None:
    """Register the definitions of FILE: a new version of each new or changed one (audited),
    nothing for those registered as they are."""
    repo = _load(file)
    with client() as c:
        result = c.apply_features(repo)
    if json_output:
        print_json(result)
        return
    rows = [(d.kind, d.name, d.version, "new version") for d in result.created]
    rows += [(d.kind, d.name, d.version, "unchanged") for d in result.unchanged]
    print_table(f"Applied {file.name}", ("kind", "name", "version", "state"), rows)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, "--kind", help=f"Only one kind: {', '.join(KINDS)}."),
    json_output: bool = JsonOption,
) -> None:
    """The newest version of every registered definition."""
    with client() as c:
        items = c.feature_definitions(_kind(kind))
    if json_output:
        print_json(items)
        return
    print_table(
        "Feature definitions",
        ("kind", "name", "version", "owner", "description"),
        [(d.kind, d.name, d.version, d.owner, d.description) for d in items],
    )


def _feature_rows(spec: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (f.get("name"), f.get("dtype"), f.get("unit") or "-", f.get("description") or "")
        for f in spec.get("features", [])
        if isinstance(f, dict)
    ]


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The definition's name."),
    kind: str | None = typer.Option(None, "--kind", help="When two kinds share the name."),
    version: int | None = typer.Option(None, "--version", min=1, help="Default: the newest."),
    json_output: bool = JsonOption,
) -> None:
    """One definition: its spec, owner, digest and versions."""
    with client() as c:
        found = c.feature_definition(name, _kind(kind), version)
        versions = c.feature_versions(name, found.kind)
    if json_output:
        print_json(found)
        return
    spec = found.spec
    record: dict[str, Any] = {
        "kind": found.kind,
        "version": f"{found.version} of {len(versions)}",
        "owner": found.owner,
        "description": found.description or "-",
        "digest": found.digest,
        "applied": f"{found.created_at:%Y-%m-%d %H:%M} by {found.created_by}",
    }
    for key in ("entities", "event_time", "created_time", "ttl", "expression", "dtype"):
        if spec.get(key) is not None:
            value = spec[key]
            record[key] = ", ".join(map(str, value)) if isinstance(value, list) else value
    if isinstance(spec.get("source"), dict):
        record["source"] = ", ".join(f"{k}={v}" for k, v in spec["source"].items() if v)
    if found.kind == "entity":
        record["join keys"] = ", ".join(f"{k['name']} ({k['dtype']})" for k in spec["join_keys"])
    print_record(f"{found.kind.replace('_', ' ')} {found.name}", record)
    if found.kind == "feature_view":
        print_table("Features", ("name", "type", "unit", "description"), _feature_rows(spec))


@app.command("training-set")
def training_set(
    entities: Path = typer.Option(
        ..., "--entities", help="Parquet or CSV: the entities' join keys and an event time."
    ),
    features: str = typer.Option(
        ..., "--features", help="view:feature,... (on-demand features by name)."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write it (.parquet or .csv)."),
    event_time: str = typer.Option(
        "event_time", "--event-time", help="The entity rows' time column."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Record the result as a version of this dataset, with lineage."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Build a point-in-time correct training set: per entity row and feature, the latest value
    at or before the row's time within the view's TTL (never a later one; every row kept)."""
    from medops.features.offline import point_in_time_join, read_table, write_table

    try:
        refs = parse_refs(features)
    except ValueError as exc:
        raise _bad("features", str(exc)) from None
    if not refs:
        raise _bad("features", "name at least one feature")
    try:
        frame = read_table(entities)
    except (OSError, ValueError) as exc:
        raise _bad("entities", f"cannot read {entities}: {exc}") from None
    with client() as c:
        registered = c.feature_repo()

        def dataset_file(source: DatasetSource) -> bytes:
            return c.read_dataset_file(source.dataset, source.file, "feature training set")

        table, summary = point_in_time_join(
            registered.repo, frame, refs, event_time=event_time, datasets=dataset_file
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        write_table(table, out)
        recorded = None
        if dataset is not None:
            added = c.add_dataset(dataset, [out], message=f"training set: {features}")
            recorded = c.record_training_set(
                TrainingSetRecordIn(
                    dataset=added.version.ref,
                    features=tuple(str(r) for r in refs),
                    definitions=registered.versions,
                    entity_rows=summary.rows,
                    rows_with_all_values=summary.rows_with_all_values,
                )
            )
    result = TrainingSetOut(summary=summary, out=str(out), recorded=recorded)
    if json_output:
        print_json(result)
        return
    print_record(
        f"Training set {out}",
        {
            "entity rows": summary.rows,
            "rows with every value": summary.rows_with_all_values,
            "seconds": summary.seconds,
            "dataset version": recorded.dataset if recorded else "- (use --dataset to record)",
        },
    )
    print_table(
        "Features",
        ("feature", "missing values"),
        [(r, summary.missing[n]) for r, n in zip(summary.features, summary.missing, strict=True)],
    )
    if recorded is None:
        console.print("[dim]not recorded as a dataset version[/]")


# -- the online side (fs-online): bind, unbind, materialize, get, skew -----------------------


def _pairs(items: list[str], field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _bad(field, f"{item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _scalar(text: str) -> Any:
    """A value typed on the command line: a number when it reads as one, else text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


@app.command("bind")
def bind(
    deployment: str = typer.Argument(..., help="The deployment to serve from feature views."),
    inputs: list[str] = typer.Option(
        ...,
        "--input",
        help="MODEL_INPUT=view:feature or MODEL_INPUT=on_demand:name (repeat); other model "
        "inputs are request values the caller sends.",
    ),
    policy: str = typer.Option("reject", "--policy", help="Missing or stale: reject|impute."),
    impute: list[str] = typer.Option(
        [], "--impute", help="MODEL_INPUT=VALUE used (and flagged) under --policy impute."
    ),
    repo_file: Path | None = typer.Option(
        None, "--repo", help="Definitions to pin (features.yaml); default: the registered ones."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Serve DEPLOYMENT's model from feature views: requests then carry entity keys and
    request values; the definitions used are pinned in the binding."""
    from pydantic import ValidationError

    from medops.features.online.schemas import FeatureBindingSpec

    if policy not in ("reject", "impute"):
        raise _bad("--policy", "expected reject or impute")
    with client() as c:
        repo = _load(repo_file) if repo_file is not None else c.feature_repo().repo
        try:
            spec = FeatureBindingSpec(
                repo=repo,
                inputs=_pairs(inputs, "--input"),
                policy="impute" if policy == "impute" else "reject",
                impute={k: _scalar(v) for k, v in _pairs(impute, "--impute").items()},
            )
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise _bad("--input", message) from None
        out = c.bind_features(deployment, spec)
    if json_output:
        print_json(out)
        return
    print_record(
        f"Deployment {deployment} serves from feature views",
        {
            "revision": out.revision,
            "policy": out.spec.policy,
            "request carries": ", ".join(out.request_fields),
        },
    )
    print_table("Inputs", ("model input", "from"), sorted(out.spec.inputs.items()))


@app.command("unbind")
def unbind(
    deployment: str = typer.Argument(..., help="The deployment."),
    json_output: bool = JsonOption,
) -> None:
    """Stop serving DEPLOYMENT from feature views (requests carry every input again)."""
    with client() as c:
        c.unbind_features(deployment)
    if json_output:
        print_json({"deployment": deployment, "bound": False})
        return
    console.print(f"deployment {deployment} no longer serves from feature views")


@app.command("materialize")
def materialize(
    views: list[str] = typer.Argument(
        None, help="Views (default: every view a deployment serves)."
    ),
    full: bool = typer.Option(False, "--full", help="Read each source from the start."),
    json_output: bool = JsonOption,
) -> None:
    """Write the newest row per entity of each view, arrived since its watermark, to the
    online store."""
    with client() as c:
        out = c.materialize(list(views or []), full=full)
    if json_output:
        print_json(out)
        return
    print_table(
        f"Materialized into store {out.store}",
        ("view", "rows read", "rows written", "entities", "watermark", "seconds"),
        [
            (r.view, r.rows_read, r.rows_written, r.entities, r.watermark_after, r.seconds)
            for r in out.runs
        ],
    )


@app.command("get")
def get(
    entity: list[str] = typer.Option(
        ..., "--entity", help="JOIN_KEY=VALUE of the entity (repeat for composite keys)."
    ),
    features: str = typer.Option(
        ..., "--features", help="Comma-separated view:feature or whole views."
    ),
    json_output: bool = JsonOption,
) -> None:
    """An entity's values in the online store, with their event times and freshness."""
    keys = {k: _scalar(v) for k, v in _pairs(entity, "--entity").items()}
    wanted = [f.strip() for f in features.split(",") if f.strip()]
    with client() as c:
        out = c.online_features(keys, wanted)
    if json_output:
        print_json(out)
        return
    print_table(
        "Online values",
        ("view", "feature", "value", "event time", "fresh"),
        [(v.view, v.feature, v.value, v.event_time, v.fresh) for v in out.values],
    )


@app.command("skew")
def skew(
    view: str | None = typer.Option(
        None, "--view", help="Compare this view's online values with the offline join."
    ),
    sample: int = typer.Option(200, "--sample", help="Entities to sample (--view)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample (--view)."),
    deployment: str | None = typer.Option(
        None, "--deployment", help="Compare what this deployment served with --training-set."
    ),
    training_set: Path | None = typer.Option(
        None, "--training-set", help="The training set file (Parquet or CSV; --deployment)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Training-serving skew: --view checks online against offline values for sampled
    entities; --deployment --training-set compares served inputs with the training set."""
    from medops.features.online.schemas import ServedSkewIn

    if (view is None) == (deployment is None):
        raise _bad("--view", "give --view, or --deployment with --training-set")
    with client() as c:
        if view is not None:
            checked = c.online_skew(view, sample=sample, seed=seed)
            if json_output:
                print_json(checked)
                return
            print_record(
                f"Online against offline, view {view}",
                {"sampled": checked.sampled, "at": checked.at, "consistent": checked.consistent},
            )
            print_table(
                "Features",
                ("feature", "compared", "equal", "online only", "offline only", "max |diff|"),
                [
                    (
                        f.feature,
                        f.compared,
                        f.equal,
                        f.online_only,
                        f.offline_only,
                        f.max_abs_difference,
                    )
                    for f in checked.features
                ],
            )
            return
        if training_set is None:
            raise _bad("--training-set", "needed with --deployment")
        from medops.features.offline import read_table

        frame = read_table(training_set)
        if frame.height > 100_000:
            frame = frame.sample(n=100_000, seed=seed)
        numeric = [n for n, t in frame.schema.items() if t.is_numeric()]
        training = {n: frame[n].cast(float).to_list() for n in numeric}
        assert deployment is not None
        served = c.served_skew(ServedSkewIn(deployment=deployment, training=training))
    if json_output:
        print_json(served)
        return
    print_record(
        f"Served against trained, deployment {deployment}",
        {"served rows": served.served_rows, "drifted": ", ".join(served.drifted) or "-"},
    )
    print_table(
        "Features",
        ("feature", "training rows", "served rows", "drifted"),
        [(f.feature, f.training_rows, f.served_rows, f.drifted) for f in served.features],
    )
