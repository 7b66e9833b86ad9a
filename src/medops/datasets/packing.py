"""Turn a dataset's files into the objects the store keeps: packs of small files, chunks of
large ones.

Files smaller than ``PACK_THRESHOLD`` (4 MiB) go into packs of up to ``PACK_TARGET`` (64 MiB)
of payload, in the order given (sorted by path after ``scan``, so a folder's files sit
together); larger files are cut into ``CHUNK_SIZE`` (64 MiB) chunks, each its own object. So
100,000 DICOM slices become about a hundred objects to encrypt, upload and list, not 100,000.
A digest that occurs several times is stored once; an empty file needs no object at all.

Memory is bounded: objects are built by one producer thread while the caller uploads the
previous one, with at most one finished object waiting and one being digested while the next
one is read, so about four objects are in memory at any time whatever the dataset's size.
A pack's files are read on ``workers`` threads.

Every file is hashed again as it is read and compared with the digest from ``hash_files``: a
file changed since it was hashed stops the run with a message naming it (the objects already
yielded are whole and content-addressed, so they do no harm; the version is never committed).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Literal

from medops.datasets.hashing import default_workers, sha256_digest
from medops.datasets.packformat import pack_layout
from medops.datasets.scan import LocalFile
from medops.datasets.schemas import (
    CHUNK_SIZE,
    PACK_TARGET,
    PACK_THRESHOLD,
    FileEntry,
    Part,
    StoredFile,
)
from medops.errors import InvalidInputError

__all__ = ["PackedObject", "Packer"]

_READ_BATCH = 64


@dataclass(frozen=True, slots=True)
class PackedObject:
    """An object ready to store: its address (SHA-256 of ``data``), kind, bytes and size."""

    digest: str
    kind: Literal["pack", "chunk"]
    data: bytes
    size: int


class _Done:
    pass


_DONE = _Done()


class Packer:
    """Builds packs and chunks from hashed files; ``stored`` maps each file digest to its parts
    once the iteration has finished."""

    def __init__(
        self,
        *,
        workers: int = 0,
        pack_threshold: int = PACK_THRESHOLD,
        pack_target: int = PACK_TARGET,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if not 0 < pack_threshold <= pack_target or chunk_size <= 0:
            msg = "need 0 < pack_threshold <= pack_target and chunk_size > 0"
            raise ValueError(msg)
        self.workers = default_workers(workers)
        self.pack_threshold = pack_threshold
        self.pack_target = pack_target
        self.chunk_size = chunk_size
        self.stored: dict[str, StoredFile] = {}

    def objects(
        self, files: Sequence[tuple[LocalFile, FileEntry]]
    ) -> Generator[PackedObject, None, None]:
        """The objects holding ``files``' contents, built while the caller consumes them."""
        unique: dict[str, tuple[LocalFile, FileEntry]] = {}
        for local, entry in files:
            if local.size != entry.size:
                msg = f"{local.abspath}: {local.size} bytes on disk but {entry.size} hashed"
                raise InvalidInputError(msg)
            unique.setdefault(entry.digest, (local, entry))
        small = [pair for pair in unique.values() if pair[1].size < self.pack_threshold]
        large = [pair for pair in unique.values() if pair[1].size >= self.pack_threshold]
        for _, entry in small:
            if entry.size == 0:
                self.stored[entry.digest] = StoredFile(digest=entry.digest, size=0, parts=())
        small = [pair for pair in small if pair[1].size > 0]
        waiting: queue.Queue[PackedObject | BaseException | _Done] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def produce() -> None:
            try:
                # Reading pack k+1 (pool) overlaps joining and digesting pack k (finisher).
                with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as finisher:
                    pending: Future[PackedObject] | None = None
                    for group in self._groups(small):
                        if stop.is_set():
                            return
                        contents = self._read(pool, group)
                        if pending is not None:
                            _put(waiting, stop, pending.result())
                        pending = finisher.submit(self._pack, group, contents)
                    if pending is not None:
                        _put(waiting, stop, pending.result())
                for pair in large:
                    for item in self._chunks(*pair):
                        if stop.is_set():
                            return
                        _put(waiting, stop, item)
                _put(waiting, stop, _DONE)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                _put(waiting, stop, exc)

        producer = threading.Thread(target=produce, name="medops-packer", daemon=True)
        producer.start()
        try:
            while True:
                item = waiting.get()
                if isinstance(item, _Done):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    waiting.get_nowait()
                except queue.Empty:
                    producer.join(0.05)

    def _groups(
        self, small: list[tuple[LocalFile, FileEntry]]
    ) -> Iterator[list[tuple[LocalFile, FileEntry]]]:
        group: list[tuple[LocalFile, FileEntry]] = []
        size = 0
        for pair in small:
            if group and size + pair[1].size > self.pack_target:
                yield group
                group, size = [], 0
            group.append(pair)
            size += pair[1].size
        if group:
            yield group

    @staticmethod
    def _read(pool: ThreadPoolExecutor, group: list[tuple[LocalFile, FileEntry]]) -> list[bytes]:
        batches = [group[i : i + _READ_BATCH] for i in range(0, len(group), _READ_BATCH)]
        contents: list[bytes] = []
        for chunk in pool.map(_read_batch, batches):
            contents.extend(chunk)
        return contents

    def _pack(
        self, group: list[tuple[LocalFile, FileEntry]], contents: list[bytes]
    ) -> PackedObject:
        header, entries = pack_layout([(entry.digest, entry.size) for _, entry in group])
        data = b"".join([header, *contents])
        digest = sha256_digest(data)
        # Values built here are valid by construction: skip pydantic's checks (20,000 files
        # would spend more time validating than hashing).
        for (_, entry), placed in zip(group, entries, strict=True):
            part = Part.model_construct(object=digest, offset=placed.offset, length=placed.length)
            self.stored[entry.digest] = StoredFile.model_construct(
                digest=entry.digest, size=entry.size, parts=(part,)
            )
        return PackedObject(digest=digest, kind="pack", data=data, size=len(data))

    def _chunks(self, local: LocalFile, entry: FileEntry) -> Iterator[PackedObject]:
        hasher = hashlib.sha256()
        parts: list[Part] = []
        try:
            handle = local.abspath.open("rb", buffering=0)
        except OSError:
            raise _changed(local) from None
        with handle:
            while data := _read_exact(handle, self.chunk_size):
                hasher.update(data)
                digest = sha256_digest(data)
                parts.append(Part(object=digest, offset=0, length=len(data)))
                if sum(part.length for part in parts) > entry.size:
                    break
                yield PackedObject(digest=digest, kind="chunk", data=data, size=len(data))
        if sum(part.length for part in parts) != entry.size or (
            "sha256:" + hasher.hexdigest() != entry.digest
        ):
            raise _changed(local)
        self.stored[entry.digest] = StoredFile(
            digest=entry.digest, size=entry.size, parts=tuple(parts)
        )


def _put(
    waiting: queue.Queue[PackedObject | BaseException | _Done],
    stop: threading.Event,
    item: PackedObject | BaseException | _Done,
) -> None:
    while not stop.is_set():
        try:
            waiting.put(item, timeout=0.05)
        except queue.Full:
            continue
        return


def _read_batch(batch: list[tuple[LocalFile, FileEntry]]) -> list[bytes]:
    contents: list[bytes] = []
    for local, entry in batch:
        try:
            fd = os.open(local.abspath, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise _changed(local) from None
        try:
            data = os.read(fd, entry.size + 1)
        finally:
            os.close(fd)
        if len(data) != entry.size or sha256_digest(data) != entry.digest:
            raise _changed(local)
        contents.append(data)
    return contents


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the file."""
    first = handle.read(size)
    if len(first) in (0, size):
        return first
    pieces = [first]
    left = size - len(first)
    while left > 0 and (piece := handle.read(left)):
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _changed(local: LocalFile) -> InvalidInputError:
    return InvalidInputError(f"{local.abspath} changed since it was hashed; add it again")
