"""Tables of the dataset store: datasets, their immutable versions, where each file's bytes
live, the encrypted objects, replicas on a remote, legal holds and de-identification.

A dataset version never changes once committed: its identity is the Merkle root of its
manifest (every file's path, size and SHA-256). Bytes live in encrypted objects (packs of
small files, chunks of large ones); ``data_blobs`` says where each distinct file content is,
so the same content is stored once across versions and datasets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class Dataset(Base):
    """A named dataset: the container of its versions."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    # The de-identification project whose pseudonyms this dataset's versions share.
    project: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class DatasetVersion(Base):
    """One immutable version: its manifest (an encrypted object) and what was learnt of it."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset", "number", name="uq_dataset_versions_dataset_number"),
        Index("ix_dataset_versions_dataset_root", "dataset", "root"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"))
    number: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(71))  # sha256:<hex>, the Merkle root
    manifest: Mapped[str] = mapped_column(String(71))  # object digest of the manifest
    file_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # JSON DataSource: host, address, paths
    derived_from: Mapped[str | None] = mapped_column(ForeignKey("dataset_versions.id"))
    derivation: Mapped[str | None] = mapped_column(String(32))  # deidentify, split, ...
    deidentification: Mapped[str | None] = mapped_column(Text)  # JSON: profile, options
    contents: Mapped[str] = mapped_column(Text)  # JSON: tabular schemas/stats, DICOM summary
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[str | None] = mapped_column(String(64))
    deleted_reason: Mapped[str | None] = mapped_column(Text)


class DataBlob(Base):
    """Where one distinct file content lives: parts (object, offset, length) in order."""

    __tablename__ = "data_blobs"

    digest: Mapped[str] = mapped_column(String(71), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    parts: Mapped[str] = mapped_column(Text)  # JSON [[object, offset, length], ...]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataObject(Base):
    """One encrypted object in the store (a pack, a chunk, a manifest or a mapping)."""

    __tablename__ = "data_objects"

    digest: Mapped[str] = mapped_column(String(71), primary_key=True)  # of the plaintext
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    kek_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataReplica(Base):
    """An object's copy on a remote; ``state`` goes pending -> done. A pending row keeps the
    multipart upload to resume after a crash."""

    __tablename__ = "data_replicas"

    remote: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(71), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    upload_id: Mapped[str | None] = mapped_column(Text)
    parts_done: Mapped[str | None] = mapped_column(Text)  # JSON [[number, etag], ...]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataHold(Base):
    """A legal hold on a dataset (``version`` null: every version); it blocks deletion."""

    __tablename__ = "data_holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"), index=True)
    version_id: Mapped[str | None] = mapped_column(ForeignKey("dataset_versions.id"))
    reason: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    placed_by: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(64))


class DeidProject(Base):
    """A de-identification project: its pseudonymisation secret, sealed with the data KEK."""

    __tablename__ = "data_deid_projects"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    sealed_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeidMapping(Base):
    """One original -> pseudonym pair of a project (the original sealed; only holders of
    ``data:reidentify`` open it, each time audited)."""

    __tablename__ = "data_deid_mappings"
    __table_args__ = (
        UniqueConstraint("project", "kind", "pseudonym", name="uq_data_deid_mappings_pseudonym"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("data_deid_projects.name"))
    kind: Mapped[str] = mapped_column(String(16))  # patient, uid, accession, ...
    pseudonym: Mapped[str] = mapped_column(String(128))
    sealed_original: Mapped[str] = mapped_column(Text)
    version_id: Mapped[str | None] = mapped_column(ForeignKey("dataset_versions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DicomSeries(Base):
    """The DICOM index of a version, a row per series (never a patient identifier: the
    patient reference is the pseudonym in a de-identified version)."""

    __tablename__ = "data_dicom_series"

    version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id"), primary_key=True)
    series_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_uid: Mapped[str | None] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    model_name: Mapped[str | None] = mapped_column(String(128))
    body_part: Mapped[str | None] = mapped_column(String(64))
    slices: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    burned_in: Mapped[int] = mapped_column(Integer)  # slices flagged Burned In Annotation YES
    deidentified: Mapped[bool] = mapped_column(Boolean)
