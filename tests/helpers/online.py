"""Online feature stores for tests: SQLite in the test's folder, Redis on the loopback (a
per-test namespace, removed after), PostgreSQL (a per-test database of the run's server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from tests.helpers.postgres import PgServer

REDIS_ENV = "MEDOPS_TEST_REDIS_URL"
ONLINE_KINDS = ["sqlite", "redis", "postgresql"]


def redis_url() -> str | None:
    """The test Redis (``MEDOPS_TEST_REDIS_URL``, else 127.0.0.1:6379 db 15) when it answers."""
    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/15")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        client.ping()
        client.close()
    except redis.RedisError:
        return None
    return url


def _no_redis() -> NoReturn:
    """Skip a Redis case where none answers; fail it where CI requires Redis
    (``MEDOPS_REQUIRE_REDIS=1``, as .ci/run sets)."""
    reason = f"Redis case: no Redis answers (set {REDIS_ENV})"
    if os.environ.get("MEDOPS_REQUIRE_REDIS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def drop_namespace(url: str, namespace: str) -> None:
    """Remove every key a test's store wrote under ``namespace``."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{namespace}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


@pytest.fixture
def redis_namespace() -> Iterator[tuple[str, str]]:
    """(url, namespace) of a private corner of the test Redis; skips when none answers."""
    url = redis_url()
    if url is None:
        _no_redis()
    namespace = f"medops_test_{uuid.uuid4().hex[:10]}"
    try:
        yield url, namespace
    finally:
        drop_namespace(url, namespace)


def online_url(kind: str, tmp_path: Path, pg_server: PgServer | None) -> str:
    """An empty online store of ``kind`` (Redis: the caller supplies the namespace)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    if kind == "postgresql":
        if pg_server is None:
            pytest.skip("PostgreSQL case: set MEDOPS_TEST_POSTGRES_URL to run it")
        return pg_server.new_database(migrated=False)
    url = redis_url()
    if url is None:
        _no_redis()
    return url
