"""Fixtures of the blob store tests: one moto_server (a real S3-compatible process on the
loopback) for the session, a data KEK for an installation, and encrypted stores."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from medops.config import Settings
from medops.storage.encrypted import EncryptedBlobStore, open_blob_store
from tests.helpers.s3 import MotoServer


def _kek(name: str) -> str:
    return f"{name}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def new_kek() -> Callable[[str], str]:
    """``new_kek("k2")``: a fresh data KEK in MEDOPS_DATA_KEK's ``id:base64`` form."""
    return _kek


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[EncryptedBlobStore]:
    """The default store of a fresh home: blobs/ in it, the keyring file made on first use."""
    store = open_blob_store(Settings(home=tmp_path / "home"))
    yield store
    store.close()


@pytest.fixture
def s3_settings(s3_env: MotoServer, tmp_path: Path) -> Settings:
    """Settings of an installation whose blobs are in a fresh bucket, under a prefix."""
    return Settings(
        home=tmp_path / "home",
        blob_url=f"s3://{s3_env.bucket()}/medops/blobs",
        data_s3_endpoint_url=s3_env.endpoint,
        data_kek=SecretStr(_kek("shared")),
    )


@pytest.fixture
def s3_store(s3_settings: Settings) -> Iterator[EncryptedBlobStore]:
    store = open_blob_store(s3_settings)
    yield store
    store.close()
