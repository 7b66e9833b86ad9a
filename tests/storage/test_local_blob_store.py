"""The local content-addressed blob store: atomic, deduplicated, verified on every read."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from medops.errors import IntegrityError, InvalidInputError, NotFoundError
from medops.storage import LocalBlobStore, digest_of


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _object_path(store: LocalBlobStore, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return store.root / "sha256" / hexdigest[:2] / hexdigest[2:]


def test_put_returns_the_sha256_of_the_content_and_get_returns_it(store: LocalBlobStore) -> None:
    """The address is the SHA-256 of the bytes, checked against hashlib."""
    data = os.urandom(10_000)
    digest = store.put(data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest() == digest_of(data)
    assert store.get(digest) == data
    assert store.exists(digest)
    assert store.size(digest) == len(data)


def test_same_content_is_stored_once(store: LocalBlobStore) -> None:
    """Putting identical bytes twice yields one object and no leftovers."""
    first = store.put(b"same bytes")
    second = store.put_stream(io.BytesIO(b"same bytes"))
    assert first == second
    objects = [p for p in (store.root / "sha256").rglob("*") if p.is_file()]
    assert len(objects) == 1
    assert list((store.root / "tmp").iterdir()) == []


def test_large_stream_is_written_in_chunks_and_read_back_verified(store: LocalBlobStore) -> None:
    """A stream larger than one chunk round-trips through the verifying reader."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = store.put_stream(io.BytesIO(data))
    with store.open(digest) as reader:
        parts = []
        while chunk := reader.read(65536):
            parts.append(chunk)
    assert b"".join(parts) == data


def test_corrupted_object_is_detected_on_get_and_on_streamed_read(store: LocalBlobStore) -> None:
    """A flipped byte on disk raises IntegrityError instead of returning wrong content."""
    digest = store.put(b"original clinical artifact")
    path = _object_path(store, digest)
    path.chmod(0o644)
    path.write_bytes(b"Original clinical artifact")
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get(digest)
    with store.open(digest) as reader:
        content = b"".join(reader.read(4) for _ in range(7))
        assert content == b"Original clinical artifact"  # every byte handed out, unverified
        with pytest.raises(IntegrityError):  # until end of file, where the digest is checked
            reader.read(4)


def test_missing_object_is_not_found(store: LocalBlobStore) -> None:
    """Asking for an absent digest raises NotFoundError, for get, open and size."""
    absent = digest_of(b"never stored")
    assert not store.exists(absent)
    for call in (store.get, store.open, store.size):
        with pytest.raises(NotFoundError):
            call(absent)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256:abc",
        "md5:" + "0" * 64,
        "sha256:" + "G" * 64,
        "sha256:../../etc/passwd" + "0" * 40,
    ],
)
def test_malformed_digest_is_refused_before_touching_the_disk(
    store: LocalBlobStore, bad: str
) -> None:
    """Only 'sha256:' plus 64 lower-case hex digits is a digest (no path tricks)."""
    with pytest.raises(InvalidInputError) as info:
        store.get(bad)
    assert info.value.errors[0].field == "digest"


class _FailingStream(io.RawIOBase):
    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("network storage went away")
        return b"x" * max(size, 1)


def test_failed_write_leaves_nothing_behind(store: LocalBlobStore) -> None:
    """A stream that breaks mid-way leaves no object and no temporary file."""
    with pytest.raises(OSError, match="went away"):
        store.put_stream(_FailingStream())  # type: ignore[arg-type]
    assert list((store.root / "tmp").iterdir()) == []
    assert not (store.root / "sha256").exists()


def test_stored_objects_are_read_only(store: LocalBlobStore) -> None:
    """Objects are immutable on disk too, and the owner's only (mode 0400)."""
    digest = store.put(b"immutable")
    assert _object_path(store, digest).stat().st_mode & 0o777 == 0o400
