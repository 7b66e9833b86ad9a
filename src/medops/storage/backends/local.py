"""A backend in a folder: the local dataset store, or a folder remote (a mounted share).

A write goes to a temporary file in ``<root>/.tmp``, is fsynced, renamed into place, and the
folder fsynced: a crash leaves the whole value or nothing. A multipart upload keeps its parts
as files in ``<root>/.uploads/<id>/``; completing joins them into a temporary file and renames
it, so a half-done upload is never visible under its key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from medops.errors import InvalidInputError, NotFoundError
from medops.files import private_folder
from medops.storage.backends.base import Buffer

_UPLOADS = ".uploads"
_TMP = ".tmp"


class LocalBackend:
    """Values as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise InvalidInputError(f"not a storage key: {key!r}")
        return self.root.joinpath(*parts)

    def _write(self, target: Path, chunks: Iterable[Buffer]) -> None:
        tmp_dir = private_folder(self.root / _TMP)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        written = handle.write(view)
                        view = view[written:]
                os.fsync(handle.fileno())
            private_folder(target.parent)
            tmp.replace(target)
            _fsync_dir(target.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put(self, key: str, chunks: Iterable[Buffer]) -> None:
        self._write(self._path(key), chunks)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not stored in {self.url}") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not stored in {self.url}") from None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        folder, _, _ = prefix.rpartition("/")
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix) and not name.startswith("."):
                    yield key

    # -- multipart -------------------------------------------------------------------------

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise InvalidInputError(f"not an upload id: {upload_id!r}")
        tag = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.root / _UPLOADS / f"{tag}-{upload_id}"

    def start_multipart(self, key: str) -> str:
        self._path(key)
        upload_id = secrets.token_hex(16)
        private_folder(self._upload_dir(key, upload_id))
        return upload_id

    def put_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        folder = self._upload_dir(key, upload_id)
        if not folder.is_dir():
            raise NotFoundError(f"upload {upload_id} of {key} is gone")
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        fd, name = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(name).replace(folder / f"{number:05d}-{etag}")
        return etag

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str]] | None:
        folder = self._upload_dir(key, upload_id)
        if not folder.is_dir():
            return None
        parts = []
        for path in sorted(folder.iterdir()):
            if not path.name.startswith("."):
                number, _, etag = path.name.partition("-")
                parts.append((int(number), etag))
        return parts

    def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        folder = self._upload_dir(key, upload_id)
        files = []
        for number, etag in sorted(parts):
            path = folder / f"{number:05d}-{etag}"
            if not path.is_file():
                raise NotFoundError(f"part {number} of upload {upload_id} is missing")
            files.append(path)
        self._write(self._path(key), [p.read_bytes() for p in files])
        shutil.rmtree(folder, ignore_errors=True)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(key, upload_id), ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
