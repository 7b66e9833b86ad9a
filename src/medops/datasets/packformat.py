"""The pack format: many small files in one object. Pure.

A pack is ``b"MDOPACK1" + u32be(len(index)) + index + payload``. ``index`` is canonical JSON
``{"files": [[file_digest, offset, length], ...]}`` and ``offset`` counts from the first byte
of the object, so a ``Part(object=pack_digest, offset, length)`` addresses a file's bytes
directly (a range read never needs the index). The payload is the files' bytes back to back,
in index order, with nothing between or after them.

Reading is strict: a pack whose magic, index length, JSON, digests, offsets or lengths do not
describe exactly the bytes that follow (gaps, overlaps, trailing bytes, a digest twice, an
index that is not canonical) raises ``IntegrityError``. ``verify_pack`` also re-hashes every
file range, which the server does for each uploaded pack.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from medops.core.canonical import canonical_bytes
from medops.errors import IntegrityError, InvalidInputError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "PackEntry",
    "encode_pack",
    "iter_pack",
    "pack_layout",
    "read_pack_index",
    "verify_pack",
]

MAGIC = b"MDOPACK1"
HEADER_SIZE = len(MAGIC) + 4  # the magic and the index length
_MAX_INDEX = 256 * 1024 * 1024
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class PackEntry(NamedTuple):
    """One file in a pack: its digest and where its bytes are, counted from the object start."""

    digest: str
    offset: int
    length: int


def pack_layout(files: Sequence[tuple[str, int]]) -> tuple[bytes, list[PackEntry]]:
    """The header (magic, index length, index) and entries for files of the given digests and
    sizes, in that order. The offsets depend on the index's own length, so the index is
    rebuilt until its length is stable (a monotone fixed point: two or three rounds)."""
    seen: set[str] = set()
    for digest, size in files:
        if not _DIGEST_RE.match(digest):
            msg = f"{digest!r} is not a sha256:<hex> digest"
            raise InvalidInputError(msg)
        if size < 0:
            msg = f"negative size for {digest}"
            raise InvalidInputError(msg)
        if digest in seen:
            msg = f"{digest} is listed twice in one pack"
            raise InvalidInputError(msg)
        seen.add(digest)
    base = HEADER_SIZE
    while True:
        entries: list[PackEntry] = []
        offset = base
        for digest, size in files:
            entries.append(PackEntry(digest, offset, size))
            offset += size
        index = canonical_bytes({"files": [list(entry) for entry in entries]})
        if HEADER_SIZE + len(index) == base:
            return MAGIC + struct.pack(">I", len(index)) + index, entries
        base = HEADER_SIZE + len(index)


def encode_pack(files: Sequence[tuple[str, bytes | memoryview]]) -> bytes:
    """A pack of ``(file_digest, bytes)`` pairs, in that order (digests are not re-checked
    here: the caller hashed them; ``verify_pack`` checks a pack it did not make)."""
    header, _ = pack_layout([(digest, len(data)) for digest, data in files])
    return b"".join([header, *(data for _, data in files)])


def read_pack_index(data: bytes | memoryview) -> list[PackEntry]:
    """The entries of a pack, checked to describe exactly its bytes; ``IntegrityError`` else."""
    view = memoryview(data)
    if len(view) < HEADER_SIZE or bytes(view[: len(MAGIC)]) != MAGIC:
        raise IntegrityError("not a medops pack (bad magic)")
    (index_length,) = struct.unpack(">I", view[len(MAGIC) : HEADER_SIZE])
    end = HEADER_SIZE + index_length
    if index_length > _MAX_INDEX or end > len(view):
        raise IntegrityError("malformed pack: the index runs past the end of the object")
    index_bytes = bytes(view[HEADER_SIZE:end])
    try:
        index = json.loads(index_bytes)
    except (UnicodeDecodeError, ValueError):
        raise IntegrityError("malformed pack: the index is not JSON") from None
    if not isinstance(index, dict) or set(index) != {"files"}:
        raise IntegrityError("malformed pack: the index is not {'files': [...]}")
    rows = index["files"]
    if not isinstance(rows, list):
        raise IntegrityError("malformed pack: 'files' is not a list")
    entries: list[PackEntry] = []
    seen: set[str] = set()
    expected = end
    for row in rows:
        entry = _entry(row)
        if entry.digest in seen:
            raise IntegrityError(f"malformed pack: {entry.digest} is listed twice")
        if entry.offset != expected:
            raise IntegrityError("malformed pack: file ranges leave gaps or overlap")
        seen.add(entry.digest)
        expected = entry.offset + entry.length
        entries.append(entry)
    if expected != len(view):
        raise IntegrityError("malformed pack: the payload does not end where the index says")
    if canonical_bytes({"files": [list(entry) for entry in entries]}) != index_bytes:
        raise IntegrityError("malformed pack: the index is not canonical JSON")
    return entries


def _entry(row: object) -> PackEntry:
    if (
        not isinstance(row, list)
        or len(row) != 3  # digest, offset, length
        or not isinstance(row[0], str)
        or not _DIGEST_RE.match(row[0])
        or not all(type(value) is int and value >= 0 for value in row[1:])
    ):
        raise IntegrityError("malformed pack: an index row is not [digest, offset, length]")
    return PackEntry(row[0], row[1], row[2])


def iter_pack(data: bytes | memoryview) -> Iterator[tuple[PackEntry, memoryview]]:
    """Each entry of a pack with a view of its bytes (no copies; index checked first)."""
    view = memoryview(data)
    for entry in read_pack_index(view):
        yield entry, view[entry.offset : entry.offset + entry.length]


def verify_pack(data: bytes | memoryview) -> list[PackEntry]:
    """The entries of a pack after checking every file range's SHA-256 against its digest;
    ``IntegrityError`` naming the first file that does not match."""
    entries: list[PackEntry] = []
    for entry, chunk in iter_pack(data):
        if "sha256:" + hashlib.sha256(chunk).hexdigest() != entry.digest:
            raise IntegrityError(f"pack content does not match {entry.digest}")
        entries.append(entry)
    return entries
