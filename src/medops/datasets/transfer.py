"""Copying encrypted objects between the local store and a remote, as stored.

``push`` sends each object's key record and then its encrypted data (never decrypted: a
remote only ever holds ciphertext and wrapped keys). An object larger than ``part_size``
goes up as a multipart upload whose id and finished parts are kept in ``data_replicas`` as
each part is acknowledged, so a push killed at any point (SIGKILL included) resumes with the
parts still missing; a finished object is marked ``done`` and skipped next time.

``pull`` fetches the missing objects (ranged GETs of ``part_size``), and before an object
counts as stored it is fully verified with the local keyring: every segment authenticated and
the plaintext's SHA-256 equal to its address; only then are its key record and data written
into the store (each atomically, the key record first). A remote that answers tampered bytes
raises :class:`medops.errors.IntegrityError` and leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, ConfigDict, Field

from medops.clock import Clock
from medops.datasets.replicas import Replicas
from medops.db.engine import Database
from medops.errors import NotFoundError
from medops.storage.backends.base import Backend
from medops.storage.crypto import HEADER_SIZE, Header, KeyRecord
from medops.storage.objects import ObjectStore, key_record_key, object_key

PART_SIZE = 16 * 1024 * 1024  # S3 needs at least 5 MiB for every part but the last
CONCURRENCY = 4  # objects in flight at once

Progress = Callable[[int, int], None]


class TransferSummary(BaseModel):
    """What a push or a pull did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objects: int = Field(description="Objects copied.")
    bytes: int = Field(description="Encrypted bytes copied.")
    skipped: int = Field(description="Objects already where they had to go.")
    seconds: float


class _Tally:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.objects = 0
        self.bytes = 0
        self.skipped = 0
        self._progress = progress
        self._lock = threading.Lock()

    def advance(self, size: int) -> None:
        with self._lock:
            self.done += size
            done = self.done
        if self._progress is not None:
            self._progress(done, self.total)

    def copied(self, size: int) -> None:
        with self._lock:
            self.objects += 1
            self.bytes += size

    def skip(self) -> None:
        with self._lock:
            self.skipped += 1


def _run(work: Callable[[str], None], digests: list[str]) -> None:
    if len(digests) <= 1:
        for digest in digests:
            work(digest)
        return
    with ThreadPoolExecutor(
        min(CONCURRENCY, len(digests)), thread_name_prefix="medops-xfer"
    ) as pool:
        for future in [pool.submit(work, d) for d in digests]:
            future.result()


def push(
    database: Database,
    store: ObjectStore,
    remote: Backend,
    remote_name: str,
    digests: Sequence[str],
    *,
    progress: Progress | None = None,
    part_size: int = PART_SIZE,
    clock: Clock | None = None,
    resend_keys: bool = False,
) -> TransferSummary:
    """Copy the objects ``digests`` (with their key records) to ``remote``, resuming any
    upload a killed push left; ``remote_name`` keys the replica rows (the remote's URL).
    ``resend_keys``: also send again the key records of objects already there (after a KEK
    rotation, so the remote's records are wrapped by the current KEK; data is not sent)."""
    started = time.monotonic()
    replicas = Replicas(database, remote_name, clock)
    wanted = sorted(set(digests))
    done = replicas.done(wanted)
    if resend_keys:
        _run(lambda d: _send_key_record(store, remote, d), sorted(done))
    todo = [d for d in wanted if d not in done]
    headers = {d: store.header(d) for d in todo}  # NotFoundError for an object not stored here
    tally = _Tally(sum(h.stored_size for h in headers.values()), progress)
    for _ in done:
        tally.skip()

    def one(digest: str) -> None:
        header = headers[digest]
        data_key = object_key(digest)
        record_key = key_record_key(digest, header)
        record = store.backend.get(record_key)
        if remote.size(data_key) == header.stored_size and remote.size(record_key) is not None:
            replicas.finish(digest)  # already there (pushed from another machine)
            tally.skip()
            tally.advance(header.stored_size)
            return
        remote.put(record_key, [record])
        if header.stored_size <= part_size:
            remote.put(data_key, [store.backend.get(data_key)])
            tally.advance(header.stored_size)
        else:
            _multipart(store, remote, replicas, digest, header.stored_size, part_size, tally)
        replicas.finish(digest)
        tally.copied(header.stored_size)

    _run(one, todo)
    return TransferSummary(
        objects=tally.objects,
        bytes=tally.bytes,
        skipped=tally.skipped,
        seconds=round(time.monotonic() - started, 3),
    )


def _send_key_record(store: ObjectStore, remote: Backend, digest: str) -> None:
    record_key = key_record_key(digest, store.header(digest))
    remote.put(record_key, [store.backend.get(record_key)])


def _multipart(
    store: ObjectStore,
    remote: Backend,
    replicas: Replicas,
    digest: str,
    size: int,
    part_size: int,
    tally: _Tally,
) -> None:
    key = object_key(digest)
    count = -(-size // part_size)
    state = replicas.get(digest)
    parts: dict[int, str] = {}
    upload_id = state.upload_id if state is not None else None
    if upload_id is not None:
        held = remote.list_parts(key, upload_id)
        if held is None:
            upload_id = None  # expired or aborted on the remote: start again
        else:
            # Parts the remote acknowledged and the row recorded; a part sent just before a
            # kill but not recorded is sent again (same bytes, same number).
            on_remote = dict(held)
            parts = {n: e for n, e in state.parts if n in on_remote} if state else {}
    if upload_id is None:
        upload_id = remote.start_multipart(key)
        replicas.begin(digest, upload_id)
    if parts:
        tally.advance(sum(min(part_size, size - (n - 1) * part_size) for n in parts))
    for number in range(1, count + 1):
        if number in parts:
            continue
        offset = (number - 1) * part_size
        data = store.backend.get_range(key, offset, min(part_size, size - offset))
        etag = remote.put_part(key, upload_id, number, data)
        replicas.record_part(digest, upload_id, number, etag)
        parts[number] = etag
        tally.advance(len(data))
    remote.complete_multipart(key, upload_id, sorted(parts.items()))


def pull(
    database: Database,
    store: ObjectStore,
    remote: Backend,
    remote_name: str,
    digests: Sequence[str],
    *,
    progress: Progress | None = None,
    part_size: int = PART_SIZE,
    clock: Clock | None = None,
) -> TransferSummary:
    """Fetch the objects ``digests`` that the store lacks from ``remote``, verifying each
    (decrypt + digest) before it is stored. ``progress`` is called from worker threads."""
    started = time.monotonic()
    replicas = Replicas(database, remote_name, clock)
    wanted = sorted(set(digests))
    todo = sorted(store.missing(wanted))
    headers: dict[str, Header] = {}

    def read_header(digest: str) -> None:
        try:
            raw = remote.get_range(object_key(digest), 0, HEADER_SIZE)
        except NotFoundError:
            raw = b""
        if not raw:
            raise NotFoundError(f"object {digest} is not on the remote {remote.url}")
        headers[digest] = Header.parse(raw)

    _run(read_header, todo)  # one small ranged GET each, several in flight
    tally = _Tally(sum(h.stored_size for h in headers.values()), progress)
    for _ in range(len(wanted) - len(todo)):
        tally.skip()

    def one(digest: str) -> None:
        header = headers[digest]
        record_key = key_record_key(digest, header)
        try:
            record = remote.get(record_key)
        except NotFoundError:
            raise NotFoundError(f"object {digest} has no key record on {remote.url}") from None
        key = object_key(digest)
        pieces = []
        for offset in range(0, header.stored_size, part_size):
            piece = remote.get_range(key, offset, min(part_size, header.stored_size - offset))
            pieces.append(piece)
            tally.advance(len(piece))
        raw = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        store.decrypt(digest, raw, KeyRecord.decode(record))  # IntegrityError: nothing stored
        store.backend.put(record_key, [record])
        store.backend.put(key, [raw])
        replicas.finish(digest)
        tally.copied(len(raw))

    _run(one, todo)
    return TransferSummary(
        objects=tally.objects,
        bytes=tally.bytes,
        skipped=tally.skipped,
        seconds=round(time.monotonic() - started, 3),
    )
