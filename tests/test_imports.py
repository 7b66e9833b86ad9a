"""What may import what: no import cycle between medops' packages, the core below every
domain, migrations frozen, and the CLI reaching the app only through the SDK."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.imports import PACKAGE, cycles, unit_graph

MIGRATIONS = PACKAGE / "db" / "migrations" / "versions"


def test_no_package_level_import_cycle() -> None:
    """No two of medops' packages and top-level modules import each other at import time,
    directly or around a loop (imports inside functions run on use and do not count)."""
    assert cycles(unit_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a loop through three units is reported, a chain is not."""
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(loop) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_core_builds_on_nothing_but_itself() -> None:
    """core/ (signature, ONNX, metrics, datasets, canonical JSON, charts, windows,
    permissions) imports no domain, no database and no HTTP layer."""
    assert unit_graph()["core"] <= {"errors", "bounds"}


def test_the_cli_reaches_the_app_only_through_the_sdk() -> None:
    """The CLI's modules import neither the API, the services nor the database at import
    time (local administration imports them inside the commands that run locally)."""
    assert unit_graph()["cli"].isdisjoint({"api", "services", "db", "admin", "metadata"})


def test_migrations_carry_frozen_copies_of_what_they_compute() -> None:
    """A migration imports nothing of medops but the column types of medops.db.base, so a
    later change to live code cannot change what an old migration does."""
    found: dict[str, set[str]] = {}
    for path in sorted(MIGRATIONS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("medops") and name != "medops.db.base":
                    found.setdefault(Path(path).name, set()).add(name)
    assert found == {}
