"""Fixtures of the dataset tests: one moto_server (a real S3-compatible process on the
loopback) for the whole session, with the AWS_* variables a client needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.s3 import MotoServer, moto_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The S3 server, with its credentials in this test's environment (for boto3's chain)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
