"""``medops alerts``: rules, alerts (list, show, ack, resolve), silences, the routing
configuration, and one evaluation run. Every command answers ``--json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from medops.alerting.records import AlertOut, SilenceIn, SilenceOut
from medops.alerting.schemas import AlertingConfig, Matcher, RuleSet
from medops.cli.alerts_dispatch import dispatch, notifications
from medops.cli.alerts_export import export
from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.errors import FieldError, InvalidInputError

app = typer.Typer(
    help="Alerts: rules, alerts (ack, resolve), silences, routing, notifications and export.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Alert rule sets (per deployment, or * for all).", no_args_is_help=True
)
silence_app = typer.Typer(help="Silences: mute matching alerts for a while.", no_args_is_help=True)
config_app = typer.Typer(help="The routing configuration.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(silence_app, name="silence")
app.add_typer(config_app, name="config")

ScopeOption = typer.Option("*", "--deployment", help="A deployment's name, or * for all.")
NoteOption = typer.Option(None, "--note", help="Why: kept in the audit log.")


def _document(path: Path, shape: type[BaseModel], **extra: Any) -> Any:
    """A YAML or JSON file as ``shape``; a bad file is one line naming the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {path}", errors=[FieldError("file", exc.strerror or "unreadable")]
        ) from None
    try:
        data = _yaml(path, text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
        if isinstance(data, dict):
            data.update(extra)
        return shape.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise InvalidInputError(
            f"{path}: {where}: {first['msg']}", errors=[FieldError(where, first["msg"])]
        ) from None
    except ValueError as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON", errors=[FieldError("file", str(exc)[:200])]
        ) from None


def _yaml(path: Path, text: str) -> Any:
    """YAML through PyYAML's safe loader (no object construction)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"{path} is not valid YAML", errors=[FieldError("file", str(exc)[:200])]
        ) from None


def _alert_rows(found: list[AlertOut]) -> list[list[str]]:
    return [
        [a.id, a.name, a.deployment or "-", a.severity, a.team, a.state,
         "silenced" if a.silenced else ("inhibited" if a.inhibited else ""),
         a.started_at.isoformat()]
        for a in found
    ]  # fmt: skip


@app.command("list")
def list_alerts(
    state: str | None = typer.Option(
        None, "--state", help="pending, firing, acknowledged or resolved."
    ),
    deployment: str | None = typer.Option(None, "--deployment", help="Only this deployment."),
    include_resolved: bool = typer.Option(False, "--all", help="Resolved alerts too."),
    json_output: bool = JsonOption,
) -> None:
    """Open alerts, newest first."""
    found = client().alerts(state=state, deployment=deployment, include_resolved=include_resolved)
    if json_output:
        print_json(found)
        return
    columns = ["id", "alert", "deployment", "severity", "team", "state", "muted", "since"]
    print_table("Alerts", columns, _alert_rows(found))


@app.command("show")
def show(alert_id: str, json_output: bool = JsonOption) -> None:
    """One alert: labels, value, evidence, who answered it."""
    found = client().alert(alert_id)
    if json_output:
        print_json(found)
        return
    print_record(f"Alert {found.name}", found.model_dump(mode="json"))


@app.command("ack")
def ack(alert_id: str, note: str | None = NoteOption, json_output: bool = JsonOption) -> None:
    """Acknowledge a firing alert: its escalation stops."""
    found = client().acknowledge_alert(alert_id, note)
    if json_output:
        print_json(found)
        return
    console.print(f"acknowledged {found.name} ({found.id})", markup=False)


@app.command("resolve")
def resolve(alert_id: str, note: str | None = NoteOption, json_output: bool = JsonOption) -> None:
    """Resolve an alert by hand."""
    found = client().resolve_alert(alert_id, note)
    if json_output:
        print_json(found)
        return
    console.print(f"resolved {found.name} ({found.id})", markup=False)


@app.command("evaluate")
def evaluate(json_output: bool = JsonOption) -> None:
    """Run one evaluation now (the job the server runs on its own)."""
    summary = client().evaluate_alerts()
    if json_output:
        print_json(summary)
        return
    print_record("Alert evaluation", summary.model_dump(mode="json"))


@rules_app.command("show")
def rules_show(scope: str = ScopeOption, json_output: bool = JsonOption) -> None:
    """The rule set of a deployment (or *), and the rules in force there."""
    found = client().alert_rules(scope)
    if json_output:
        print_json(found)
        return
    rows = [
        [r.name, r.signal, f"{r.op} {r.threshold:g}", str(r.for_seconds), r.severity, r.team]
        for r in found.rule_set.rules
    ]
    print_table(
        f"Rules of {scope} (version {found.version})",
        ["name", "signal", "condition", "for (s)", "severity", "team"],
        rows,
    )
    console.print("in force: " + ", ".join(found.effective), markup=False)


@rules_app.command("set")
def rules_set(
    file: Path = typer.Argument(..., help="A YAML or JSON rule set: {rules: [...]}."),
    scope: str = ScopeOption,
    json_output: bool = JsonOption,
) -> None:
    """Store a new version of a rule set (a deployment's rule replaces the default)."""
    rule_set = _document(file, RuleSet, scope=scope)
    found = client().set_alert_rules(rule_set)
    if json_output:
        print_json(found)
        return
    console.print(f"rules of {scope}: version {found.version}", markup=False)


@silence_app.command("add")
def silence_add(
    matcher: list[str] = typer.Option(..., "--match", help="label=value (repeatable)."),
    reason: str = typer.Option(..., "--reason", help="Why (required, audited)."),
    hours: float = typer.Option(2.0, "--hours", help="How long, from now."),
    json_output: bool = JsonOption,
) -> None:
    """Mute alerts whose labels match, for some hours."""
    matchers = []
    for text in matcher:
        label, sep, value = text.partition("=")
        if not sep:
            raise InvalidInputError(
                f"--match {text!r}: expected label=value", errors=[FieldError("match", text)]
            )
        matchers.append(Matcher(label=label, value=value))
    ends = datetime.now(UTC) + timedelta(hours=hours)
    made = client().add_silence(SilenceIn(matchers=matchers, ends_at=ends, reason=reason))
    if json_output:
        print_json(made)
        return
    console.print(f"silence {made.id} until {made.ends_at.isoformat()}", markup=False)


def _silence_rows(found: list[SilenceOut]) -> list[list[str]]:
    return [
        [s.id, " ".join(f"{m.label}{m.op}{m.value}" for m in s.matchers), s.author, s.reason,
         s.ends_at.isoformat(), "active" if s.active else "over"]
        for s in found
    ]  # fmt: skip


@silence_app.command("list")
def silence_list(
    everything: bool = typer.Option(False, "--all", help="Expired silences too."),
    json_output: bool = JsonOption,
) -> None:
    """Silences not over yet."""
    found = client().silences(everything=everything)
    if json_output:
        print_json(found)
        return
    columns = ["id", "matchers", "author", "reason", "ends", "state"]
    print_table("Silences", columns, _silence_rows(found))


@silence_app.command("expire")
def silence_expire(silence_id: str, json_output: bool = JsonOption) -> None:
    """End a silence now."""
    found = client().expire_silence(silence_id)
    if json_output:
        print_json(found)
        return
    console.print(f"silence {found.id} expired", markup=False)


@config_app.command("show")
def config_show(json_output: bool = JsonOption) -> None:
    """The routing configuration in force."""
    found = client().alert_config()
    if json_output:
        print_json(found)
        return
    console.print(f"version {found.version}", markup=False)
    console.print(
        json.dumps(found.config.model_dump(mode="json", by_alias=True), indent=2), markup=False
    )


@config_app.command("set")
def config_set(
    file: Path = typer.Argument(..., help="A YAML or JSON routing configuration."),
    json_output: bool = JsonOption,
) -> None:
    """Store a new version of the routing configuration."""
    config = _document(file, AlertingConfig)
    found = client().set_alert_config(config)
    if json_output:
        print_json(found)
        return
    console.print(f"routing configuration: version {found.version}", markup=False)


# Sending what is queued and reading the outbox (cli/alerts_dispatch.py).
app.command("dispatch")(dispatch)
app.command("notifications")(notifications)
app.command("export")(export)
