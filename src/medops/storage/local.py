"""The blob store on a local filesystem (a laptop, or a volume mounted in a pod).

Layout: ``<root>/sha256/ab/cdef...`` (first two hex digits fan out). Writes go to a temporary
file in ``<root>/tmp``, are fsynced, then renamed into place, and the folder is fsynced: a
crash leaves either the whole object or nothing. Reads re-hash the content.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from medops.errors import IntegrityError, NotFoundError
from medops.files import BLOB_MODE, private_folder
from medops.storage.base import CHUNK_SIZE, DIGEST_PREFIX, check_digest


class LocalBlobStore:
    """Content-addressed storage in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def _path(self, digest: str) -> Path:
        hexdigest = check_digest(digest)
        return self.root / "sha256" / hexdigest[:2] / hexdigest[2:]

    def put(self, data: bytes) -> str:
        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: BinaryIO) -> str:
        private_folder(self._tmp)
        hasher = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            digest = DIGEST_PREFIX + hasher.hexdigest()
            target = self._path(digest)
            if target.exists():
                tmp_path.unlink()
                return digest
            private_folder(target.parent)
            tmp_path.chmod(BLOB_MODE)  # read-only, and the owner's only (mkstemp made it 0600)
            tmp_path.replace(target)
            _fsync_dir(target.parent)
            return digest
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        with self.open(digest) as reader:
            return reader.read()

    def open(self, digest: str) -> BinaryIO:
        path = self._path(digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not stored") from None
        return _VerifyingReader(handle, digest)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not stored") from None


class _VerifyingReader(io.RawIOBase, BinaryIO):
    """Hashes what it reads; at end of file, raises IntegrityError if the digest differs."""

    def __init__(self, handle: BinaryIO, digest: str) -> None:
        super().__init__()
        self._handle = handle
        self._digest = digest
        self._hasher = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._handle.read(len(buffer))
        if data:
            self._hasher.update(data)
            buffer[: len(data)] = data
            return len(data)
        self._verify()
        return 0

    def readall(self) -> bytes:
        chunks = []
        while chunk := self._handle.read(CHUNK_SIZE):
            self._hasher.update(chunk)
            chunks.append(chunk)
        self._verify()
        return b"".join(chunks)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def _verify(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = DIGEST_PREFIX + self._hasher.hexdigest()
        if actual != self._digest:
            raise IntegrityError(f"blob {self._digest} is corrupt: its content hashes to {actual}")

    def close(self) -> None:
        self._handle.close()
        super().close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
