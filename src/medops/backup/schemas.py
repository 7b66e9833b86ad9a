"""What backups are made of and what the backup commands answer (typed, for the CLI's
``--json`` and for the ``dr`` drill)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "medops-backup/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoredObject(_Model):
    """One object of a store, as it was stored (already encrypted where the store encrypts)."""

    key: str = Field(description="Its key in the store (e.g. sha256/ab/cdef... or objects/..).")
    sha256: str = Field(description="SHA-256 (hex) of its stored bytes: its address here.")
    size: int


class StoreCopy(_Model):
    """A store's objects at backup time."""

    source: str = Field(description="Where the store was (folder or s3:// URL).")
    objects: list[StoredObject]


class DatabaseCopy(_Model):
    dialect: str = Field(description="sqlite or postgresql")
    format: str = Field(description="sqlite (a database file) or pg_dump-custom")
    file: str = Field(description="The encrypted dump's key in the repository.")
    sha256: str = Field(description="SHA-256 (hex) of the dump before encryption.")
    size: int
    stored_sha256: str = Field(description="SHA-256 (hex) of the encrypted file.")
    stored_size: int
    server_version: str | None = None
    tool_version: str | None = Field(None, description="pg_dump's version (PostgreSQL).")


class CheckpointRef(_Model):
    to_seq: int
    created_at: str
    digest: str = Field(description="SHA-256 of the checkpoint's body and signature.")


class AuditState(_Model):
    """The audit log as the dump holds it."""

    records: int
    last_seq: int
    chain_heads: dict[str, tuple[int, str]] = Field(
        description="chain id -> [chain_seq, hash] of each chain's newest record."
    )
    latest_checkpoint: CheckpointRef | None


class Manifest(_Model):
    """The signed description of one backup: every file and its SHA-256."""

    format: str = FORMAT
    id: str
    created_at: datetime
    medops_version: str
    key_id: str = Field(description="The backup key that encrypted and signed it.")
    schema_revision: str | None
    database: DatabaseCopy
    audit: AuditState
    stores: dict[str, StoreCopy] = Field(description="blobs (registry) and data (datasets).")

    def digests(self) -> set[str]:
        return {o.sha256 for store in self.stores.values() for o in store.objects}


class RuleCheck(_Model):
    """The 3-2-1 rule, counted from the targets (the live data is one copy on local disk)."""

    copies: int
    media: int
    offsite: int
    min_copies: int
    min_media: int
    min_offsite: int
    met: bool
    reason: str = Field(description="What is missing, or 'met'.")


class TargetResult(_Model):
    target: str
    copied: int = Field(description="Objects copied to this target now.")
    reused: int = Field(description="Objects it held already (from earlier backups).")
    bytes_copied: int
    error: str | None = None


class CreateResult(_Model):
    id: str
    created_at: datetime
    database: str
    database_bytes: int
    objects: int
    object_bytes: int
    targets: list[TargetResult]
    rule: RuleCheck
    seconds: float
    ok: bool = Field(description="Written to every target.")


class BackupSummary(_Model):
    id: str
    created_at: datetime
    medops_version: str
    database: str
    schema_revision: str | None
    objects: int
    bytes: int = Field(description="The dump's and the objects' sizes before encryption.")
    targets: list[str]


class BackupList(_Model):
    backups: list[BackupSummary]
    rule: RuleCheck
    errors: list[str] = Field(default_factory=list, description="Targets that could not be read.")


class VerifyResult(_Model):
    id: str
    target: str
    ok: bool
    objects: int
    bytes: int
    problems: list[str]
    seconds: float


class RestoreResult(_Model):
    id: str
    source: str
    database: str
    schema_revision: str | None
    objects: int
    bytes: int
    audit_records: int
    chain_heads_match: bool
    checkpoint_matches: bool
    audit_verified: bool | None = Field(
        description="The restored audit trail verifies (None: the audit key is not at hand)."
    )
    audit_problem: str | None = None
    seconds: float


class PruneResult(_Model):
    target: str
    kept: list[str]
    removed: list[str]
    objects_removed: int
    bytes_removed: int
    dry_run: bool
