"""The docs cover every command, setting, permission, metric, route and problem type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from medops.api.app import create_app
from medops.api.deps import PERMISSION_ATTR, access_check
from medops.config import ENV_PREFIX, Settings
from medops.core.permissions import render_matrix
from medops.errors import ALL_ERRORS, MedopsError
from tests.helpers.commands import command_tree, leaf_commands

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = DOCS.parent / "README.md"


def _read(name: str) -> str:
    return (DOCS / name).read_text()


def test_every_cli_command_has_a_heading_in_cli_md() -> None:
    """Each leaf command (e.g. `medops users create`) has its own ### heading."""
    text = _read("cli.md")
    commands = [name for name, _ in leaf_commands()]
    assert len(commands) >= 12
    missing = [c for c in commands if f"### `{c}`" not in text]
    assert missing == []
    documented = re.findall(r"^### `(medops [^`]*)`", text, re.M)
    phantom = [c for c in documented if c not in commands and c != "medops --version"]
    assert phantom == [], "documented commands that do not exist"


def test_every_cli_option_appears_in_cli_md() -> None:
    """Each option of each command (e.g. --password-stdin, --expires) is documented."""
    text = _read("cli.md")
    options: set[str] = set()
    for _, command in command_tree():
        for param in getattr(command, "params", []):
            options.update(o for o in getattr(param, "opts", []) if o.startswith("--"))
    options.discard("--help")
    missing = sorted(
        o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)
    )
    assert missing == []


def test_every_setting_is_documented_in_configuration_md() -> None:
    """Each Settings field appears as its MEDOPS_* variable in the settings table."""
    text = _read("configuration.md")
    for field in Settings.model_fields:
        assert f"| `{ENV_PREFIX}{field.upper()}` |" in text, field


def test_permission_matrix_in_security_md_is_generated_from_the_code() -> None:
    """docs/security.md holds exactly render_matrix() between its markers."""
    text = _read("security.md")
    block = re.search(r"<!-- permissions:start -->\n(.*?)<!-- permissions:end -->", text, re.S)
    assert block is not None
    assert block.group(1) == render_matrix(), (
        "regenerate the block with medops.core.permissions.render_matrix()"
    )


def test_api_table_lists_every_route_with_the_permission_it_declares() -> None:
    """docs/api.md's route table and the routes' declared permissions are the same set."""
    rows = re.findall(r"^\| `([A-Z]+) (/\S*)` \| `?([a-z:]+)`? \|", _read("api.md"), re.M)
    documented = set(rows)
    app = create_app(Settings(home=Path("/nonexistent"), database_url="sqlite://"))
    declared: set[tuple[str, str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        assert isinstance(route, APIRoute)
        check = access_check(route)
        permission = getattr(check, PERMISSION_ATTR).value if check else "public"
        declared.update((method, route.path, permission) for method in route.methods or ())
    assert documented == declared


@pytest.mark.parametrize(
    "error", [e for e in ALL_ERRORS if e is not MedopsError], ids=lambda e: e.code
)
def test_every_problem_type_is_documented(error: type[MedopsError]) -> None:
    """Each stable problem type slug (the abstract base has none) has a row in docs/api.md."""
    assert f"`{error.code}`" in _read("api.md")


def test_every_metric_is_documented_in_operations_md() -> None:
    """Each medops_* metric the app registers is in the metrics table."""
    text = _read("operations.md")
    app = create_app(Settings(home=Path("/nonexistent"), database_url="sqlite://"))
    families = [
        metric
        for metric in app.state.metrics.registry.collect()
        if metric.name.startswith("medops_")
    ]
    assert len(families) >= 6
    for metric in families:
        name = metric.name + ("_total" if metric.type == "counter" else "")
        assert f"`{name}`" in text, name


def test_readme_starts_with_the_two_commands() -> None:
    """A newcomer finds `make demo` and `make test` at the top of the README."""
    head = README.read_text()[:1500]
    assert "make demo" in head
    assert "make test" in head
    for page in ("architecture", "cli", "configuration", "api", "security", "operations"):
        assert f"docs/{page}.md" in README.read_text()
