"""What the dataset service takes in and answers (beyond the shared shapes of ``schemas.py``):
commits, checkouts with their read grant, verification, differences, holds, de-identification
secrets and re-identification. Pure pydantic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medops.datasets.schemas import DataSource, Digest, FileEntry, StoredFile, VersionOut


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesIn(_In):
    """One DICOM series of a version, as the client's index found it (no identifiers)."""

    series_uid: str = Field(min_length=1, max_length=64)
    study_uid: str | None = Field(default=None, max_length=64)
    patient_ref: str | None = Field(default=None, max_length=128)
    modality: str | None = Field(default=None, max_length=16)
    manufacturer: str | None = Field(default=None, max_length=128)
    model_name: str | None = Field(default=None, max_length=128)
    body_part: str | None = Field(default=None, max_length=64)
    slices: int = Field(ge=0, le=2**62)
    bytes: int = Field(ge=0, le=2**62)
    burned_in: int = Field(default=0, ge=0, le=2**62)
    deidentified: bool = False


class MappingIn(_In):
    """An original -> pseudonym pair made by de-identification (the original is sealed)."""

    kind: str = Field(min_length=1, max_length=16)
    original: str = Field(min_length=1, max_length=1024)
    pseudonym: str = Field(min_length=1, max_length=128)


class CommitIn(_In):
    """A new version: its files, where chunked files' bytes are, and what was learnt of it."""

    files: list[FileEntry] = Field(max_length=10_000_000)
    chunked: list[StoredFile] = Field(default_factory=list)
    message: str | None = Field(default=None, max_length=2000)
    source: DataSource = DataSource()
    project: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2000)
    derived_from: str | None = Field(default=None, max_length=300)
    derivation: str | None = Field(default=None, max_length=32)
    deidentification: dict[str, Any] | None = None
    contents: dict[str, Any] = Field(default_factory=dict)
    dicom_series: list[SeriesIn] = Field(default_factory=list)
    mappings: list[MappingIn] = Field(default_factory=list)


class CommitOut(BaseModel):
    """The version a commit made, or the latest one when nothing changed."""

    version: VersionOut
    unchanged: bool


class MissingIn(_In):
    """File digests the client holds: which has the server not stored?"""

    digests: list[Digest] = Field(max_length=10_000_000)


class MissingOut(BaseModel):
    """The file digests the server has no bytes for."""

    missing: list[str]


class UploadOut(BaseModel):
    """An object the server verified and stored."""

    digest: str
    kind: Literal["pack", "chunk"]
    size: int
    files: int  # file contents registered (a pack's files; 0 for a chunk)


class SeriesOut(BaseModel):
    """A DICOM series of a version."""

    series_uid: str
    study_uid: str | None
    patient_ref: str | None
    modality: str | None
    manufacturer: str | None
    model_name: str | None
    body_part: str | None
    slices: int
    bytes: int
    burned_in: int
    deidentified: bool


class HoldIn(_In):
    """A legal hold on a dataset (``version`` none: every version)."""

    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=2000)


class HoldOut(BaseModel):
    """A legal hold."""

    id: str
    dataset: str
    version: int | None
    reason: str
    placed_at: datetime
    placed_by: str
    released_at: datetime | None
    released_by: str | None


class VersionDetail(BaseModel):
    """A version with what was learnt of it: contents (tabular schemas, DICOM summary), its
    DICOM series and the holds that keep it."""

    version: VersionOut
    deidentification: dict[str, Any] | None
    contents: dict[str, Any]
    series: list[SeriesOut]
    holds: list[HoldOut]


class ManifestOut(BaseModel):
    """A version's files (paths, sizes, digests), sorted by path."""

    version: VersionOut
    files: list[FileEntry]


class Renamed(BaseModel):
    """A file whose bytes moved to another path."""

    old: str
    new: str
    digest: str


class DiffOut(BaseModel):
    """What changed from one version to another."""

    old: str
    new: str
    added: list[FileEntry]
    removed: list[FileEntry]
    modified: list[FileEntry]
    renamed: list[Renamed]
    unchanged: int


class CheckoutIn(_In):
    """Why the bytes are read: kept in the audit log."""

    purpose: str = Field(min_length=3, max_length=500)


class CheckoutOut(BaseModel):
    """Everything a client needs to write a version: its files, where their bytes are, and a
    short-lived grant to read those objects."""

    version: VersionOut
    files: list[FileEntry]
    stored: list[StoredFile]
    grant: str
    expires_at: datetime


class VerifyOut(BaseModel):
    """A version's bytes checked: every object decrypted and every file's digest computed."""

    ref: str
    ok: bool
    objects: int
    files: int
    bad_objects: list[str]
    bad_files: list[str]


class DeleteIn(_In):
    """Why a version goes (kept in the audit log)."""

    reason: str = Field(min_length=3, max_length=2000)


class DeleteOut(BaseModel):
    """A version deleted under the retention rule, and the objects no live version needed."""

    version: VersionOut
    objects_deleted: int


class SecretOut(BaseModel):
    """A de-identification project's pseudonymisation secret (base64), for an add."""

    project: str
    secret: str


class ReidentifyIn(_In):
    """Map a pseudonym back to its original; the reason goes to the audit log."""

    project: str = Field(min_length=1, max_length=128)
    pseudonym: str = Field(min_length=1, max_length=128)
    kind: str | None = Field(default=None, max_length=16)
    reason: str = Field(min_length=3, max_length=2000)


class ReidentifyOut(BaseModel):
    """The originals a pseudonym stands for (one per kind)."""

    project: str
    pseudonym: str
    originals: list[MappingIn]


class TransferIn(_In):
    """A push or pull of one version (remote: the configured one unless given)."""

    remote: str | None = Field(default=None, max_length=1024)


class TransferOut(BaseModel):
    """What a push or pull moved."""

    ref: str
    remote: str
    objects: int
    bytes: int
    skipped: int
    seconds: float


class ReadFileIn(_In):
    """One file of a version read on the server (validation re-runs); audited."""

    path: str = Field(min_length=1, max_length=4096)
    purpose: str = Field(min_length=3, max_length=500)
