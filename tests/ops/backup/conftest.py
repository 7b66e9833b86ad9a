"""An installation worth backing up: a model in production (its artifact in the blob store),
predictions made, objects in the dataset store and a signed audit checkpoint."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from medops.config import Settings
from medops.services import Services
from medops.storage.encrypted import open_blob_store
from medops.testing import FixedClock
from tests.helpers.backup import Populated, add_data_object
from tests.helpers.datastore import random_bytes
from tests.helpers.registry import predict, random_records
from tests.helpers.s3 import MotoServer


@pytest.fixture
def populated(
    settings: Settings,
    services: Services,
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
) -> Populated:
    clinician = deployed["clin"]
    for seed in range(3):
        answer = predict(
            http, clinician, {"records": [{"features": r} for r in random_records(2, seed=seed)]}
        )
        assert answer.status_code == 200, answer.text
    for seed in range(2):
        add_data_object(settings, seed)
    assert services.checkpoints.checkpoint() is not None
    return Populated(settings, services, clinician, 6)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A folder target."""
    return tmp_path / "backups"


@pytest.fixture
def small(tmp_path: Path, sqlite_template: Path) -> Settings:
    """A migrated SQLite installation with two registry blobs and two dataset objects (for
    the checks that do not depend on the database kind)."""
    path = tmp_path / "home" / "medops.db"
    path.parent.mkdir(parents=True)
    shutil.copyfile(sqlite_template, path)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{path}")
    blobs = open_blob_store(settings)
    for seed in range(2):
        blobs.put(random_bytes(2048, 100 + seed))
        add_data_object(settings, seed)
    return settings


@pytest.fixture
def s3_target(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket of the S3-compatible server, as a target URL (the AWS_* variables set)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.bucket()}/medops-backups"


@pytest.fixture
def clock() -> FixedClock:
    """The tests' clock, started now: the API tokens it issues are still valid for a real
    server process (which reads the wall clock)."""
    return FixedClock(datetime.now(UTC).replace(microsecond=0))
