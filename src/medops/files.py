"""Files and folders medops creates: owner-only, whatever the umask and wherever the path.

Everything medops writes may hold patient data or secrets (the database and its WAL, blobs,
keys, saved credentials, audit exports, checkpoint copies, reports), so each file is created
0600 (blobs 0400: they never change) and each folder medops creates 0700. Modes are set
explicitly after creation, so a permissive umask (even 000) widens nothing and a strict one
(say 0277) does not leave a file its owner cannot write; the process umask itself is left
alone, as a library embedded in another program should.

Existing files and folders keep their modes: a parent folder such as ``/srv`` is not medops's
to change, and files created by an earlier release are tightened by the operator
(docs/security.md says how).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Final

FILE_MODE: Final = 0o600
BLOB_MODE: Final = 0o400
FOLDER_MODE: Final = 0o700


def private_folder(path: Path) -> Path:
    """Create ``path`` and its missing parents, each 0700; folders that exist are left as
    they are. Returns ``path``."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # made at the same moment by another thread or process
        folder.chmod(FOLDER_MODE)  # mkdir's mode passes through the umask
    return path


def create_private(path: Path, *, mode: int = FILE_MODE) -> int:
    """Create the file ``path`` (it must not exist) with ``mode`` exactly, its folder made
    with ``private_folder``; returns a descriptor open for writing."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``path`` whole and atomically (a temporary file, fsynced, renamed over it),
    mode 0600: a reader sees the old content or the new, and never a wider mode."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = create_private(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_output(path: Path, data: bytes | str) -> None:
    """Write a file the user named (an export, a report, a card): created 0600 when new (its
    missing folders 0700); an existing file, or a device such as ``/dev/stdout``, is written
    in place and keeps the mode its owner gave it."""
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd = create_private(path)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)


def create_sqlite_file(path: Path) -> None:
    """Create an empty SQLite database file 0600 when none exists. SQLite creates the
    ``-wal`` and ``-shm`` files with the mode of the database file, so they are 0600 too."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):  # another process made it first: SQLite opens it
        os.close(create_private(path))


def open_output(path: Path) -> BinaryIO:
    """Open a file the user named for writing as a stream: created 0600 when new (its
    missing folders 0700); an existing file, or a device, is truncated in place and keeps
    its mode (as ``write_output``)."""
    try:
        fd = create_private(path)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    return os.fdopen(fd, "wb")
