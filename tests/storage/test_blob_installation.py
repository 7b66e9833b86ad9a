"""The encrypted blob store in an installation: `medops db upgrade` encrypts a plaintext store
of an earlier release, reads find either form meanwhile, a tampered artifact is a clear API
error, `data keys rotate` re-wraps the registry's blobs, two apps share one bucket, and a bad
MEDOPS_BLOB_URL stops the CLI with one line."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from medops import admin
from medops.api.app import create_app
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.datasets.keys import add_key
from medops.errors import IntegrityError
from medops.services import Services, build_services
from medops.storage.crypto import parse_keys, write_keyring_file
from medops.storage.encrypted import EncryptedBlobStore, open_blob_store
from medops.storage.local import LocalBlobStore
from medops.storage.migrate import encrypt_legacy_blobs
from medops.storage.objects import object_key
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.cli import assert_one_line_error
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.http import bearer, problem
from tests.helpers.people import make_user
from tests.helpers.registry import NAME, register
from tests.helpers.s3 import MotoServer

REPORT = b"validation report, PATIENT-MARKER-7f3c, plain in the old store"

ClientFor = Callable[..., tuple[httpx.Client, Services]]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _client(services: Services) -> httpx.Client:
    transport = EmbeddedTransport(create_app(services=services))
    return httpx.Client(transport=transport, base_url="https://testserver")


def _artifact(http: httpx.Client, headers: dict[str, str], version: int = 1) -> httpx.Response:
    return http.get(f"/api/v1/models/{NAME}/versions/{version}/artifact", headers=headers)


def test_upgrade_encrypts_a_plaintext_store_made_the_old_way(
    settings: Settings, clock: FixedClock
) -> None:
    """An installation whose blobs an earlier release wrote in plain: `db upgrade` encrypts
    each one (the registry rows' digests unchanged), removes the plain files, is audited,
    and a second run finds nothing to do; the artifact downloads as before."""
    old = build_services(settings, clock=clock, blobs=LocalBlobStore(settings.blob_dir))
    try:
        headers = bearer(make_user(old, "old-registrant", Role.ML_ENGINEER))
        with _client(old) as http:
            created = http.post(
                "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=headers
            )
            assert created.status_code == 201, created.text
            registered = register(http, headers)
            assert registered.status_code == 201, registered.text
            digest = "sha256:" + registered.json()["artifact_digest"].removeprefix("sha256:")
            artifact = _artifact(http, headers).content
        report = old.blobs.put(REPORT)
    finally:
        old.close()
    plain = _files(settings.blob_dir / "sha256")
    assert len(plain) == 2
    assert any(REPORT in p.read_bytes() for p in plain)  # the old way: plaintext at rest

    result = admin.upgrade(settings)

    assert result.blobs_encrypted == 2
    assert result.blobs_failed == ()
    assert _files(settings.blob_dir / "sha256") == []
    sample = artifact[len(artifact) // 2 :][:32]  # the ONNX file is a few hundred bytes
    assert len(sample) == 32
    for path in _files(settings.blob_dir):
        data = path.read_bytes()
        assert b"PATIENT-MARKER" not in data, path
        assert sample not in data, path
    assert admin.upgrade(settings).blobs_encrypted == 0
    new = build_services(settings, clock=clock)
    try:
        assert isinstance(new.blobs, EncryptedBlobStore)
        assert new.blobs.get(report) == REPORT
        assert new.blobs.get(digest) == artifact
        actions = [e.action for e in new.audit.iterate()]
        assert actions.count("storage.blobs.encrypt") == 1
        with _client(new) as http:
            answer = _artifact(http, headers)
        assert answer.status_code == 200, answer.text
        assert answer.content == artifact
        assert answer.headers["x-medops-digest"].removeprefix("sha256:") == digest[7:]
    finally:
        new.close()


def test_reads_find_either_form_and_an_interrupted_migration_loses_nothing(
    tmp_path: Path,
) -> None:
    """Plain and encrypted blobs are read side by side; a plain file whose encrypted copy was
    written before a crash is finished by the next run; a plain file that fails its digest is
    named and left in place, never encrypted."""
    settings = Settings(home=tmp_path / "home")
    legacy = LocalBlobStore(settings.blob_dir)
    plain = legacy.put(b"plain artifact")
    halfway = legacy.put(b"encrypted before the crash, plain file still there")
    damaged = legacy.put(b"damaged on disk")
    damaged_path = settings.blob_dir / "sha256" / damaged[7:9] / damaged[9:]
    damaged_path.chmod(0o600)
    damaged_path.write_bytes(b"damaged on disc")
    store = open_blob_store(settings)
    try:
        store.put(b"encrypted before the crash, plain file still there")
        fresh = store.put_stream(io.BytesIO(b"written encrypted by this release"))
        assert store.get(plain) == b"plain artifact"
        with store.open(halfway) as reader:
            assert reader.read() == b"encrypted before the crash, plain file still there"
        assert store.exists(plain)
        assert store.size(plain) == len(b"plain artifact")

        summary = encrypt_legacy_blobs(store)

        assert summary.encrypted == 2
        assert summary.failed == [damaged]
        assert summary.remaining == 1
        assert damaged_path.read_bytes() == b"damaged on disc"
        assert not store.objects.exists(damaged)
        with pytest.raises(IntegrityError, match="corrupt"):
            store.get(damaged)
        assert store.get(plain) == b"plain artifact"
        assert store.get(fresh) == b"written encrypted by this release"
        assert sorted(store.digests()) == sorted([plain, halfway, fresh])
        again = encrypt_legacy_blobs(store)
        assert (again.encrypted, again.failed) == (0, [damaged])
    finally:
        store.close()


def test_a_tampered_artifact_is_a_clear_api_error(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]], model: None
) -> None:
    """A byte altered in the stored artifact: the download is a problem+json naming the
    blob and what to do, never the altered bytes."""
    registered = register(http, people["ds"])
    assert registered.status_code == 201, registered.text
    assert isinstance(services.blobs, EncryptedBlobStore)
    digest = registered.json()["artifact_digest"]
    digest = digest if digest.startswith("sha256:") else "sha256:" + digest
    path = Path(services.blobs.url) / object_key(digest)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    path.chmod(0o600)
    path.write_bytes(bytes(raw))
    body = problem(_artifact(http, people["ds"]), 500, "integrity-error")
    assert digest in body["detail"]
    assert "restore it from a backup" in body["detail"]


def test_key_rotation_re_wraps_the_registry_blobs(
    settings: Settings,
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    model: None,
    client_for: ClientFor,
) -> None:
    """A new KEK first in the keyring file, `data keys rotate` (its route) re-wraps every
    blob's data key; with the old KEK dropped, the artifact still downloads."""
    assert register(http, people["ds"]).status_code == 201
    artifact = _artifact(http, people["ds"]).content
    assert isinstance(services.blobs, EncryptedBlobStore)
    old_id = services.blobs.objects.keyring.current_id
    new_id = add_key(settings)
    rotating, rotating_services = client_for()
    answer = rotating.post("/api/v1/data/keys/rotate", json={}, headers=people["mle"])
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["kek_id"] == new_id
    assert summary["blobs"] >= 1
    assert summary["blobs_rewrapped"] == summary["blobs"]
    blobs = rotating_services.blobs
    assert isinstance(blobs, EncryptedBlobStore)
    assert {blobs.kek_id(d) for d in blobs.digests()} == {new_id}
    path = settings.resolved_data_kek_file
    keys = parse_keys(path.read_text(), source=str(path))
    assert [k for k, _ in keys] == [new_id, old_id]
    write_keyring_file(path, keys[:1], exclusive=False)  # the old KEK dropped
    after, _ = client_for()
    assert _artifact(after, people["ds"]).content == artifact
    again = after.post("/api/v1/data/keys/rotate", json={}, headers=people["mle"]).json()
    assert again["blobs_rewrapped"] == 0


def test_two_apps_on_one_bucket_serve_each_others_artifacts(
    s3_env: MotoServer,
    tmp_path: Path,
    people: dict[str, dict[str, str]],
    model: None,
    client_for: ClientFor,
    new_kek: Callable[[str], str],
) -> None:
    """Two replicas (own homes, one database, one bucket, one KEK): what one registers, the
    other downloads; nothing is written to either home's blobs/ folder."""
    shared = {
        "blob_url": f"s3://{s3_env.bucket()}/registry",
        "data_s3_endpoint_url": s3_env.endpoint,
        "data_kek": SecretStr(new_kek("replicas")),
    }
    first, _ = client_for(home=tmp_path / "replica-1", **shared)
    second, _ = client_for(home=tmp_path / "replica-2", **shared)
    registered = register(first, people["ds"])
    assert registered.status_code == 201, registered.text
    from_first = _artifact(first, people["ds"])
    from_second = _artifact(second, people["ds"])
    assert from_second.status_code == 200, from_second.text
    assert from_second.content == from_first.content
    assert not (tmp_path / "replica-1" / "blobs").exists()
    assert not (tmp_path / "replica-2" / "blobs").exists()


@pytest.mark.parametrize("url", ["ftp://files/blobs", "s3://", "s3://bucket/prefix"])
def test_a_bad_blob_url_stops_the_cli_with_one_line(tmp_path: Path, url: str) -> None:
    """An unusable MEDOPS_BLOB_URL (or an S3 one without a shared KEK) is one error line
    naming the setting, before anything runs."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_BLOB_URL=url))
    assert_one_line_error(cli("db", "status"), "MEDOPS_BLOB_URL")
