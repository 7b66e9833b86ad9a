"""Push and pull of encrypted objects between the local store and a remote (a folder, and
S3 through moto_server): as stored, multipart for large objects, verified on pull, resumable
after a push is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from medops.config import Settings
from medops.datasets.replicas import DONE, PENDING, Replicas
from medops.datasets.transfer import pull, push
from medops.db.engine import Database
from medops.errors import IntegrityError, NotFoundError
from medops.storage.backends import Backend, open_remote
from medops.storage.crypto import Keyring, format_keys
from medops.storage.objects import ObjectStore, object_key, open_store
from tests.helpers.datastore import digest_of, random_bytes
from tests.helpers.s3 import MotoServer

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part


@pytest.fixture
def kek_text() -> str:
    return format_keys([Keyring.generate_key()]).strip()


@pytest.fixture
def machine_a(settings: Settings, kek_text: str) -> Settings:
    return settings.model_copy(update={"data_kek": SecretStr(kek_text)})


@pytest.fixture
def machine_b(settings: Settings, kek_text: str, tmp_path: Path) -> Settings:
    """Another machine: its own home and store, the same KEK."""
    return settings.model_copy(update={"data_kek": SecretStr(kek_text), "home": tmp_path / "b"})


@dataclass(frozen=True)
class RemoteCase:
    """A remote of a test: its URL, and the S3 endpoint when it is a bucket."""

    url: str
    endpoint: str | None = None

    def open(self, settings: Settings) -> Backend:
        return open_remote(
            settings.model_copy(update={"data_s3_endpoint_url": self.endpoint}), self.url
        )


@pytest.fixture(params=["folder", "s3"])
def remote_case(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteCase:
    """A folder remote, and a prefix of a fresh bucket on moto_server."""
    if request.param == "folder":
        return RemoteCase(str(tmp_path / "remote"))
    server: MotoServer = request.getfixturevalue("s3_env")
    return RemoteCase(f"s3://{server.bucket()}/team/data", server.endpoint)


def _objects(store: ObjectStore, sizes: list[int]) -> dict[str, bytes]:
    out = {}
    for seed, size in enumerate(sizes):
        data = random_bytes(size, seed)
        digest = digest_of(data)
        store.put(digest, data)
        out[digest] = data
    return out


def test_push_then_pull_on_another_machine(
    database: Database, machine_a: Settings, machine_b: Settings, remote_case: RemoteCase
) -> None:
    """Objects pushed as stored (one multipart) are pulled on a machine with the same KEK,
    verified, and read back; pushing and pulling again copies nothing."""
    store_a = open_store(machine_a)
    objects = _objects(store_a, [100, 70_000, 12 * MIB + 7])
    remote = remote_case.open(machine_a)
    seen: list[tuple[int, int]] = []
    summary = push(
        database,
        store_a,
        remote,
        remote_case.url,
        list(objects),
        progress=lambda d, t: seen.append((d, t)),
        part_size=PART,
    )
    assert (summary.objects, summary.skipped) == (3, 0)
    assert seen[-1][0] == seen[-1][1] == summary.bytes
    big = max(objects, key=lambda d: len(objects[d]))
    assert remote.get(object_key(big)) == store_a.backend.get(object_key(big))  # as stored
    assert Replicas(database, remote_case.url).done(objects) == set(objects)
    again = push(database, store_a, remote, remote_case.url, list(objects), part_size=PART)
    assert (again.objects, again.skipped) == (0, 3)

    store_b = open_store(machine_b)
    pulled = pull(
        database,
        store_b,
        remote_case.open(machine_b),
        remote_case.url,
        list(objects),
        part_size=PART,
    )
    assert (pulled.objects, pulled.skipped) == (3, 0)
    for digest, data in objects.items():
        assert store_b.get(digest) == data
    assert pull(database, store_b, remote, remote_case.url, list(objects)).skipped == 3


def test_pull_refuses_tampered_objects(
    database: Database, machine_a: Settings, machine_b: Settings, remote_case: RemoteCase
) -> None:
    """A remote object with a flipped byte fails verification and is not stored."""
    store_a = open_store(machine_a)
    [digest] = _objects(store_a, [3 * MIB])
    remote = remote_case.open(machine_a)
    push(database, store_a, remote, remote_case.url, [digest])
    raw = bytearray(remote.get(object_key(digest)))
    raw[len(raw) // 2] ^= 0x80
    remote.put(object_key(digest), [bytes(raw)])
    store_b = open_store(machine_b)
    with pytest.raises(IntegrityError):
        pull(database, store_b, remote, remote_case.url, [digest])
    assert not store_b.exists(digest)


def test_push_of_an_object_not_stored_is_not_found(
    database: Database, machine_a: Settings, tmp_path: Path
) -> None:
    """Pushing a digest the store lacks names it instead of sending anything."""
    store = open_store(machine_a)
    with pytest.raises(NotFoundError):
        push(
            database,
            store,
            open_remote(machine_a, str(tmp_path / "r")),
            "r",
            [digest_of(b"nothing")],
        )


def test_pull_of_an_object_not_on_the_remote_is_not_found(
    database: Database, machine_b: Settings, tmp_path: Path
) -> None:
    """Pulling a digest the remote lacks says so."""
    store = open_store(machine_b)
    with pytest.raises(NotFoundError):
        pull(
            database,
            store,
            open_remote(machine_b, str(tmp_path / "r")),
            "r",
            [digest_of(b"nothing")],
        )


@pytest.mark.slow
def test_push_killed_with_sigkill_resumes_from_its_parts(
    database: Database, machine_a: Settings, machine_b: Settings, s3_env: MotoServer, tmp_path: Path
) -> None:
    """A push killed (SIGKILL) after two of four parts leaves a pending row with the upload
    id and those parts; the next push sends only the rest, and the object reads back."""
    url = f"s3://{s3_env.bucket()}/resume"
    store = open_store(machine_a)
    [digest] = _objects(store, [18 * MIB])
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        **s3_env.env,
        "MEDOPS_HOME": str(machine_a.home),
        "MEDOPS_DATABASE_URL": machine_a.resolved_database_url,
        "MEDOPS_DATA_KEK": machine_a.data_kek.get_secret_value() if machine_a.data_kek else "",
        "MEDOPS_DATA_REMOTE": url,
        "MEDOPS_DATA_S3_ENDPOINT_URL": s3_env.endpoint,
    }
    worker = Path(__file__).with_name("push_worker.py")
    process = subprocess.Popen(
        [sys.executable, str(worker), digest, str(PART), str(2 * PART), str(marker)], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, "the push worker ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    replicas = Replicas(database, url)
    state = replicas.get(digest)
    assert state is not None
    assert state.state == PENDING
    assert state.upload_id
    assert [n for n, _ in state.parts] == [1, 2]

    endpoint_settings = machine_a.model_copy(update={"data_s3_endpoint_url": s3_env.endpoint})
    remote = open_remote(endpoint_settings, url)
    assert remote.size(object_key(digest)) is None  # nothing half-visible
    seen: list[int] = []
    summary = push(
        database,
        store,
        remote,
        url,
        [digest],
        progress=lambda d, _t: seen.append(d),
        part_size=PART,
    )
    assert summary.objects == 1
    assert seen[0] == 2 * PART  # the two finished parts counted first, not sent again
    done = replicas.get(digest)
    assert done is not None
    assert done.state == DONE
    store_b = open_store(machine_b)
    pull(
        database,
        store_b,
        open_remote(endpoint_settings.model_copy(update={"home": machine_b.home}), url),
        url,
        [digest],
    )
    assert store_b.get(digest) == store.get(digest)
