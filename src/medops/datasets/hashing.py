"""SHA-256 of many files at once, across cores, skipping those the stat cache already knows.

Threads, not processes: ``hashlib`` releases the GIL while it hashes more than 2 KiB, and the
reads release it too, so N threads keep N cores busy without pickling file contents between
processes. The per-file Python work (open, read, close) holds the GIL, so files are handed out
in batches (about 8 MiB or 256 files each) to keep the scheduling cost per file small; a small
file is read with one ``os.read`` (one system call, no buffered-reader object), a large one
with ``readinto`` into one 1 MiB buffer per thread that is reused for every file. ``mmap`` was
not faster for sequential reads here and faults pages in the GIL-free hash call anyway.

A file whose size differs from the one ``scan`` saw (written meanwhile) is refused with a
clear message rather than recorded with bytes that the packer would not find again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence

from medops.datasets.scan import LocalFile
from medops.datasets.schemas import FileEntry
from medops.datasets.statcache import StatCache
from medops.errors import InvalidInputError

__all__ = ["BUFFER_SIZE", "default_workers", "hash_files", "sha256_digest"]

BUFFER_SIZE = 1024 * 1024
_BATCH_BYTES = 8 * 1024 * 1024
_BATCH_FILES = 256
_PROGRESS_EVERY_S = 0.1

Progress = Callable[[int, int], None]


def default_workers(workers: int = 0) -> int:
    """``workers``, or one per CPU core when 0."""
    return workers if workers > 0 else (os.cpu_count() or 1)


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_files(
    files: Sequence[LocalFile],
    *,
    workers: int = 0,
    cache: StatCache | None = None,
    progress: Progress | None = None,
) -> list[FileEntry]:
    """A ``FileEntry`` for each file, in input order, hashing on ``workers`` threads (0: one
    per core) the files ``cache`` does not already know; ``progress(bytes_done, bytes_total)``
    is called from this thread about ten times a second and at the end."""
    started_ns = time.time_ns()
    known = cache.lookup(files) if cache is not None else {}
    digests: list[str | None] = [known.get(item.path) for item in files]
    todo = [index for index, digest in enumerate(digests) if digest is None]
    total = sum(item.size for item in files)
    done_bytes = [total - sum(files[index].size for index in todo)]
    batches = _batches(files, todo)
    lock = threading.Lock()
    failures: list[BaseException] = []
    next_batch = iter(batches)

    def work() -> None:
        buffer = bytearray(BUFFER_SIZE)
        while not failures:
            with lock:
                batch = next(next_batch, None)
            if batch is None:
                return
            try:
                batch_bytes = 0
                for index in batch:
                    digests[index] = _hash_one(files[index], buffer)
                    batch_bytes += files[index].size
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failures.append(exc)
                return
            with lock:
                done_bytes[0] += batch_bytes

    count = min(default_workers(workers), len(batches))
    if count <= 1:
        work()
    else:
        threads = [threading.Thread(target=work, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(_PROGRESS_EVERY_S)
                if progress is not None:
                    progress(done_bytes[0], total)
    if failures:
        raise failures[0]
    if progress is not None:
        progress(total, total)
    entries = [
        FileEntry.model_construct(path=item.path, size=item.size, digest=str(digest))
        for item, digest in zip(files, digests, strict=True)
    ]
    if cache is not None and todo:
        cache.remember(((files[i], entries[i].digest) for i in todo), started_ns=started_ns)
    return entries


def _batches(files: Sequence[LocalFile], todo: list[int]) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in todo:
        current.append(index)
        size += files[index].size
        if size >= _BATCH_BYTES or len(current) >= _BATCH_FILES:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def _hash_one(item: LocalFile, buffer: bytearray) -> str:
    try:
        fd = os.open(item.abspath, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _changed(item, "was removed") from None
    except OSError as exc:
        msg = f"{item.abspath} cannot be read: {exc.strerror}"
        raise InvalidInputError(msg) from None
    try:
        if item.size <= BUFFER_SIZE:
            data = os.read(fd, item.size + 1)
            if len(data) != item.size:
                raise _changed(item, "changed size")
            return sha256_digest(data)
        hasher = hashlib.sha256()
        view = memoryview(buffer)
        seen = 0
        while count := os.readv(fd, [buffer]):
            hasher.update(view[:count])
            seen += count
            if seen > item.size:
                break
        if seen != item.size:
            raise _changed(item, "changed size")
        return "sha256:" + hasher.hexdigest()
    finally:
        os.close(fd)


def _changed(item: LocalFile, what: str) -> InvalidInputError:
    return InvalidInputError(f"{item.abspath} {what} while it was being read; add it again")
