"""Fixtures of the store tests: a keyring, and an object store on each kind of backend (a
folder, and a bucket of the session's moto_server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medops.config import Settings
from medops.db.engine import Database
from medops.storage.backends import Backend, LocalBackend
from medops.storage.backends.s3 import S3Backend
from medops.storage.crypto import Keyring
from medops.storage.objects import ObjectStore
from tests.helpers.s3 import MotoServer


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([Keyring.generate_key()])


def s3_backend(server: MotoServer, prefix: str = "store") -> S3Backend:
    return S3Backend(server.bucket(), prefix, endpoint_url=server.endpoint, region="us-east-1")


@pytest.fixture(params=["folder", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A backend of each kind: a folder, and a fresh bucket on moto_server."""
    if request.param == "folder":
        return LocalBackend(tmp_path / "objects")
    server: MotoServer = request.getfixturevalue("s3_env")
    return s3_backend(server)


@pytest.fixture
def store(storage: Backend, keyring: Keyring) -> Iterator[ObjectStore]:
    store = ObjectStore(storage, keyring, workers=2)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url)
    try:
        yield database
    finally:
        database.dispose()
