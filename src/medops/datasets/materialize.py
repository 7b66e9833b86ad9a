"""Write a version's files into a folder: the client side of ``medops data checkout``.

Each object is fetched once: the files that live in one pack are written while that pack is in
memory (on ``workers`` threads), and an object still needed by a later file stays cached only
until its last use; the next pack is fetched on a second thread while the current one is
written. Every file's bytes are checked against the manifest's SHA-256 before they are
written, and every file is written atomically (a temporary file in the same folder, then a
rename), so a killed checkout leaves whole files or none, never a half-written one. Files are
not fsynced one by one (a checkout can be run again; it skips what is already right).

Files already present with the right bytes are left alone. A different file, a folder or a
link where a file should go is a conflict: nothing is written, and the error names the paths,
unless ``force=True``. Paths are checked to stay inside ``dest`` (no ``..``, no folder that is
a link leading out). New files are the owner's only (0600; folders 0700): they may hold
patient data.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from medops.datasets.hashing import default_workers, hash_files, sha256_digest
from medops.datasets.identity import normal_path
from medops.datasets.scan import LocalFile
from medops.datasets.schemas import FileEntry, StoredFile
from medops.errors import ConflictError, IntegrityError, InvalidInputError
from medops.files import private_folder

__all__ = ["MaterializeSummary", "materialize"]

FILE_MODE = 0o600
_WRITE_BATCH = 64

Fetch = Callable[[str], bytes]
Progress = Callable[[int, int], None]


class MaterializeSummary(BaseModel):
    """What a checkout did: files in the version, written, already right, bytes and objects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: int
    written: int
    unchanged: int
    bytes_written: int
    objects_fetched: int
    bytes_fetched: int
    seconds: float


def materialize(
    files: Sequence[FileEntry],
    stored: Mapping[str, StoredFile],
    fetch: Fetch,
    dest: Path,
    *,
    workers: int = 0,
    progress: Progress | None = None,
    force: bool = False,
) -> MaterializeSummary:
    """Write ``files`` under ``dest`` from objects read with ``fetch(object_digest)``;
    ``stored`` gives each file digest's parts. ``progress(bytes_done, bytes_total)``."""
    started = time.perf_counter()
    threads = default_workers(workers)
    private_folder(dest)
    root = dest.resolve()
    targets = _targets(files, stored, root)
    total = sum(entry.size for entry in files)
    unchanged = _existing(files, targets, force=force, workers=threads)
    todo: dict[str, list[Path]] = defaultdict(list)
    for entry, target in zip(files, targets, strict=True):
        if target not in unchanged:
            todo[entry.digest].append(target)
    _make_folders(root, {target.parent for paths in todo.values() for target in paths})
    writer = _Writer(stored, fetch, todo, threads, progress, total)
    writer.done = sum(entry.size for entry, t in zip(files, targets, strict=True) if t in unchanged)
    writer.run()
    if progress is not None:
        progress(total, total)
    return MaterializeSummary(
        files=len(files),
        written=sum(len(paths) for paths in todo.values()),
        unchanged=len(unchanged),
        bytes_written=writer.written_bytes,
        objects_fetched=writer.fetched,
        bytes_fetched=writer.fetched_bytes,
        seconds=round(time.perf_counter() - started, 6),
    )


def _targets(
    files: Sequence[FileEntry], stored: Mapping[str, StoredFile], root: Path
) -> list[Path]:
    targets: list[Path] = []
    seen: set[str] = set()
    for entry in files:
        if normal_path(entry.path) != entry.path or entry.path in seen:
            msg = f"the manifest path {entry.path!r} is not a unique relative path"
            raise InvalidInputError(msg)
        seen.add(entry.path)
        where = stored.get(entry.digest)
        if (
            where is None
            or where.size != entry.size
            or sum(p.length for p in where.parts) != entry.size
        ):
            msg = f"no stored parts for {entry.path!r} ({entry.digest})"
            raise IntegrityError(msg)
        targets.append(root / entry.path)
    return targets


def _existing(
    files: Sequence[FileEntry], targets: list[Path], *, force: bool, workers: int
) -> set[Path]:
    """Targets whose present file already has the right bytes; ConflictError for the others
    that are present (unless ``force``)."""
    conflicts: list[str] = []
    candidates: list[tuple[LocalFile, FileEntry, Path]] = []
    for entry, target in zip(files, targets, strict=True):
        try:
            info = target.lstat()
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            conflicts.append(entry.path)
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size == entry.size:
            candidates.append((LocalFile.from_stat(entry.path, target, info), entry, target))
        elif not (force and (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode))):
            conflicts.append(entry.path)
    hashed = hash_files([item for item, _, _ in candidates], workers=workers)
    right: set[Path] = set()
    for (_, entry, target), seen in zip(candidates, hashed, strict=True):
        if seen.digest == entry.digest:
            right.add(target)
        elif not force:
            conflicts.append(entry.path)
    if conflicts:
        shown = ", ".join(sorted(conflicts)[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        msg = (
            f"{len(conflicts)} path(s) in the destination hold something else: {shown}{more}; "
            "choose an empty folder or pass --force to replace them"
        )
        raise ConflictError(msg)
    return right


def _make_folders(root: Path, folders: set[Path]) -> None:
    for folder in sorted(folders):
        try:
            private_folder(folder)
        except (FileExistsError, NotADirectoryError):
            msg = f"{folder.relative_to(root)} exists in the destination and is not a folder"
            raise ConflictError(msg) from None
        real = Path(os.path.realpath(folder))
        if real != root and root not in real.parents:
            msg = f"{folder.relative_to(root)} leads outside the destination"
            raise ConflictError(msg)


class _Writer:
    """Fetches each object once and writes every file that lives in it."""

    def __init__(
        self,
        stored: Mapping[str, StoredFile],
        fetch: Fetch,
        todo: Mapping[str, list[Path]],
        workers: int,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.stored = stored
        self.fetch = fetch
        self.todo = todo
        self.workers = workers
        self.progress = progress
        self.total = total
        self.done = 0
        self.written_bytes = 0
        self.fetched = 0
        self.fetched_bytes = 0
        self.cache: dict[str, bytes] = {}
        self.uses: dict[str, int] = defaultdict(int)

    def run(self) -> None:
        by_object: dict[str, list[str]] = defaultdict(list)
        spanning: list[str] = []
        empty: list[str] = []
        for digest in self.todo:
            parts = self.stored[digest].parts
            for part in parts:
                self.uses[part.object] += 1
            if not parts:
                empty.append(digest)
            elif len(parts) == 1:
                by_object[parts[0].object].append(digest)
            else:
                spanning.append(digest)
        for digest in empty:
            self._write_whole(digest, memoryview(b""))
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as prefetch:
            order = list(by_object)
            ahead: Future[bytes] | None = None
            for number, obj in enumerate(order):
                data = self._take(obj, ahead)
                ahead = None
                if number + 1 < len(order) and order[number + 1] not in self.cache:
                    ahead = prefetch.submit(self._fetch, order[number + 1])
                view = memoryview(data)
                digests = by_object[obj]
                batches = [
                    digests[i : i + _WRITE_BATCH] for i in range(0, len(digests), _WRITE_BATCH)
                ]
                for written in pool.map(self._write_batch, batches, itertools.repeat(view)):
                    self._advance(written)
                self._release(obj, len(digests))
            for digest in spanning:
                self._write_spanning(digest)

    def _fetch(self, obj: str) -> bytes:
        data = self.fetch(obj)
        self.fetched += 1
        self.fetched_bytes += len(data)
        return data

    def _take(self, obj: str, ahead: Future[bytes] | None) -> bytes:
        if obj in self.cache:
            return self.cache[obj]
        data = ahead.result() if ahead is not None else self._fetch(obj)
        self.cache[obj] = data
        return data

    def _release(self, obj: str, count: int) -> None:
        self.uses[obj] -= count
        if self.uses[obj] <= 0:
            self.cache.pop(obj, None)

    def _advance(self, count: int) -> None:
        self.done += count
        self.written_bytes += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _write_batch(self, digests: list[str], view: memoryview) -> int:
        written = 0
        for digest in digests:
            part = self.stored[digest].parts[0]
            if part.offset + part.length > len(view):
                msg = f"object {part.object} is shorter than the manifest says"
                raise IntegrityError(msg)
            written += self._write_whole(digest, view[part.offset : part.offset + part.length])
        return written

    def _write_whole(self, digest: str, content: memoryview) -> int:
        if sha256_digest(content) != digest:
            msg = f"the bytes fetched for {digest} do not match it"
            raise IntegrityError(msg)
        for target in self.todo[digest]:
            _write_atomic(target, [content])
        return len(content) * len(self.todo[digest])

    def _write_spanning(self, digest: str) -> None:
        targets = self.todo[digest]
        first = targets[0]
        hasher = hashlib.sha256()
        temp = _temp_name(first)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            try:
                for part in self.stored[digest].parts:
                    data = self._take(part.object, None)
                    piece = memoryview(data)[part.offset : part.offset + part.length]
                    if len(piece) != part.length:
                        msg = f"object {part.object} is shorter than the manifest says"
                        raise IntegrityError(msg)
                    hasher.update(piece)
                    _write_all(fd, piece)
                    self._release(part.object, 1)
            finally:
                os.close(fd)
            if "sha256:" + hasher.hexdigest() != digest:
                msg = f"the bytes fetched for {digest} do not match it"
                raise IntegrityError(msg)
            for target in targets[1:]:
                _copy_atomic(temp, target)
            Path(temp).replace(first)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        size = self.stored[digest].size
        self._advance(size * len(targets))


def _temp_name(target: Path) -> str:
    return str(target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.medops-tmp"))


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        count = os.write(fd, data)
        data = data[count:]


def _write_atomic(target: Path, pieces: list[memoryview]) -> None:
    temp = _temp_name(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            for piece in pieces:
                _write_all(fd, piece)
        finally:
            os.close(fd)
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _copy_atomic(source: str, target: Path) -> None:
    with Path(source).open("rb") as handle:
        data = handle.read()
    _write_atomic(target, [memoryview(data)])
