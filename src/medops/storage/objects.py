"""The encrypted, content-addressed object store of datasets.

An object (a pack, a chunk, a manifest) is addressed by the SHA-256 of its plaintext and kept
in a ``Backend`` as two values:

* ``objects/<ab>/<hex>``: the header and the encrypted segments (``crypto``'s format);
* ``keys/<ab>/<hex>.<salt>``: its key record, the object's data key wrapped by a KEK. The
  salt in the name is the header's, so a record always pairs with the data it was made for.

``put`` checks the digest, encrypts the segments on a thread pool while the SHA-256 runs on
another thread (AES-GCM and hashlib both release the GIL), writes the key record and then the
data, each atomically (so an object that exists can be read). ``get`` checks the stored size,
authenticates and decrypts every segment and checks the SHA-256 of the plaintext against the
address; ``get_range`` reads and authenticates only the segments the range covers. Any
mismatch raises :class:`medops.errors.IntegrityError`. ``rewrap`` re-wraps a data key under
the current KEK and leaves the data untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medops.config import Settings
from medops.errors import FieldError, IntegrityError, InvalidInputError, NotFoundError
from medops.storage.backends.base import Backend
from medops.storage.backends.local import LocalBackend
from medops.storage.crypto import (
    HEADER_SIZE,
    Header,
    KeyRecord,
    Keyring,
    SegmentCipher,
    binding,
    new_header,
)

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_KEY_CACHE = 4096
_GROUP = 4  # segments per pool task


def check_digest(digest: str) -> str:
    """The hex part of ``sha256:<hex>``; InvalidInputError naming the digest otherwise."""
    match = _DIGEST.match(digest)
    if match is None:
        raise InvalidInputError(
            "not an object digest", errors=[FieldError("digest", "expected sha256:<64 hex>")]
        )
    return match.group(1)


def object_key(digest: str) -> str:
    """The backend key of an object's encrypted data."""
    hexdigest = check_digest(digest)
    return f"objects/{hexdigest[:2]}/{hexdigest}"


def key_record_key(digest: str, header: Header) -> str:
    """The backend key of the key record that pairs with ``header``."""
    hexdigest = check_digest(digest)
    return f"keys/{hexdigest[:2]}/{hexdigest}.{header.salt.hex()}"


def key_record_prefix(digest: str) -> str:
    hexdigest = check_digest(digest)
    return f"keys/{hexdigest[:2]}/{hexdigest}."


class ObjectStore:
    """Encrypted objects by plaintext digest, in one backend, under one keyring."""

    def __init__(self, backend: Backend, keyring: Keyring, *, workers: int = 0) -> None:
        self.backend = backend
        self.keyring = keyring
        self.workers = workers or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()

    # -- plumbing --------------------------------------------------------------------------

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="medops-crypt")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def header(self, digest: str) -> Header:
        """The clear header of a stored object; NotFoundError when absent."""
        return Header.parse(self.backend.get_range(object_key(digest), 0, HEADER_SIZE))

    def key_record(self, digest: str, header: Header) -> KeyRecord:
        try:
            raw = self.backend.get(key_record_key(digest, header))
        except NotFoundError:
            raise IntegrityError(f"object {digest} has no key record") from None
        return KeyRecord.decode(raw)

    def _data_key(self, digest: str, header: Header) -> bytes:
        cached = (digest, header.salt)
        with self._lock:
            key = self._keys.get(cached)
            if key is not None:
                self._keys.move_to_end(cached)
                return key
        key = self.keyring.unwrap(self.key_record(digest, header), binding(digest, header))
        with self._lock:
            self._keys[cached] = key
            while len(self._keys) > _KEY_CACHE:
                self._keys.popitem(last=False)
        return key

    def _map(
        self, items: list[tuple[int, memoryview]], work: SegmentCipher, *, encrypt: bool
    ) -> list[bytes]:
        return list(self._stream(items, work, encrypt=encrypt))

    def _stream(
        self, items: list[tuple[int, memoryview]], work: SegmentCipher, *, encrypt: bool
    ) -> Iterator[bytes]:
        """The segments' results in order, computed on the pool a group at a time, so the
        caller can write the first while the pool works on the next."""
        call = work.encrypt if encrypt else work.decrypt
        if len(items) <= 1 or self.workers <= 1:
            for index, view in items:
                yield call(index, view)
            return
        groups = [items[i : i + _GROUP] for i in range(0, len(items), _GROUP)]
        futures = [
            self.pool.submit(lambda g: [call(i, v) for i, v in g], group) for group in groups
        ]
        try:
            for future in futures:
                yield from future.result()
        finally:
            for future in futures:
                future.cancel()

    # -- the public interface --------------------------------------------------------------

    def put(self, digest: str, data: bytes | memoryview, *, checked: bool = False) -> int:
        """Store ``data`` under ``digest`` (it must be its SHA-256, else IntegrityError);
        idempotent; returns the stored (encrypted) size. ``checked``: the caller has just
        computed the SHA-256 of these very bytes itself, so it is not computed again."""
        check_digest(digest)
        view = memoryview(data).cast("B")
        hashing: Future[str] = (
            _done(digest.removeprefix("sha256:"))
            if checked
            else self.pool.submit(lambda: hashlib.sha256(view).hexdigest())
        )
        stored = self.backend.size(object_key(digest))
        if stored is not None:
            self._check_hash(digest, hashing.result())
            return stored
        header = new_header(len(view))
        data_key = AESGCM.generate_key(bit_length=256)
        cipher = SegmentCipher(data_key, digest, header)
        segments = [(index, view[start:end]) for index, start, end in cipher.spans()]
        record = self.keyring.wrap(data_key, binding(digest, header))
        self.backend.put(key_record_key(digest, header), [record.encode()])
        try:
            # Written as the pool encrypts; the temporary file becomes the object only once
            # every segment is written and the digest checked.
            self.backend.put(
                object_key(digest),
                _then_check(
                    [header.raw],
                    self._stream(segments, cipher, encrypt=True),
                    lambda: self._check_hash(digest, hashing.result()),
                ),
            )
        except IntegrityError:
            self.backend.delete(key_record_key(digest, header))
            raise
        return header.stored_size

    @staticmethod
    def _check_hash(digest: str, actual: str) -> None:
        if "sha256:" + actual != digest:
            raise IntegrityError(f"the bytes sent as {digest} have another SHA-256")

    def get(self, digest: str) -> bytes:
        """The plaintext, authenticated and checked against its digest."""
        raw = self.backend.get(object_key(digest))
        return self.decrypt(digest, raw)

    def decrypt(self, digest: str, raw: bytes, record: KeyRecord | None = None) -> bytes:
        """The plaintext of an object's stored bytes (``record``: its key record, when it
        is not (yet) in this store), fully verified."""
        header = Header.parse(raw)
        if len(raw) != header.stored_size:
            raise IntegrityError(f"object {digest} is truncated or extended")
        if record is None:
            data_key = self._data_key(digest, header)
        else:
            data_key = self.keyring.unwrap(record, binding(digest, header))
        cipher = SegmentCipher(data_key, digest, header)
        view = memoryview(raw)
        items = []
        for index, _, _ in cipher.spans():
            offset, length = header.segment_span(index)
            items.append((index, view[offset : offset + length]))
        # Hashed here as the pool decrypts the segments ahead: the two overlap.
        hasher = hashlib.sha256()
        pieces = []
        for piece in self._stream(items, cipher, encrypt=False):
            hasher.update(piece)
            pieces.append(piece)
        self._check_hash(digest, hasher.hexdigest())
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def get_range(self, digest: str, offset: int, length: int) -> bytes:
        """``length`` plaintext bytes from ``offset``; only the segments the range covers
        are read, and each is authenticated."""
        header = self.header(digest)
        if offset < 0 or length < 0 or offset + length > header.size:
            raise InvalidInputError(
                f"range {offset}+{length} is outside object {digest} ({header.size} bytes)",
                errors=[FieldError("offset", "outside the object")],
            )
        if length == 0:
            return b""
        first = offset // header.segment_size
        last = (offset + length - 1) // header.segment_size
        start, _ = header.segment_span(first)
        end_at, end_len = header.segment_span(last)
        raw = self.backend.get_range(object_key(digest), start, end_at + end_len - start)
        view = memoryview(raw)
        cipher = SegmentCipher(self._data_key(digest, header), digest, header)
        items = []
        for index in range(first, last + 1):
            at, size = header.segment_span(index)
            items.append((index, view[at - start : at - start + size]))
        plain = b"".join(self._map(items, cipher, encrypt=False))
        skip = offset - first * header.segment_size
        return plain[skip : skip + length]

    def exists(self, digest: str) -> bool:
        return self.backend.size(object_key(digest)) is not None

    def missing(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` are not stored."""
        wanted = sorted(set(digests))
        for digest in wanted:
            check_digest(digest)
        if len(wanted) < 64:
            return {d for d in wanted if not self.exists(d)}
        present = self.pool.map(self.exists, wanted)
        return {d for d, here in zip(wanted, present, strict=True) if not here}

    def verify(self, digest: str) -> None:
        """Read the whole object and check it; IntegrityError or NotFoundError."""
        self.get(digest)

    def delete(self, digest: str) -> None:
        """Remove an object and its key records (absent: nothing to do)."""
        self.backend.delete(object_key(digest))
        for key in list(self.backend.list_keys(key_record_prefix(digest))):
            self.backend.delete(key)
        with self._lock:
            for cached in [c for c in self._keys if c[0] == digest]:
                del self._keys[cached]

    def kek_id(self, digest: str) -> str:
        """The id of the KEK that wraps the object's data key."""
        return self.key_record(digest, self.header(digest)).kek_id

    def rewrap(self, digest: str) -> str:
        """Re-wrap the object's data key with the current KEK (the data is not touched);
        returns the KEK id now wrapping it."""
        header = self.header(digest)
        record = self.key_record(digest, header)
        if record.kek_id == self.keyring.current_id:
            return record.kek_id
        bound = binding(digest, header)
        fresh = self.keyring.wrap(self.keyring.unwrap(record, bound), bound)
        self.backend.put(key_record_key(digest, header), [fresh.encode()])
        return fresh.kek_id

    def digests(self) -> Iterator[str]:
        """Every stored object's digest."""
        for key in self.backend.list_keys("objects/"):
            name = key.rsplit("/", 1)[-1]
            if len(name) == 64:
                yield "sha256:" + name


def _done(value: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(value)
    return future


def _then_check(
    head: list[bytes], body: Iterator[bytes], check: Callable[[], None]
) -> Iterator[bytes]:
    """``head`` then ``body``, then ``check()`` (which raises to abandon the write)."""
    yield from head
    yield from body
    check()


def open_store(settings: Settings) -> ObjectStore:
    """The local store of this installation (``settings.resolved_data_dir``)."""
    return ObjectStore(
        LocalBackend(settings.resolved_data_dir),
        Keyring.from_settings(settings),
        workers=settings.data_hash_workers,
    )
