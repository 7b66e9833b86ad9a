"""The ``cli`` fixture for the feature store's CLI tests (as tests/cli/conftest.py defines it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli_runner import Cli, clean_env


@pytest.fixture
def cli(tmp_path: Path, empty_db_url: str) -> Cli:
    """A CLI on a fresh home whose database (SQLite or PostgreSQL) is still empty."""
    return Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_DATABASE_URL=empty_db_url))
