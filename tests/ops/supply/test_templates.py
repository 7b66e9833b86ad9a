"""The workflow templates a model repository copies are valid for their CI systems (the
official JSON schemas, vendored in tests/ops/supply/schemas/ with their licences) and run
the path docs/model-ci.md describes: log in by token, register from the commit, validate,
gate, and on the main branch a canary only after the gate with signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the lock
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "deploy" / "ci-templates"
SCHEMAS = Path(__file__).parent / "schemas"
CASES = [("github-actions.yml", "github-workflow.json"), ("gitlab-ci.yml", "gitlab-ci.json")]


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((TEMPLATES / name).read_text())
    assert isinstance(document, dict)
    return document


def _validator(schema: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / schema).read_text()))


@pytest.mark.parametrize(("template", "schema"), CASES)
def test_each_template_is_valid_against_its_official_schema(template: str, schema: str) -> None:
    """No schema error; the schemas still catch a misspelt key, so the check is real."""
    validator = _validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_load(template))]
    assert errors == []
    broken = _load(template)
    if "jobs" in broken:  # GitHub Actions
        broken["jobs"]["gate"]["runs_on"] = broken["jobs"]["gate"].pop("runs-on")
    else:  # GitLab CI
        broken["medops-gate"]["scripts"] = broken["medops-gate"].pop("script")
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("template", [t for t, _ in CASES])
def test_each_template_runs_the_governed_path(template: str) -> None:
    """Token login (no password), registration from the commit, validation, the gate with a
    pull-request comment, the ML-BOM, and a canary gated on signatures."""
    text = (TEMPLATES / template).read_text()
    assert "MEDOPS_TOKEN" in text
    assert "medops login" not in text
    for step in (
        "medops whoami",
        "medops models register",
        "--commit",
        "medops models validate",
        "medops models sbom",
        "medops ci gate",
        "--markdown gate.md",
        "--require-approvals",
        "medops deploy canary",
    ):
        assert step in text, step
    assert text.index("--require-approvals") < text.index("medops deploy canary")
