"""Fixtures of the disaster-recovery drill: PostgreSQL's server binaries, found or missed.

Without them the drill skips with the reason, or fails with it under
``MEDOPS_REQUIRE_PG_SERVER=1`` (as in .ci/run): CI never passes by not looking.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medops.dr.postgres import find_bindir
from medops.errors import ConfigurationError

REQUIRE_ENV = "MEDOPS_REQUIRE_PG_SERVER"


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    """The folder of initdb, pg_ctl, pg_basebackup and postgres."""
    try:
        return find_bindir(None)
    except ConfigurationError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 and the DR drill cannot run: {exc}")
        pytest.skip(f"DR drill: {exc}")
