"""The Grafana dashboard and the Prometheus rule files of deploy/, read into typed models,
the PromQL of each, the metric names an expression reads, and ``promtool``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "medops-deployment.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
RECORDING = ROOT / "deploy" / "prometheus" / "medops-recording.yml"
RECORDING_TEST = ROOT / "deploy" / "prometheus" / "medops-recording.test.yml"
ALERTING = ROOT / "deploy" / "prometheus" / "medops-rules.yml"
REQUIRE_ENV = "MEDOPS_REQUIRE_PROMTOOL"

# What the Grafana variables stand for when an expression is checked outside Grafana.
VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${deployment}": ".*",
    "$deployment": ".*",
}


class _Model(BaseModel):
    """Grafana's fields we read; the others (options, field config) are Grafana's business."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)


class DataSourceRef(_Model):
    type: str
    uid: str


class GridPos(_Model):
    h: int = Field(ge=1)
    w: int = Field(ge=1, le=24)
    x: int = Field(ge=0, le=23)
    y: int = Field(ge=0)


class Target(_Model):
    ref_id: str
    expr: str
    datasource: DataSourceRef
    legend_format: str = ""


class Threshold(_Model):
    color: str
    value: float | None


class Thresholds(_Model):
    mode: str
    steps: list[Threshold]


class FieldDefaults(_Model):
    unit: str | None = None
    thresholds: Thresholds | None = None


class FieldConfig(_Model):
    defaults: FieldDefaults


class Panel(_Model):
    id: int
    type: str
    title: str
    grid_pos: GridPos
    description: str = ""
    datasource: DataSourceRef | None = None
    targets: list[Target] = []
    field_config: FieldConfig | None = None


class VariableCurrent(_Model):
    value: str | list[str]


class Variable(_Model):
    name: str
    type: str
    query: str | dict[str, object] = ""
    definition: str = ""
    datasource: DataSourceRef | None = None
    current: VariableCurrent | None = None
    include_all: bool = False
    multi: bool = False


class Templating(_Model):
    list: list[Variable]


class Dashboard(_Model):
    uid: str
    title: str
    schema_version: int
    panels: list[Panel]
    templating: Templating
    tags: list[str] = []

    def variable(self, name: str) -> Variable:
        (found,) = [v for v in self.templating.list if v.name == name]
        return found

    def targets(self) -> list[tuple[Panel, Target]]:
        return [(p, t) for p in self.panels for t in p.targets]


class Rule(_Model):
    expr: str
    record: str | None = None
    alert: str | None = None


class RuleGroup(_Model):
    name: str
    rules: list[Rule]
    interval: str | None = None


class RuleFile(_Model):
    groups: list[RuleGroup]

    def rules(self) -> list[Rule]:
        return [r for g in self.groups for r in g.rules]


class DashboardProvider(_Model):
    name: str
    type: str
    folder: str = ""
    options: dict[str, object]


class DashboardProvisioning(_Model):
    api_version: int
    providers: list[DashboardProvider]


class DataSource(_Model):
    name: str
    type: str
    uid: str
    url: str
    access: str


class DataSourceProvisioning(_Model):
    api_version: int
    datasources: list[DataSource]


def dashboard() -> Dashboard:
    return Dashboard.model_validate_json(DASHBOARD.read_text())


def rule_file(path: Path) -> RuleFile:
    return RuleFile.model_validate(yaml.safe_load(path.read_text()))


def dashboard_provisioning() -> DashboardProvisioning:
    text = (PROVISIONING / "dashboards" / "medops.yaml").read_text()
    return DashboardProvisioning.model_validate(yaml.safe_load(text))


def datasource_provisioning() -> DataSourceProvisioning:
    text = (PROVISIONING / "datasources" / "medops.yaml").read_text()
    return DataSourceProvisioning.model_validate(yaml.safe_load(text))


def substitute(expr: str) -> str:
    """The expression as Prometheus would receive it from Grafana (variables filled in)."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    if "$" in expr:
        raise AssertionError(f"an unknown Grafana variable in {expr!r}")
    return expr


_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "bool", "inf", "nan"}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, aggregations, grouping
    labels, label matchers, durations and numbers left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", "", text)
    return {n for n in _NAME.findall(text) if n.lower() not in _KEYWORDS}


def promtool() -> str:
    """Debian's ``promtool``; a skip where it is missing, a failure under
    MEDOPS_REQUIRE_PROMTOOL=1 (as in .ci/run)."""
    found = shutil.which("promtool")
    if found is None:
        why = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}, and {REQUIRE_ENV}=1")
        pytest.skip(why)
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
