"""The version is written once, and the CHANGELOG starts with it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import medops

ROOT = Path(__file__).parent.parent


def test_the_version_is_written_once() -> None:
    """The package metadata, `medops --version` and the newest released CHANGELOG entry all
    say ``medops.__version__``; pyproject.toml takes it from there (dynamic). Only the top
    entry may be "Unreleased"."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("medops") == medops.__version__
    entries = [
        line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")
    ]
    if entries[0] == "## Unreleased":
        entries = entries[1:]
    assert "## Unreleased" not in entries
    assert entries[0].startswith(f"## {medops.__version__} ")
