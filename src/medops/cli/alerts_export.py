"""``medops alerts export``: medops' alert rules as a Prometheus rule file (with its promtool
unit tests) and its routing config as an Alertmanager config, for hospitals that already run
Prometheus (docs/alerting-export.md). By default it exports the installation's rules and
routing config in force (read through the SDK, ``alerts:read``); ``--rules`` and ``--config``
export files instead, offline. Nothing is sent anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import typer
from pydantic import BaseModel, ValidationError

from medops.alerting.defaults import DEFAULT_RULE_SET, effective_rules
from medops.alerting.export_alertmanager import DEFAULT_SECRETS_DIR
from medops.alerting.export_files import (
    ExportResult,
    export_alertmanager,
    export_prometheus,
)
from medops.alerting.schemas import AlertingConfig, AlertRule, RuleSet
from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json
from medops.errors import FieldError, InvalidInputError
from medops.files import write_output

Model = TypeVar("Model", bound=BaseModel)

FormatOption = typer.Option(
    ...,
    "--format",
    help="prometheus: the rule file and its promtool unit tests; alertmanager: the routing "
    "config as an Alertmanager config.",
)
OutputOption = typer.Option(
    None,
    "--output",
    help="Folder to write the files into (default: print the rule file or config).",
)
DeploymentOption = typer.Option(
    None, "--deployment", help="Export rules over this deployment's series only (prometheus)."
)
RulesOption = typer.Option(
    None,
    "--rules",
    help="A rule set as JSON (scope and rules) instead of the installation's rules in force; "
    "a deployment's rules replace the built-in defaults of the same name (prometheus).",
)
ConfigOption = typer.Option(
    None,
    "--config",
    help="A routing config as JSON instead of the installation's config in force (alertmanager).",
)
SecretsDirOption = typer.Option(
    DEFAULT_SECRETS_DIR,
    "--secrets-dir",
    help="Folder on the Alertmanager host holding the secrets' files (alertmanager).",
)
VersionOption = typer.Option(
    "0.25",
    "--alertmanager-version",
    help="The Alertmanager version the config is for: 0.26 and later get msteams_configs.",
)


def _load(path: Path, model: type[Model], what: str) -> Model:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {path}: {exc.strerror}", errors=[FieldError("file", "unreadable")]
        ) from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "document", e["msg"])
            for e in exc.errors()
        ]
        raise InvalidInputError(f"{path} is not {what}", errors=errors) from None


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise InvalidInputError(
            f"--alertmanager-version {text!r} is not a version such as 0.25",
            errors=[FieldError("alertmanager_version", "expected MAJOR.MINOR")],
        )
    return int(parts[0]), int(parts[1])


def _only(format_: str, **options: dict[str, object]) -> None:
    """Refuse an option of the other format (given: not None)."""
    for owner, given in options.items():
        misplaced = [name for name, value in given.items() if value is not None]
        if format_ != owner and format_ in options and misplaced:
            raise InvalidInputError(
                f"--{misplaced[0]} is for --format {owner}",
                errors=[FieldError(name, f"only with --format {owner}") for name in misplaced],
            )


def _scope(rules: Path | None, deployment: str | None) -> str | None:
    """The deployment exported: ``--deployment``, else a rule file's own scope."""
    if deployment is None and rules is not None:
        scope = _load(rules, RuleSet, "a rule set").scope
        return None if scope == "*" else scope
    return deployment


def _rules(rules: Path | None, deployment: str | None) -> list[AlertRule]:
    """A rule file merged over the built-in defaults, or the installation's rules in force
    (its ``*`` rule set, and the deployment's own over it)."""
    if rules is not None:
        rule_set = _load(rules, RuleSet, "a rule set")
        if rule_set.scope == "*":
            return list(rule_set.rules)
        return effective_rules(DEFAULT_RULE_SET, rule_set)
    with client() as api:
        defaults = api.alert_rules("*").rule_set
        own = api.alert_rules(deployment).rule_set if deployment else None
    return effective_rules(defaults, own)


def export(
    format_: str = FormatOption,
    output: Path | None = OutputOption,
    deployment: str | None = DeploymentOption,
    json_output: bool = JsonOption,
    rules: Path | None = RulesOption,
    config: Path | None = ConfigOption,
    secrets_dir: str = SecretsDirOption,
    alertmanager_version: str = VersionOption,
) -> None:
    """Write Prometheus rules (with promtool tests) or an Alertmanager config."""
    _only(format_, prometheus={"deployment": deployment, "rules": rules},
          alertmanager={"config": config})  # fmt: skip
    if format_ == "prometheus":
        result = export_prometheus(_rules(rules, deployment), deployment=_scope(rules, deployment))
    elif format_ == "alertmanager":
        version = _version(alertmanager_version)  # checked before the installation is read
        if config is not None:
            routing = _load(config, AlertingConfig, "a routing config")
        else:
            with client() as api:
                routing = api.alert_config().config
        result = export_alertmanager(routing, secrets_dir=secrets_dir, version=version)
    else:
        raise InvalidInputError(
            f"--format {format_!r}: use prometheus or alertmanager",
            errors=[FieldError("format", "prometheus or alertmanager")],
        )
    if output is not None:
        written = []
        for file in result.files:
            path = output / file.name
            write_output(path, file.content)
            written.append(file.model_copy(update={"path": str(path)}))
        result = result.model_copy(update={"files": written})
    _show(result, json_output=json_output)


def _show(result: ExportResult, *, json_output: bool) -> None:
    if json_output:
        print_json(result)
    elif result.files[0].path is None:
        typer.echo(result.files[0].content, nl=False)
    else:
        for file in result.files:
            console.print(f"wrote {file.path}", markup=False, highlight=False)
