"""Find the files of a dataset on the machine that holds them.

``scan(paths)`` walks each path given: a folder contributes its files under their path
relative to the folder, a file contributes itself under its name. It skips nothing silently:
a symbolic link to a file is followed (the manifest records the content, not the link), a link
that points back into a folder being walked (a loop) is refused, and so is anything that is
neither a file nor a folder (sockets, pipes, devices) or a path that cannot be read. Two
inputs that give the same manifest path are refused with both sources named.

Each file's ``stat`` (size, mtime, ctime, inode) is kept: the stat cache uses it to skip
reading files that did not change, and the packer uses the size to lay out packs.
``os.scandir`` gives the entry type without an extra system call; one ``stat`` per file remains.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from medops.datasets.identity import normal_path
from medops.errors import FieldError, InvalidInputError

__all__ = ["LocalFile", "scan"]


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file found on disk: its manifest path, where it is, and its ``stat`` at scan time."""

    path: str
    abspath: Path
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @classmethod
    def from_stat(cls, path: str, abspath: Path, info: os.stat_result) -> LocalFile:
        """A ``LocalFile`` from an ``os.stat`` result."""
        return cls(
            path=path,
            abspath=abspath,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            inode=info.st_ino,
            ctime_ns=info.st_ctime_ns,
        )


def scan(paths: Sequence[Path]) -> list[LocalFile]:
    """Every file under ``paths``, sorted by manifest path; ``InvalidInputError`` on a
    missing path, a special file, a symlink loop or two files with the same manifest path."""
    if not paths:
        _refuse("give at least one file or folder")
    found: dict[str, LocalFile] = {}
    for given in paths:
        top = Path(os.path.abspath(given))  # noqa: PTH100 - resolve() would follow a link
        try:
            info = top.stat()
        except FileNotFoundError:
            _refuse(f"{given} does not exist")
        except OSError as exc:
            _refuse(f"{given} cannot be read: {exc.strerror}")
        if stat.S_ISDIR(info.st_mode):
            files = _walk(top, info)
        elif stat.S_ISREG(info.st_mode):
            files = [LocalFile.from_stat(_manifest_path(top.name, top), top, info)]
        else:
            _refuse(f"{given} is not a regular file or a folder")
        for item in files:
            before = found.get(item.path)
            if before is not None:
                _refuse(
                    f"{before.abspath} and {item.abspath} would both be {item.path!r} in the "
                    "dataset; add them under different folders"
                )
            found[item.path] = item
    return [found[key] for key in sorted(found)]


def _walk(top: Path, top_info: os.stat_result) -> list[LocalFile]:
    files: list[LocalFile] = []
    # A depth-first walk; each pending folder carries the (device, inode) of its ancestors,
    # so a link that leads back to one of them is a loop.
    pending: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (str(top), "", frozenset({(top_info.st_dev, top_info.st_ino)}))
    ]
    while pending:
        folder, prefix, ancestors = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            _refuse(f"{folder} cannot be read: {exc.strerror}")
        for entry in entries:
            name = entry.name
            # A name from the folder has no "/" and is never "." or ".."; only non-ASCII
            # (NFC) and backslashes need identity.normal_path (much of a scan's time if all do).
            if not name.isascii() or "\\" in name:
                name = _manifest_path(name, Path(entry.path))
            relative = prefix + name
            try:
                info = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                _refuse(f"{entry.path} is a broken symbolic link")
            except OSError as exc:
                _refuse(f"{entry.path} cannot be read: {exc.strerror}")
            if stat.S_ISREG(info.st_mode):
                files.append(
                    LocalFile(
                        relative,
                        Path(entry.path),
                        info.st_size,
                        info.st_mtime_ns,
                        info.st_ino,
                        info.st_ctime_ns,
                    )
                )
            elif stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    _refuse(f"{entry.path} links back to a folder that contains it (a loop)")
                pending.append((entry.path, relative + "/", ancestors | {key}))
            else:
                _refuse(f"{entry.path} is not a regular file or a folder")
    return files


def _manifest_path(relative: str, abspath: Path) -> str:
    try:
        return normal_path(relative)
    except InvalidInputError:
        _refuse(f"{abspath} has a name that cannot be a dataset path")


def _refuse(reason: str) -> NoReturn:
    raise InvalidInputError(reason, errors=[FieldError("paths", reason)])
