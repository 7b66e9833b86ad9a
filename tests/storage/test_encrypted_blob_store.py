"""The registry's blob store encrypted at rest: the BlobStore contract on a folder and on S3,
no plaintext in what is stored, tampering detected, the datasets' object format, replicas
sharing one bucket, and a bad MEDOPS_BLOB_URL refused when the settings load."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from medops.config import Settings
from medops.errors import IntegrityError, InvalidInputError, NotFoundError
from medops.storage.crypto import SEGMENT_SIZE, Keyring
from medops.storage.encrypted import EncryptedBlobStore, open_blob_store
from medops.storage.objects import ObjectStore, object_key
from tests.helpers.s3 import MotoServer

MARKER = b"PATIENT-MARKER-7f3c"
SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 17]


def _payload(size: int) -> bytes:
    """Random bytes of ``size`` with the marker inside when it fits."""
    data = bytearray(os.urandom(size))
    if size >= len(MARKER):
        data[size // 2 : size // 2 + len(MARKER)] = MARKER
    return bytes(data)


def _read_in_pieces(store: EncryptedBlobStore, digest: str, piece: int = 70_001) -> bytes:
    parts = []
    with store.open(digest) as reader:
        while chunk := reader.read(piece):
            parts.append(chunk)
    return b"".join(parts)


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("size", SIZES)
def test_local_round_trip_keeps_the_sha256_of_the_plaintext(
    local_store: EncryptedBlobStore, size: int
) -> None:
    """put, put_stream, get, open, size and exists agree; the digest is the plaintext's."""
    data = _payload(size)
    digest = local_store.put(data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert local_store.put_stream(io.BytesIO(data)) == digest
    assert local_store.get(digest) == data
    assert _read_in_pieces(local_store, digest) == data
    with local_store.open(digest) as reader:
        assert reader.read() == data
    assert local_store.exists(digest)
    assert local_store.size(digest) == size


def test_the_same_content_is_stored_once_and_no_spool_is_left(
    local_store: EncryptedBlobStore,
) -> None:
    """Storing identical bytes twice (put, then put_stream) keeps one object and no temp."""
    data = _payload(2 * SEGMENT_SIZE + 5)
    local_store.put(data)
    local_store.put_stream(io.BytesIO(data))
    root = Path(local_store.url)
    assert len(_stored_files(root / "objects")) == 1
    assert len(_stored_files(root / "keys")) == 1
    assert _stored_files(root / ".tmp") == []


def test_no_stored_byte_sequence_is_the_plaintext(local_store: EncryptedBlobStore) -> None:
    """A file grep for a known marker finds nothing at rest, for put and for put_stream."""
    local_store.put(_payload(SEGMENT_SIZE + 100))
    local_store.put_stream(io.BytesIO(_payload(3 * SEGMENT_SIZE)))
    local_store.put(MARKER)
    files = _stored_files(Path(local_store.url))
    assert files
    for path in files:
        assert MARKER not in path.read_bytes(), path


def test_blobs_are_objects_of_the_datasets_format(local_store: EncryptedBlobStore) -> None:
    """The datasets' ObjectStore, with the same keyring, reads a blob as one of its own."""
    data = _payload(SEGMENT_SIZE + 3)
    digest = local_store.put_stream(io.BytesIO(data))
    other = ObjectStore(local_store.backend, local_store.objects.keyring, workers=1)
    try:
        assert other.get(digest) == data
        assert other.kek_id(digest) == local_store.objects.keyring.current_id
    finally:
        other.close()


@pytest.mark.parametrize("where", ["header", "middle", "tag", "end"])
def test_an_altered_object_fails_on_get_and_on_a_streamed_read(
    local_store: EncryptedBlobStore, where: str
) -> None:
    """A flipped byte anywhere, or a truncated object, raises IntegrityError naming the blob,
    on get and on a streamed read, never wrong bytes."""
    digest = local_store.put(_payload(2 * SEGMENT_SIZE + 9))
    path = Path(local_store.url) / object_key(digest)
    raw = bytearray(path.read_bytes())
    path.chmod(0o600)
    if where == "end":
        del raw[-5:]
    else:
        at = {"header": 20, "middle": SEGMENT_SIZE + 40, "tag": len(raw) - 3}[where]
        raw[at] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=digest):
        local_store.get(digest)
    with pytest.raises(IntegrityError, match=digest):
        _read_in_pieces(local_store, digest)


def test_a_missing_key_record_or_a_foreign_key_fails_cleanly(tmp_path: Path) -> None:
    """A blob whose key record is gone, or read with a keyring that lacks its KEK, is an
    IntegrityError; an absent blob is NotFoundError; a malformed digest is refused."""
    home = tmp_path / "home"
    store = open_blob_store(Settings(home=home))
    digest = store.put(b"artifact bytes")
    stranger = open_blob_store(Settings(home=home, data_kek_file=tmp_path / "other.key"))
    try:
        with pytest.raises(IntegrityError, match="not held"):
            stranger.get(digest)
        for record in (Path(store.url) / "keys").rglob("*.*"):
            record.unlink()
        with pytest.raises(IntegrityError, match=digest):
            store.open(digest)
        absent = "sha256:" + "0" * 64
        with pytest.raises(NotFoundError, match=absent):
            store.get(absent)
        with pytest.raises(NotFoundError):
            store.open(absent)
        with pytest.raises(NotFoundError):
            store.size(absent)
        assert not store.exists(absent)
        with pytest.raises(InvalidInputError):
            store.get("sha256:../../etc/passwd")
    finally:
        store.close()
        stranger.close()


def test_s3_round_trip_with_multipart_and_no_plaintext_in_the_bucket(
    s3_store: EncryptedBlobStore, s3_env: MotoServer
) -> None:
    """On S3: small and multipart-sized blobs round-trip, and no stored object holds the
    marker."""
    s3_store.part_size = 5 * 1024 * 1024  # S3's smallest part: a 12 MiB blob takes three
    big = _payload(12 * SEGMENT_SIZE + 11)
    small = _payload(1000)
    big_digest = s3_store.put_stream(io.BytesIO(big))
    small_digest = s3_store.put(small)
    assert s3_store.get(big_digest) == big
    assert _read_in_pieces(s3_store, big_digest, 1 << 20) == big
    assert s3_store.get(small_digest) == small
    assert s3_store.size(big_digest) == len(big)
    assert s3_store.put(big) == big_digest  # already there: nothing written
    assert s3_store.url.startswith("s3://")
    assert s3_store.url.endswith("/medops/blobs")
    bucket = s3_store.url.removeprefix("s3://").split("/", 1)[0]
    client = s3_env.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 4
    assert all(k.startswith("medops/blobs/") for k in keys)
    for key in keys:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert MARKER not in body, key


def test_s3_tampering_is_detected(s3_store: EncryptedBlobStore, s3_env: MotoServer) -> None:
    """An object altered in the bucket fails its integrity check."""
    digest = s3_store.put(_payload(SEGMENT_SIZE + 50))
    bucket = s3_store.url.removeprefix("s3://").split("/", 1)[0]
    key = "medops/blobs/" + object_key(digest)
    client = s3_env.client()
    raw = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    raw[100] ^= 0x80
    client.put_object(Bucket=bucket, Key=key, Body=bytes(raw))
    with pytest.raises(IntegrityError, match=digest):
        s3_store.get(digest)


def test_two_replicas_on_one_bucket_see_each_others_blobs(
    s3_settings: Settings, tmp_path: Path
) -> None:
    """Two installations (separate homes) on one bucket and one KEK read what the other
    wrote, whichever way it was written."""
    first = open_blob_store(s3_settings)
    second = open_blob_store(s3_settings.model_copy(update={"home": tmp_path / "other"}))
    try:
        one = first.put(_payload(5000))
        two = second.put_stream(io.BytesIO(_payload(2 * SEGMENT_SIZE)))
        assert second.exists(one)
        assert first.exists(two)
        assert second.get(one) == first.get(one)
        assert _read_in_pieces(first, two) == second.get(two)
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://host/blobs", "ftp:// is not a supported store"),
        ("s3://", "needs a bucket name"),
        ("s3://Bad_Bucket/x", "needs a bucket name"),
        ("s3://bucket/a//b", "prefix"),
        ("s3://bucket/x?versionId=1", "no ?query"),
        ("file://server/share", "absolute path"),
    ],
)
def test_a_bad_blob_url_is_refused_when_the_settings_load(
    tmp_path: Path, url: str, fragment: str
) -> None:
    """MEDOPS_BLOB_URL that names no store is a configuration error, not a later 500."""
    with pytest.raises(ValidationError, match="blob_url") as raised:
        Settings(home=tmp_path, blob_url=url)
    assert fragment in str(raised.value)


def test_an_s3_store_needs_a_kek_every_replica_shares(tmp_path: Path) -> None:
    """A bucket shared by replicas with a key file made per pod would not be readable by
    the others: the settings refuse it and say what to set."""
    with pytest.raises(ValidationError, match="MEDOPS_DATA_KEK"):
        Settings(home=tmp_path, blob_url="s3://bucket/prefix")
    ok = Settings(
        home=tmp_path,
        blob_url="s3://bucket/prefix",
        data_kek=SecretStr(f"k1:{'A' * 43}="),
    )
    assert ok.blob_url == "s3://bucket/prefix"


def test_a_folder_url_places_the_store(tmp_path: Path) -> None:
    """A path or file:// URL is the folder; the default is blobs/ in the home."""
    folder = tmp_path / "elsewhere"
    for url in (str(folder), folder.as_uri()):
        store = open_blob_store(Settings(home=tmp_path / "home", blob_url=url))
        digest = store.put(b"x")
        assert (folder / object_key(digest)).is_file()
        store.close()
    default = open_blob_store(Settings(home=tmp_path / "home"))
    assert Path(default.url) == tmp_path / "home" / "blobs"
    assert isinstance(default.objects.keyring, Keyring)
    default.close()


def test_put_stream_memory_does_not_grow_with_the_blob(
    local_store: EncryptedBlobStore, tmp_path: Path
) -> None:
    """A 32 MiB stream is stored with a few segments in memory at a time (spooled sealed,
    then re-sealed), not the whole artifact."""
    source = tmp_path / "artifact.onnx"
    with source.open("wb") as handle:
        for _ in range(32):
            handle.write(os.urandom(SEGMENT_SIZE))
    local_store.put(b"warm")  # the keyring and the crypto pool exist before measuring
    tracemalloc.start()
    try:
        with source.open("rb") as stream:
            digest = local_store.put_stream(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * SEGMENT_SIZE
    assert local_store.size(digest) == 32 * SEGMENT_SIZE
