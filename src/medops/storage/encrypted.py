"""The registry's blob store, encrypted at rest with the datasets' envelope encryption.

A blob is an object of the dataset store's format (``medops.storage.crypto``): a clear header,
1 MiB segments sealed with AES-256-GCM under the blob's own random data key, and a key record
(the data key wrapped by the current data KEK of ``MEDOPS_DATA_KEK``/``MEDOPS_DATA_KEK_FILE``)
beside it; keys ``objects/ab/<hex>`` and ``keys/ab/<hex>.<salt>`` in a ``Backend`` (a folder or
an S3 bucket). The address is still the SHA-256 of the plaintext, so registry rows are
unchanged, and ``ObjectStore`` (rotation, verification) reads these blobs as its own.

* ``put`` hashes the bytes, then encrypts them on the crypto pool while the segments already
  sealed are written (key record first, then the object, each atomically).
* ``put_stream`` never holds more than a few segments: the stream is hashed while it is
  spooled, sealed under a throw-away key that lives only in memory, to an unlinked temporary
  file; once the digest is known the spool is re-sealed under the blob's data key and written
  (to S3 in multipart parts of ``PART_SIZE``).
* ``open`` authenticates each segment as it is read (a few segments per ranged read) and
  checks the SHA-256 of the whole plaintext at the end; ``get`` does the same at once.
* Blobs that an earlier release wrote as plain files (``<folder>/sha256/ab/<rest>``) are
  still read, verified, until ``encrypt_legacy`` (run by ``medops db upgrade``) has replaced
  each with its encrypted object: written, read back and verified, and only then the plain
  file removed, so a crash at any point loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medops.config import Settings
from medops.errors import IntegrityError, NotFoundError
from medops.files import private_folder
from medops.storage.backends.base import Backend, Buffer
from medops.storage.backends.local import LocalBackend
from medops.storage.base import CHUNK_SIZE, DIGEST_PREFIX, check_digest
from medops.storage.crypto import (
    HEADER_SIZE,
    SEGMENT_SIZE,
    TAG_BYTES,
    Header,
    Keyring,
    SegmentCipher,
    binding,
    new_header,
)
from medops.storage.local import LocalBlobStore
from medops.storage.location import BlobLocation, parse_blob_url
from medops.storage.objects import ObjectStore, key_record_key, object_key

PART_SIZE = 16 * 1024 * 1024  # S3 multipart part (S3's minimum is 5 MiB)
READ_SEGMENTS = 4  # segments per ranged read of ``open``
MAX_IN_FLIGHT = 8  # segments being sealed at once, whatever the core count (memory bound)
_SPOOL_AAD = b"medops-blob-spool\0"
T = TypeVar("T")


def _spool_nonce(index: int) -> bytes:
    return struct.pack(">IQ", 1, index)


class EncryptedBlobStore:
    """Content-addressed blobs, encrypted at rest, in a folder or an S3 bucket."""

    def __init__(
        self,
        backend: Backend,
        keyring: Callable[[], Keyring],
        *,
        legacy: Path | None = None,
        spool: Path | None = None,
        workers: int = 0,
        part_size: int = PART_SIZE,
    ) -> None:
        self.backend = backend
        self._keyring = keyring
        self._workers = workers
        self._objects: ObjectStore | None = None
        self._lock = threading.Lock()
        self.part_size = part_size
        # Blobs written in plain by releases before encryption at rest (the same folder).
        self.legacy = LocalBlobStore(legacy) if legacy is not None else None
        # Where put_stream spools (sealed; unlinked at once): the store's folder, or ``spool``
        # (the home: writable where a read-only root filesystem leaves no /tmp).
        self._spool_dir = Path(backend.url) / ".tmp" if isinstance(backend, LocalBackend) else spool

    @property
    def url(self) -> str:
        """Where the blobs are (a folder or ``s3://bucket/prefix``)."""
        return self.backend.url

    @property
    def objects(self) -> ObjectStore:
        """The dataset store's object layer over this backend (the keyring loads on first
        use, so building the services creates nothing)."""
        with self._lock:
            if self._objects is None:
                self._objects = ObjectStore(self.backend, self._keyring(), workers=self._workers)
            return self._objects

    def close(self) -> None:
        with self._lock:
            objects, self._objects = self._objects, None
        if objects is not None:
            objects.close()

    # -- writing ---------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        view = memoryview(data).cast("B")
        digest = DIGEST_PREFIX + hashlib.sha256(view).hexdigest()
        if not self.objects.exists(digest):
            header = new_header(len(view))
            segments = (
                (index, view[start : min(start + SEGMENT_SIZE, len(view))])
                for index, start in enumerate(range(0, max(len(view), 1), SEGMENT_SIZE))
            )
            self._write(digest, header, segments, lambda cipher, item: cipher.encrypt(*item))
        return digest

    def put_stream(self, stream: BinaryIO) -> str:
        spool_key = AESGCM.generate_key(bit_length=256)
        spool_aead = AESGCM(spool_key)
        if self._spool_dir is not None:
            private_folder(self._spool_dir)
        # Unlinked at once (no name on disk); its content is sealed under a key only held here.
        with tempfile.TemporaryFile(dir=self._spool_dir, prefix="blob-spool-") as spool:
            hasher = hashlib.sha256()
            size = 0

            def chunks() -> Iterator[tuple[int, bytes]]:
                nonlocal size
                index = 0
                while True:
                    chunk = _read_full(stream, SEGMENT_SIZE)
                    if not chunk and index:
                        return
                    hasher.update(chunk)
                    size += len(chunk)
                    yield index, chunk
                    index += 1
                    if len(chunk) < SEGMENT_SIZE:
                        return

            def seal(item: tuple[int, bytes]) -> bytes:
                return spool_aead.encrypt(_spool_nonce(item[0]), item[1], _SPOOL_AAD)

            for sealed in self._pipeline(seal, chunks()):
                spool.write(sealed)
            digest = DIGEST_PREFIX + hasher.hexdigest()
            if self.objects.exists(digest):
                return digest
            spool.seek(0)
            header = new_header(size)

            def spooled() -> Iterator[tuple[int, bytes]]:
                for index in range(header.segments):
                    plain = min(SEGMENT_SIZE, size - index * SEGMENT_SIZE)
                    yield index, spool.read(plain + TAG_BYTES)

            def reseal(cipher: SegmentCipher, item: tuple[int, bytes]) -> bytes:
                index, sealed = item
                try:
                    plain = spool_aead.decrypt(_spool_nonce(index), sealed, _SPOOL_AAD)
                except InvalidTag:
                    raise IntegrityError("a blob's upload spool was altered") from None
                return cipher.encrypt(index, plain)

            self._write(digest, header, spooled(), reseal)
        return digest

    def _write(
        self,
        digest: str,
        header: Header,
        segments: Iterator[tuple[int, T]],
        encrypt: Callable[[SegmentCipher, tuple[int, T]], bytes],
    ) -> None:
        """Seal ``segments`` into a new object: the key record first, then the object, each
        atomically, so an object that is there can always be read."""
        objects = self.objects
        data_key = AESGCM.generate_key(bit_length=256)
        cipher = SegmentCipher(data_key, digest, header)
        record = objects.keyring.wrap(data_key, binding(digest, header))
        record_key = key_record_key(digest, header)
        self.backend.put(record_key, [record.encode()])
        body = self._pipeline(lambda item: encrypt(cipher, item), segments)
        try:
            self._put_object(object_key(digest), header.stored_size, _prepend(header.raw, body))
        except BaseException:
            self.backend.delete(record_key)
            raise

    def _put_object(self, key: str, size: int, chunks: Iterator[Buffer]) -> None:
        if isinstance(self.backend, LocalBackend) or size <= self.part_size:
            # A folder streams to a temporary file; one S3 PUT holds at most a part.
            self.backend.put(key, chunks)
            return
        upload = self.backend.start_multipart(key)
        try:
            parts: list[tuple[int, str]] = []
            pending = bytearray()
            for chunk in chunks:
                pending += chunk
                while len(pending) >= self.part_size:
                    number = len(parts) + 1
                    part = bytes(pending[: self.part_size])
                    parts.append((number, self.backend.put_part(key, upload, number, part)))
                    del pending[: self.part_size]
            if pending or not parts:
                number = len(parts) + 1
                parts.append((number, self.backend.put_part(key, upload, number, pending)))
            self.backend.complete_multipart(key, upload, parts)
        except BaseException:
            self.backend.abort_multipart(key, upload)
            raise

    def _pipeline(self, work: Callable[[T], bytes], items: Iterable[T]) -> Iterator[bytes]:
        """``work`` applied to ``items`` on the crypto pool, in order, a few in flight: the
        caller writes one result while the pool computes the next ones (memory stays bounded
        by the window)."""
        pool = self.objects.pool
        depth = min(2 * self.objects.workers, MAX_IN_FLIGHT)
        window: deque[Future[bytes]] = deque()
        try:
            for item in items:
                window.append(pool.submit(work, item))
                if len(window) >= depth:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()

    # -- reading ---------------------------------------------------------------------------

    def get(self, digest: str) -> bytes:
        check_digest(digest)
        try:
            raw = self.backend.get(object_key(digest))
        except NotFoundError:
            return self._legacy(digest).get(digest)
        try:
            return self.objects.decrypt(digest, raw)
        except IntegrityError as exc:
            raise _corrupt(digest, exc) from None

    def open(self, digest: str) -> BinaryIO:
        check_digest(digest)
        try:
            header = self._header(digest)
        except NotFoundError:
            return self._legacy(digest).open(digest)
        try:
            stored = self.backend.size(object_key(digest))
            if stored != header.stored_size:
                raise IntegrityError("the object is truncated or extended")
            record = self.objects.key_record(digest, header)
            data_key = self.objects.keyring.unwrap(record, binding(digest, header))
        except IntegrityError as exc:
            raise _corrupt(digest, exc) from None
        cipher = SegmentCipher(data_key, digest, header)
        return _StreamReader(self._plaintext(digest, cipher))

    def _plaintext(self, digest: str, cipher: SegmentCipher) -> Iterator[bytes]:
        header = cipher.header
        hasher = hashlib.sha256()
        key = object_key(digest)
        try:
            for first in range(0, header.segments, READ_SEGMENTS):
                last = min(first + READ_SEGMENTS, header.segments) - 1
                start, _ = header.segment_span(first)
                end_at, end_len = header.segment_span(last)
                raw = memoryview(self.backend.get_range(key, start, end_at + end_len - start))
                for index in range(first, last + 1):
                    at, length = header.segment_span(index)
                    piece = cipher.decrypt(index, raw[at - start : at - start + length])
                    hasher.update(piece)
                    yield piece
            if DIGEST_PREFIX + hasher.hexdigest() != digest:
                raise IntegrityError("its plaintext has another SHA-256")
        except IntegrityError as exc:
            raise _corrupt(digest, exc) from None
        except NotFoundError:
            raise NotFoundError(f"blob {digest} was removed while it was read") from None

    def _header(self, digest: str) -> Header:
        raw = self.backend.get_range(object_key(digest), 0, HEADER_SIZE)
        try:
            return Header.parse(raw)
        except IntegrityError as exc:
            raise _corrupt(digest, exc) from None

    def _legacy(self, digest: str) -> LocalBlobStore:
        if self.legacy is None or not self.legacy.exists(digest):
            raise NotFoundError(f"blob {digest} is not stored")
        return self.legacy

    def exists(self, digest: str) -> bool:
        check_digest(digest)
        if self.backend.size(object_key(digest)) is not None:
            return True
        return self.legacy is not None and self.legacy.exists(digest)

    def size(self, digest: str) -> int:
        check_digest(digest)
        try:
            return self._header(digest).size
        except NotFoundError:
            return self._legacy(digest).size(digest)

    # -- administration --------------------------------------------------------------------

    def digests(self) -> Iterator[str]:
        """Every encrypted blob's digest."""
        return self.objects.digests()

    def kek_id(self, digest: str) -> str:
        """The id of the KEK wrapping an encrypted blob's data key."""
        return self.objects.kek_id(digest)

    def legacy_digests(self) -> Iterator[str]:
        """The digests of blobs still stored in plain (written by an earlier release)."""
        if self.legacy is None:
            return
        base = self.legacy.root / "sha256"
        if not base.is_dir():
            return
        for fan in sorted(base.iterdir()):
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for path in sorted(fan.iterdir()):
                digest = f"{DIGEST_PREFIX}{fan.name}{path.name}"
                if path.is_file() and len(fan.name + path.name) == 64:
                    yield digest

    def encrypt_legacy(self, digest: str) -> None:
        """Replace the plain file of ``digest`` with its encrypted object: encrypt it (the
        plain file verified as it is read), read the object back and verify it, and only then
        remove the plain file. Idempotent; IntegrityError leaves the plain file in place."""
        legacy = self._legacy(digest)
        if not self.objects.exists(digest):
            with legacy.open(digest) as reader:
                written = self.put_stream(reader)
            if written != digest:  # the verifying reader raises first; kept as a guard
                raise IntegrityError(f"blob {digest} read back as {written}")
        with self.open(digest) as reader:
            while reader.read(CHUNK_SIZE):
                pass
        path = legacy.root / "sha256" / digest[7:9] / digest[9:]
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        with contextlib.suppress(OSError):  # other blobs are still there
            path.parent.rmdir()

    def rewrap_all(self) -> tuple[int, int]:
        """Re-wrap every blob's data key under the current KEK; (blobs, re-wrapped)."""
        blobs = rewrapped = 0
        for digest in self.digests():
            blobs += 1
            if self.objects.kek_id(digest) != self.objects.rewrap(digest):
                rewrapped += 1
        return blobs, rewrapped


def _corrupt(digest: str, exc: IntegrityError) -> IntegrityError:
    return IntegrityError(
        f"blob {digest} fails its integrity check ({exc.message}): it was altered or damaged "
        "in storage; restore it from a backup (medops backup restore)"
    )


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end (a socket may return less)."""
    parts = []
    wanted = size
    while wanted:
        chunk = stream.read(wanted)
        if not chunk:
            break
        parts.append(chunk)
        wanted -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _prepend(head: bytes, body: Iterator[bytes]) -> Iterator[Buffer]:
    yield head
    yield from body


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _StreamReader(io.RawIOBase, BinaryIO):
    """A file-like reader over plaintext pieces; the pieces' iterator verifies as it goes
    and raises IntegrityError at (or before) the end."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = memoryview(piece)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def readall(self) -> bytes:
        parts = [bytes(self._pending)]
        self._pending = memoryview(b"")
        parts.extend(self._pieces)
        return b"".join(parts)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def close(self) -> None:
        self._pieces = iter(())
        super().close()


def open_blob_store(
    settings: Settings, keyring: Callable[[], Keyring] | None = None
) -> EncryptedBlobStore:
    """The registry blob store of ``MEDOPS_BLOB_URL`` (default: ``blobs/`` in the home),
    encrypted with the data keyring (``keyring``: where to get it, so the registry and the
    datasets share one; default: loaded from the settings on first use)."""
    location = (
        parse_blob_url(settings.blob_url)
        if settings.blob_url
        else BlobLocation(folder=settings.blob_dir)
    )
    keys = keyring or (lambda: Keyring.from_settings(settings))
    workers = settings.data_hash_workers
    if location.folder is not None:
        backend: Backend = LocalBackend(location.folder)
        return EncryptedBlobStore(backend, keys, legacy=location.folder, workers=workers)
    from medops.storage.backends.s3 import S3Backend  # boto3 loads only when needed

    backend = S3Backend(
        location.bucket,
        location.prefix,
        endpoint_url=settings.data_s3_endpoint_url,
        region=settings.data_s3_region,
    )
    return EncryptedBlobStore(backend, keys, spool=settings.home / "tmp", workers=workers)
