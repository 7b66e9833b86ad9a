"""A dataset version's identity: the Merkle root of its manifest. Pure.

Each file is a leaf: its path (POSIX, relative, NFC), size and SHA-256, in canonical JSON;
leaves are sorted by path and combined as in RFC 6962 (``medops.audit.merkle``). Where the
bytes are stored (packs, chunks, offsets) is not part of the identity, so repacking or moving
a version to another store never changes it; any change of a path, a size or a byte does.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from medops.audit import merkle
from medops.core.canonical import canonical_bytes
from medops.datasets.schemas import FileEntry
from medops.errors import FieldError, InvalidInputError

ROOT_PREFIX = "sha256:"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def leaf(entry: FileEntry) -> bytes:
    """The leaf bytes of one file."""
    return canonical_bytes({"path": entry.path, "size": entry.size, "digest": entry.digest})


def merkle_root(files: Sequence[FileEntry]) -> str:
    """The version's identity (``sha256:<hex>``); ``files`` must be sorted by path."""
    return ROOT_PREFIX + merkle.root([leaf(entry) for entry in files]).hex()


def sorted_files(files: Iterable[FileEntry]) -> list[FileEntry]:
    """Files sorted by path, refusing the same path twice."""
    ordered = sorted(files, key=lambda entry: entry.path)
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            reason = f"the path {after.path!r} is listed twice"
            raise InvalidInputError(reason, errors=[FieldError("files", reason)])
    return ordered


def normal_path(path: str) -> str:
    """A manifest path: relative, POSIX, NFC, no ``.`` or ``..`` parts, no empty part."""
    text = unicodedata.normalize("NFC", path.replace("\\", "/"))
    parts = PurePosixPath(text).parts
    if (
        not text
        or text.startswith("/")
        or any(part in ("", ".", "..") for part in text.split("/"))
        or "\x00" in text
        or not parts
    ):
        reason = f"{path!r} is not a relative path inside the dataset"
        raise InvalidInputError(reason, errors=[FieldError("path", reason)])
    return "/".join(parts)


def check_name(name: str) -> str:
    """A dataset name: lower-case letters, digits, '.', '_' and '-', at most 128."""
    if not _NAME_RE.match(name):
        reason = "must be 1-128 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        raise InvalidInputError(f"dataset name {reason}", errors=[FieldError("name", reason)])
    return name
