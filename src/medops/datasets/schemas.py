"""The shapes of the dataset store that every part shares: files, parts, manifests,
references (``NAME@VERSION``) and what the API answers. Pure pydantic, no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from medops.errors import FieldError, InvalidInputError

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
MANIFEST_FORMAT: Literal["medops-dataset/1"] = "medops-dataset/1"
# Files below this size are packed together; larger ones are split into chunks of this size.
PACK_THRESHOLD = 4 * 1024 * 1024
PACK_TARGET = 64 * 1024 * 1024
CHUNK_SIZE = 64 * 1024 * 1024

ObjectKind = Literal["pack", "chunk", "manifest"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Frozen):
    """One file of a version: its path in the dataset, size and content digest."""

    path: str = Field(min_length=1, max_length=4096)
    size: int = Field(ge=0, le=2**62)
    digest: Digest


class Part(_Frozen):
    """A run of a file's bytes inside one stored object."""

    object: Digest
    offset: int = Field(ge=0, le=2**62)
    length: int = Field(ge=0, le=2**62)


class StoredFile(_Frozen):
    """A distinct file content and where its bytes live, in order (none for an empty file)."""

    digest: Digest
    size: int = Field(ge=0, le=2**62)
    parts: tuple[Part, ...]


class Manifest(_Frozen):
    """A version's manifest: every file, sorted by path, and their Merkle root."""

    format: Literal["medops-dataset/1"] = MANIFEST_FORMAT
    root: Digest
    files: tuple[FileEntry, ...]


class DataSource(_Frozen):
    """Where a version was added from: the machine, its address and the paths given."""

    host: str | None = Field(default=None, max_length=255)
    address: str | None = Field(default=None, max_length=64)
    paths: tuple[str, ...] = ()


_REF_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,127})(?:@(?P<version>[^@\s]+))?$")


class DatasetRef(_Frozen):
    """``NAME@VERSION``: VERSION is a number, ``latest``, or a root prefix (``sha256:`` and
    at least 8 hex digits). ``NAME`` alone means ``latest``."""

    name: str
    version: str = "latest"

    @classmethod
    def parse(cls, text: str, *, field: str = "dataset") -> DatasetRef:
        match = _REF_RE.match(text.strip())
        version = match.group("version") if match else None
        if match is None or (version is not None and not _version_ok(version)):
            reason = (
                f"{text!r} is not NAME@VERSION (VERSION: a number, 'latest' or sha256:<8+ hex>)"
            )
            raise InvalidInputError(reason, errors=[FieldError(field, reason)])
        return cls(name=match.group("name"), version=version or "latest")

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def _version_ok(version: str) -> bool:
    return (
        version == "latest"
        or (version.isdigit() and 0 < int(version) < 2**31)
        or re.fullmatch(r"sha256:[0-9a-f]{8,64}", version) is not None
    )


class DatasetOut(_Frozen):
    """A dataset as the API shows it."""

    name: str
    description: str | None
    project: str
    created_at: datetime
    created_by: str
    versions: int
    latest: int | None
    holds: int


class VersionOut(_Frozen):
    """A dataset version as the API shows it (its files through the manifest call)."""

    id: str
    dataset: str
    number: int
    ref: str  # NAME@NUMBER
    root: Digest
    file_count: int
    total_bytes: int
    message: str | None
    source: DataSource
    derived_from: str | None  # NAME@NUMBER of the parent
    derivation: str | None
    deidentified: bool
    created_at: datetime
    created_by: str
    deleted_at: datetime | None
    held: bool
