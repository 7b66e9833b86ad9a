"""The tests stand alone and mirror the package: no test module (or conftest) imports another
test module or conftest, shared things live in tests/helpers, and each folder of tests is named
after the package it tests."""

from __future__ import annotations

import ast
from pathlib import Path

import medops

TESTS = Path(__file__).resolve().parent
PACKAGE = Path(medops.__file__).parent

# Folders of tests that test no single package, and why.
NOT_A_PACKAGE = {
    "helpers": "fixtures' building blocks and shared helpers, not tests",
    "security": "attack stories that cross every domain (the findings of a security review)",
    "data": "stored documents written by earlier code (and the script that captured them), which "
    "the typed report, window and profile models must keep loading",
    "browser": "the console's stories in a real browser (make browser, its own CI stage), "
    "crossing every page",
    "ops": "stories of running medops as hospital IT does (DR drill, replicas, deployment), "
    "each its own CI stage, crossing packages",
}


def _imports_from_tests(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if node.module == "tests":
                names = [f"tests.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == "tests" or n.startswith("tests.")]
    return found


def test_no_test_module_or_conftest_imports_another() -> None:
    """Test modules, conftest files and helpers import from `tests` only `tests.helpers`."""
    offenders = {
        str(path.relative_to(TESTS)): bad
        for path in sorted(TESTS.rglob("*.py"))
        if (
            bad := [
                n
                for n in _imports_from_tests(path)
                if not (n == "tests.helpers" or n.startswith("tests.helpers."))
            ]
        )
    }
    assert offenders == {}


def test_no_fixture_is_imported_to_be_used_by_name() -> None:
    """No unused import silenced for ruff (F401) smuggles a fixture in (fixtures: conftest)."""
    smuggled = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("*.py"))
        if "noqa: " + "F401" in path.read_text()
    ]
    assert smuggled == []


def test_test_folders_mirror_the_package() -> None:
    """Each folder under tests/ is named after a package of medops (or says why not)."""
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders - packages - set(NOT_A_PACKAGE) == set()
    assert set(NOT_A_PACKAGE) <= folders
