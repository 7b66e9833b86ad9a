"""The dataset service: the server side of dataset versions.

Clients scan, hash and pack files; the server verifies every uploaded object (its digest, and
for a pack the digest of every file range in its index), encrypts and stores it, and registers
where each file content lives (``data_blobs``). A commit checks that every file of the
manifest is stored and writes the manifest object and the version row in one transaction, so
a killed add never leaves a half-visible version and the next add skips what is stored.

Reading bytes is audited: ``checkout`` records the reader, the purpose and the version's
patient references (pseudonyms) and hands out a short-lived grant that object reads must
present; ``read_file`` does the same for one file read on the server. Deleting follows the
retention rule: refused while a model version (``dependants``) or a legal hold needs the
version. Re-identification opens a sealed mapping, audited with a reason.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.config import Settings
from medops.context import Context
from medops.core.canonical import canonical_bytes, canonical_json
from medops.datasets import identity
from medops.datasets.records import (
    CheckoutOut,
    CommitIn,
    CommitOut,
    DeleteOut,
    DiffOut,
    HoldOut,
    ManifestOut,
    MappingIn,
    ReidentifyOut,
    Renamed,
    SecretOut,
    SeriesOut,
    TransferOut,
    UploadOut,
    VerifyOut,
    VersionDetail,
)
from medops.datasets.schemas import (
    DIGEST_PATTERN,
    DatasetOut,
    DatasetRef,
    DataSource,
    FileEntry,
    Manifest,
    Part,
    StoredFile,
    VersionOut,
)
from medops.datasets.tables import (
    DataBlob,
    DataHold,
    DataObject,
    Dataset,
    DatasetVersion,
    DeidMapping,
    DeidProject,
    DicomSeries,
)
from medops.db.engine import Database
from medops.errors import (
    ConflictError,
    FieldError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)

if TYPE_CHECKING:
    from medops.datasets.keys import RotationSummary
    from medops.storage.crypto import Keyring
    from medops.storage.objects import ObjectStore

GRANT_SECONDS = 3600
RACE_ATTEMPTS = 3
Dependants = Callable[[str], list[str]]  # version id -> the model versions that need it


def _sha(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_EMPTY_DIGEST = _sha(b"")  # a 0-byte file is committed without an upload, so it must be this


def _bad(field: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {reason}", errors=[FieldError(field, reason)])


class DatasetService:
    """Datasets, versions, their objects, holds and de-identification of one installation."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        keyring: Keyring | None = None,
        dependants: Dependants | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self._store = store
        self._keyring = keyring
        # Filled by services.py with the lineage's answer (datasets never import lineage).
        self.dependants: Dependants = dependants or (lambda _version_id: [])
        # Filled by services.py: the registry's blob store re-wraps its data keys under the
        # same keyring; returns (blobs, re-wrapped).
        self.blob_rewrap: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self._bookkeeping: Database | None = None

    # -- the store and keys, opened on first use ------------------------------------------------

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from medops.storage.objects import open_store

            self._store = open_store(self._settings)
        return self._store

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = self.store.keyring
        return self._keyring

    def close(self) -> None:
        """Release the replica connection and the store's threads."""
        if self._bookkeeping is not None:
            self._bookkeeping.dispose()
            self._bookkeeping = None
        if self._store is not None:
            self._store.close()

    @property
    def _replica_db(self) -> Database:
        """A connection for the transfer's replica bookkeeping (``data_replicas`` rows, written
        by ``transfer`` without audit records; the push or pull itself is audited here)."""
        if self._bookkeeping is None:
            self._bookkeeping = Database(self._settings.resolved_database_url)
        return self._bookkeeping

    # -- uploads ----------------------------------------------------------------------------------

    def missing_blobs(self, digests: Iterable[str]) -> list[str]:
        """The file digests whose bytes the server has not stored."""
        wanted = sorted(set(digests))
        found: set[str] = set()
        with self._db.session() as session:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                found.update(
                    session.scalars(select(DataBlob.digest).where(DataBlob.digest.in_(batch)))
                )
        return [d for d in wanted if d not in found]

    def upload(self, ctx: Context, digest: str, kind: str, data: bytes) -> UploadOut:
        """Verify and store one object; a pack's files become stored file contents. Audited
        ``data.object.put``."""
        require_actor(ctx)
        import re

        if not re.match(DIGEST_PATTERN, digest):
            raise _bad("digest", "must be sha256:<64 hex>")
        if kind not in ("pack", "chunk"):
            raise _bad("kind", "must be pack or chunk")
        if _sha(data) != digest:
            raise _bad("body", f"the bytes do not hash to {digest}")
        entries = _pack_entries(data) if kind == "pack" else []
        self.store.put(digest, data, checked=True)
        now = self._clock.now()
        for attempt in range(RACE_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    self._audit.record(
                        session,
                        ctx,
                        AuditEntry(
                            action="data.object.put",
                            resource_type="data_object",
                            resource_id=digest,
                            details={"kind": kind, "size": len(data), "files": len(entries)},
                        ),
                    )
                    if session.get(DataObject, digest) is None:
                        session.add(
                            DataObject(
                                digest=digest,
                                kind=kind,
                                size=len(data),
                                kek_id=self.store.kek_id(digest),
                                created_at=now,
                            )
                        )
                    known = set(
                        session.scalars(
                            select(DataBlob.digest).where(
                                DataBlob.digest.in_([e[0] for e in entries])
                            )
                        )
                    )
                    for file_digest, offset, length in entries:
                        if file_digest not in known:
                            known.add(file_digest)
                            session.add(
                                DataBlob(
                                    digest=file_digest,
                                    size=length,
                                    parts=json.dumps([[digest, offset, length]]),
                                    created_at=now,
                                )
                            )
                break
            except DbIntegrityError:
                if attempt == RACE_ATTEMPTS - 1:
                    raise
        return UploadOut(digest=digest, kind=kind, size=len(data), files=len(entries))

    # -- commits ----------------------------------------------------------------------------------

    def commit(self, ctx: Context, name: str, body: CommitIn) -> CommitOut:
        """Record a version of ``name`` (created on first use); the same root as the latest
        version answers that version, unchanged. Audited ``data.version.add``."""
        actor = require_actor(ctx)
        identity.check_name(name)
        files = identity.sorted_files(
            FileEntry(path=identity.normal_path(f.path), size=f.size, digest=f.digest)
            for f in body.files
        )
        root = identity.merkle_root(files)
        now = self._clock.now()
        self._register_chunked(body.chunked, now, ctx)
        digests = {f.digest: f.size for f in files}
        stored = self._blobs(digests)
        bad_empty = [d for d, size in digests.items() if size == 0 and d != _EMPTY_DIGEST]
        if bad_empty:
            raise _bad("files", f"{bad_empty[0]} is a 0-byte file's digest but not sha256 of b''")
        empty = [d for d, size in digests.items() if size == 0 and d not in stored]
        lacking = [d for d in digests if d not in stored and d not in empty]
        if lacking:
            reason = (
                f"{len(lacking)} file contents are not stored (upload them first), "
                f"e.g. {lacking[0]}"
            )
            raise InvalidInputError(reason, errors=[FieldError("files", reason)])
        for digest, blob in stored.items():
            if blob.size != digests[digest]:
                raise _bad(
                    "files", f"{digest} is stored with {blob.size} bytes, not {digests[digest]}"
                )
        manifest = Manifest(root=root, files=tuple(files))
        manifest_bytes = canonical_bytes(manifest.model_dump(mode="json"))
        manifest_digest = _sha(manifest_bytes)
        self.store.put(manifest_digest, manifest_bytes, checked=True)
        for attempt in range(RACE_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    return self._commit_rows(
                        session,
                        ctx,
                        actor.username,
                        name,
                        body,
                        files,
                        root,
                        manifest_digest,
                        len(manifest_bytes),
                        empty,
                        now,
                    )
            except DbIntegrityError:
                if attempt == RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_rows(
        self,
        session: Session,
        ctx: Context,
        username: str,
        name: str,
        body: CommitIn,
        files: list[FileEntry],
        root: str,
        manifest_digest: str,
        manifest_size: int,
        empty: list[str],
        now: Any,
    ) -> CommitOut:
        dataset = session.get(Dataset, name)
        latest = session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset == name, DatasetVersion.deleted_at.is_(None))
            .order_by(DatasetVersion.number.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.root == root:
            return CommitOut(version=self._out(session, latest), unchanged=True)
        parent = None
        if body.derived_from:
            parent = _resolve(session, DatasetRef.parse(body.derived_from, field="derived_from"))
        number = (
            session.scalar(
                select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset == name)
            )
            or 0
        ) + 1
        refs = sorted({s.patient_ref for s in body.dicom_series if s.patient_ref})
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action="data.version.add",
                resource_type="dataset_version",
                resource_id=f"{name}@{number}",
                patient_ref=refs[0] if len(refs) == 1 else None,
                details={
                    "root": root,
                    "files": len(files),
                    "bytes": sum(f.size for f in files),
                    "deidentified": body.deidentification is not None,
                    "patient_refs": refs[:100],
                    "mappings": len(body.mappings),
                    "derived_from": body.derived_from,
                },
            ),
        )
        if dataset is None:
            dataset = Dataset(
                name=name,
                description=body.description,
                project=body.project or name,
                created_at=now,
                created_by=username,
            )
            session.add(dataset)
            session.flush()
        for digest in empty:
            if session.get(DataBlob, digest) is None:
                session.add(DataBlob(digest=digest, size=0, parts="[]", created_at=now))
        if session.get(DataObject, manifest_digest) is None:
            session.add(
                DataObject(
                    digest=manifest_digest,
                    kind="manifest",
                    size=manifest_size,
                    kek_id=self.store.kek_id(manifest_digest),
                    created_at=now,
                )
            )
        row = DatasetVersion(
            id=uuid.uuid4().hex,
            dataset=name,
            number=number,
            root=root,
            manifest=manifest_digest,
            file_count=len(files),
            total_bytes=sum(f.size for f in files),
            message=body.message,
            source=body.source.model_dump_json(),
            derived_from=parent.id if parent else None,
            derivation=body.derivation,
            deidentification=canonical_json(body.deidentification)
            if body.deidentification is not None
            else None,
            contents=canonical_json(body.contents),
            created_at=now,
            created_by=username,
        )
        session.add(row)
        session.flush()
        for series in body.dicom_series:
            session.add(DicomSeries(version_id=row.id, **series.model_dump()))
        if body.mappings:
            self._store_mappings(session, dataset.project, row.id, body.mappings, now)
        session.flush()
        return CommitOut(version=self._out(session, row), unchanged=False)

    def _register_chunked(self, chunked: list[StoredFile], now: Any, ctx: Context) -> None:
        """Check and register files stored as chunks: every part stored, the parts' bytes
        hashing to the file's digest."""
        if not chunked:
            return
        with self._db.session() as session:
            known = set(
                session.scalars(
                    select(DataBlob.digest).where(DataBlob.digest.in_([c.digest for c in chunked]))
                )
            )
        todo = [c for c in chunked if c.digest not in known]
        for item in todo:
            if sum(p.length for p in item.parts) != item.size:
                raise _bad("chunked", f"the parts of {item.digest} do not add up to its size")
            hasher = hashlib.sha256()
            for part in item.parts:
                if not self.store.exists(part.object):
                    raise _bad("chunked", f"the object {part.object} is not stored")
                hasher.update(self.store.get_range(part.object, part.offset, part.length))
            if "sha256:" + hasher.hexdigest() != item.digest:
                raise _bad("chunked", f"the chunks of {item.digest} do not hash to it")
        if not todo:
            return
        with self._db.transaction() as session:
            _register_blobs(session, todo, now)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.blob.register",
                    resource_type="data_blob",
                    details={"files": len(todo)},
                ),
            )

    def _store_mappings(
        self, session: Session, project: str, version_id: str, mappings: list[MappingIn], now: Any
    ) -> None:
        if session.get(DeidProject, project) is None:
            raise _bad("mappings", f"project {project!r} has no secret: ask for it first")
        seen = {
            (k, p)
            for k, p in session.execute(
                select(DeidMapping.kind, DeidMapping.pseudonym).where(
                    DeidMapping.project == project,
                    DeidMapping.pseudonym.in_([m.pseudonym for m in mappings]),
                )
            )
        }
        for item in mappings:
            if (item.kind, item.pseudonym) in seen:
                continue
            seen.add((item.kind, item.pseudonym))
            sealed = self.keyring.seal(
                item.original.encode(), context=_mapping_context(project, item.kind, item.pseudonym)
            )
            session.add(
                DeidMapping(
                    project=project,
                    kind=item.kind,
                    pseudonym=item.pseudonym,
                    sealed_original=sealed,
                    version_id=version_id,
                    created_at=now,
                )
            )

    # -- reading ----------------------------------------------------------------------------------

    def list_datasets(self) -> list[DatasetOut]:
        """Every dataset, by name."""
        with self._db.session() as session:
            return [
                self._dataset_out(session, row)
                for row in session.scalars(select(Dataset).order_by(Dataset.name))
            ]

    def dataset(self, name: str) -> DatasetOut:
        with self._db.session() as session:
            row = session.get(Dataset, name)
            if row is None:
                raise NotFoundError(f"no dataset {name!r}: see 'medops data list'")
            return self._dataset_out(session, row)

    def versions(self, name: str, *, include_deleted: bool = False) -> list[VersionOut]:
        """A dataset's versions, newest first."""
        self.dataset(name)
        query = select(DatasetVersion).where(DatasetVersion.dataset == name)
        if not include_deleted:
            query = query.where(DatasetVersion.deleted_at.is_(None))
        with self._db.session() as session:
            rows = session.scalars(query.order_by(DatasetVersion.number.desc()))
            return [self._out(session, row) for row in rows]

    def show(self, ref: DatasetRef) -> VersionDetail:
        """A version with its contents, DICOM series and holds."""
        with self._db.session() as session:
            row = _resolve(session, ref, include_deleted=True)
            series = session.scalars(
                select(DicomSeries)
                .where(DicomSeries.version_id == row.id)
                .order_by(DicomSeries.series_uid)
            )
            return VersionDetail(
                version=self._out(session, row),
                deidentification=json.loads(row.deidentification) if row.deidentification else None,
                contents=json.loads(row.contents or "{}"),
                series=[SeriesOut.model_validate(s, from_attributes=True) for s in series],
                holds=[_hold_out(session, h) for h in _holds(session, row.dataset, row.id)],
            )

    def manifest(self, ref: DatasetRef) -> ManifestOut:
        """A version's files."""
        with self._db.session() as session:
            row = _resolve(session, ref)
            out = self._out(session, row)
        return ManifestOut(version=out, files=list(self._manifest(row).files))

    def diff(self, old: DatasetRef, new: DatasetRef) -> DiffOut:
        """What changed between two versions (renames: same bytes at a new path)."""
        a, b = self.manifest(old), self.manifest(new)
        before = {f.path: f for f in a.files}
        after = {f.path: f for f in b.files}
        added = [f for p, f in after.items() if p not in before]
        removed = [f for p, f in before.items() if p not in after]
        modified = [f for p, f in after.items() if p in before and before[p] != f]
        renamed: list[Renamed] = []
        gone = {f.digest: f for f in removed}
        for item in list(added):
            match = gone.pop(item.digest, None)
            if match is not None:
                renamed.append(Renamed(old=match.path, new=item.path, digest=item.digest))
                added.remove(item)
                removed.remove(match)
        unchanged = sum(1 for p, f in after.items() if before.get(p) == f)
        return DiffOut(
            old=a.version.ref,
            new=b.version.ref,
            added=added,
            removed=removed,
            modified=modified,
            renamed=renamed,
            unchanged=unchanged,
        )

    # -- reading bytes ----------------------------------------------------------------------------

    def checkout(self, ctx: Context, ref: DatasetRef, purpose: str) -> CheckoutOut:
        """The manifest, where each file's bytes are, and a grant to read those objects.
        Audited ``data.checkout`` with the purpose and the version's patient references."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = _resolve(session, ref)
            out = self._out(session, row)
            self._audit_read(session, ctx, row, "data.checkout", purpose, None)
        files = list(self._manifest(row).files)
        stored = self._blobs({f.digest: f.size for f in files})
        expires = self._clock.now() + timedelta(seconds=GRANT_SECONDS)
        grant = self._grant(actor.user_id, row.id, int(expires.timestamp()))
        return CheckoutOut(
            version=out, files=files, stored=list(stored.values()), grant=grant, expires_at=expires
        )

    def read_object(self, ctx: Context, grant: str, digest: str) -> bytes:
        """An object's plaintext (decrypted and verified), for the holder of a grant that
        covers it."""
        actor = require_actor(ctx)
        version_id = self._check_grant(grant, actor.user_id)
        with self._db.session() as session:
            row = session.get(DatasetVersion, version_id)
            if row is None or row.deleted_at is not None:
                raise NotFoundError("the version of this grant is gone")
        if digest != row.manifest and digest not in self._objects_of(row):
            raise PermissionDeniedError("the grant does not cover this object")
        return self.store.get(digest)

    def read_file(self, ctx: Context, ref: DatasetRef, path: str, purpose: str) -> bytes:
        """One file of a version, read on the server (e.g. to re-run a validation). Audited
        ``data.read`` with the purpose and the version's patient references."""
        require_actor(ctx)
        path = identity.normal_path(path)
        with self._db.session() as session:
            row = _resolve(session, ref)
        entry = next((f for f in self._manifest(row).files if f.path == path), None)
        if entry is None:
            raise NotFoundError(f"{ref} has no file {path!r}: see 'medops data show {ref}'")
        with self._db.transaction() as session:
            self._audit_read(session, ctx, row, "data.read", purpose, path)
        blob = self._blobs({entry.digest: entry.size})[entry.digest]
        data = b"".join(self.store.get_range(p.object, p.offset, p.length) for p in blob.parts)
        if _sha(data) != entry.digest:
            raise IntegrityError(f"{ref} {path}: the stored bytes do not match the manifest")
        return data

    def verify(self, ctx: Context, ref: DatasetRef) -> VerifyOut:
        """Decrypt every object of a version and hash every file; name what is bad.
        Audited ``data.verify``."""
        with self._db.session() as session:
            row = _resolve(session, ref)
            label = f"{row.dataset}@{row.number}"
        bad_objects: list[str] = []
        try:
            files = list(self._manifest(row).files)
        except (IntegrityError, NotFoundError):
            files = []
            bad_objects.append(row.manifest)
        stored = self._blobs({f.digest: f.size for f in files})
        objects: dict[str, bytes | None] = {}
        for blob in stored.values():
            for part in blob.parts:
                if part.object in objects:
                    continue
                try:
                    objects[part.object] = self.store.get(part.object)
                except (IntegrityError, NotFoundError):
                    objects[part.object] = None
                    bad_objects.append(part.object)
        bad_files = []
        for entry in files:
            found = stored.get(entry.digest)
            pieces = []
            ok = found is not None or entry.size == 0
            for part in found.parts if found else ():
                data = objects.get(part.object)
                if data is None:
                    ok = False
                    break
                pieces.append(data[part.offset : part.offset + part.length])
            if not ok or _sha(b"".join(pieces)) != entry.digest:
                bad_files.append(entry.path)
        result = VerifyOut(
            ref=label,
            ok=not bad_objects and not bad_files,
            objects=len(objects),
            files=len(files),
            bad_objects=sorted(bad_objects),
            bad_files=bad_files,
        )
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.verify",
                    resource_type="dataset_version",
                    resource_id=label,
                    outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
                    details={
                        "bad_objects": result.bad_objects[:50],
                        "bad_files": len(result.bad_files),
                    },
                ),
            )
        return result

    # -- retention and holds ----------------------------------------------------------------------

    def delete(self, ctx: Context, ref: DatasetRef, reason: str) -> DeleteOut:
        """Delete a version under the retention rule; objects no live version needs go.
        Audited ``data.version.delete``."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = _resolve(session, ref)
            label = f"{row.dataset}@{row.number}"
            holds = list(_holds(session, row.dataset, row.id))
            if holds:
                raise ConflictError(
                    f"{label} is under legal hold ({holds[0].reason}): release "
                    f"it first with 'medops data release {holds[0].id}'"
                )
            needed = self.dependants(row.id)
            if needed:
                raise ConflictError(
                    f"{label} is needed by {', '.join(needed[:5])}: the retention rule keeps it"
                )
            row.deleted_at = self._clock.now()
            row.deleted_by = actor.username
            row.deleted_reason = reason
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.version.delete",
                    resource_type="dataset_version",
                    resource_id=label,
                    reason=reason,
                ),
            )
            session.flush()
            out = self._out(session, row)
            live = list(
                session.scalars(select(DatasetVersion).where(DatasetVersion.deleted_at.is_(None)))
            )
        keep: set[str] = set()
        for other in live:
            keep.add(other.manifest)
            keep |= self._objects_of(other)
        gone = ({row.manifest} | self._objects_of(row)) - keep
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.objects.delete",
                    resource_type="dataset_version",
                    resource_id=label,
                    details={"objects": len(gone)},
                ),
            )
            for digest in gone:
                obj = session.get(DataObject, digest)
                if obj is not None:
                    session.delete(obj)
            blobs = session.scalars(select(DataBlob))
            for blob in blobs:
                if any(p[0] in gone for p in json.loads(blob.parts)):
                    session.delete(blob)
        for digest in gone:
            self.store.delete(digest)
        return DeleteOut(version=out, objects_deleted=len(gone))

    def place_hold(self, ctx: Context, name: str, version: int | None, reason: str) -> HoldOut:
        """A legal hold on a dataset or one version; audited ``data.hold.place``."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            if session.get(Dataset, name) is None:
                raise NotFoundError(f"no dataset {name!r}: see 'medops data list'")
            version_id = None
            if version is not None:
                version_id = _resolve(session, DatasetRef(name=name, version=str(version))).id
            row = DataHold(
                id=uuid.uuid4().hex,
                dataset=name,
                version_id=version_id,
                reason=reason,
                placed_at=self._clock.now(),
                placed_by=actor.username,
            )
            session.add(row)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.hold.place",
                    resource_type="data_hold",
                    resource_id=row.id,
                    reason=reason,
                    details={"dataset": name, "version": version},
                ),
            )
            session.flush()
            return _hold_out(session, row)

    def release_hold(self, ctx: Context, hold_id: str, reason: str | None = None) -> HoldOut:
        """End a legal hold; audited ``data.hold.release``."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = session.get(DataHold, hold_id)
            if row is None:
                raise NotFoundError(f"no hold {hold_id}: see 'medops data show NAME'")
            if row.released_at is not None:
                raise ConflictError(f"hold {hold_id} is already released")
            row.released_at = self._clock.now()
            row.released_by = actor.username
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.hold.release",
                    resource_type="data_hold",
                    resource_id=row.id,
                    reason=reason,
                    details={"dataset": row.dataset},
                ),
            )
            session.flush()
            return _hold_out(session, row)

    def holds(self, name: str) -> list[HoldOut]:
        """A dataset's active holds."""
        with self._db.session() as session:
            return [_hold_out(session, h) for h in _holds(session, name, None, every=True)]

    # -- de-identification ------------------------------------------------------------------------

    def project_secret(self, ctx: Context, project: str) -> SecretOut:
        """The project's pseudonymisation secret (made on first use), for an add with
        ``--deidentify``. Audited ``data.deid.secret``."""
        identity.check_name(project)
        for attempt in range(RACE_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    row = session.get(DeidProject, project)
                    if row is None:
                        secret = secrets.token_bytes(32)
                        row = DeidProject(
                            name=project,
                            created_at=self._clock.now(),
                            sealed_secret=self.keyring.seal(
                                secret, context=_project_context(project)
                            ),
                        )
                        session.add(row)
                    else:
                        secret = self.keyring.open(
                            row.sealed_secret, context=_project_context(project)
                        )
                    self._audit.record(
                        session,
                        ctx,
                        AuditEntry(
                            action="data.deid.secret",
                            resource_type="data_deid_project",
                            resource_id=project,
                        ),
                    )
                return SecretOut(project=project, secret=base64.b64encode(secret).decode())
            except DbIntegrityError:
                if attempt == RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def reidentify(
        self, ctx: Context, project: str, pseudonym: str, reason: str, kind: str | None = None
    ) -> ReidentifyOut:
        """The originals a pseudonym stands for. Audited ``data.reidentify`` with the reason
        (a miss too)."""
        with self._db.transaction() as session:
            query = select(DeidMapping).where(
                DeidMapping.project == project, DeidMapping.pseudonym == pseudonym
            )
            if kind is not None:
                query = query.where(DeidMapping.kind == kind)
            rows = list(session.scalars(query.order_by(DeidMapping.kind)))
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.reidentify",
                    resource_type="data_deid_mapping",
                    resource_id=f"{project}:{pseudonym}",
                    reason=reason,
                    patient_ref=pseudonym,
                    outcome=Outcome.SUCCESS if rows else Outcome.FAILURE,
                    details={"kind": kind, "found": len(rows)},
                ),
            )
        if not rows:
            raise NotFoundError(f"no mapping for {pseudonym!r} in project {project!r}")
        originals = [
            MappingIn(
                kind=r.kind,
                pseudonym=r.pseudonym,
                original=self.keyring.open(
                    r.sealed_original, context=_mapping_context(project, r.kind, r.pseudonym)
                ).decode(),
            )
            for r in rows
        ]
        return ReidentifyOut(project=project, pseudonym=pseudonym, originals=originals)

    # -- remote -----------------------------------------------------------------------------------

    def _remote_url(self, asked: str | None) -> str:
        """The remote a push or pull may use: the one the operator configured. A request may
        name it, never another (a user must not make the server write to, or read from, a
        folder or bucket of their choosing)."""
        configured = self._settings.data_remote
        if not configured:
            raise _bad(
                "remote",
                "this installation has no data remote: the operator sets MEDOPS_DATA_REMOTE "
                "(s3://bucket/prefix or a folder)",
            )
        if asked and asked.rstrip("/") != configured.rstrip("/"):
            raise _bad("remote", f"only the configured remote {configured} may be used")
        return configured

    def push(self, ctx: Context, ref: DatasetRef, remote_url: str | None = None) -> TransferOut:
        """Copy a version's encrypted objects (as stored) and its catalogue record to the
        remote. Audited ``data.push``."""
        from medops.datasets import transfer
        from medops.storage.backends import open_remote

        with self._db.session() as session:
            row = _resolve(session, ref)
            out = self._out(session, row)
        remote = open_remote(self._settings, self._remote_url(remote_url))
        with self._db.session() as session:
            series = [
                SeriesOut.model_validate(s, from_attributes=True).model_dump(mode="json")
                for s in session.scalars(
                    select(DicomSeries).where(DicomSeries.version_id == row.id)
                )
            ]
        files = list(self._manifest(row).files)
        stored = self._blobs({f.digest: f.size for f in files})
        digests = sorted({row.manifest} | self._objects_of(row))
        summary = transfer.push(
            self._replica_db, self.store, remote, remote.url, digests, clock=self._clock
        )
        record = {
            "version": out.model_dump(mode="json"),
            "manifest": row.manifest,
            "contents": row.contents,
            "deidentification": row.deidentification,
            "stored": [s.model_dump(mode="json") for s in stored.values()],
            "series": series,
        }
        sealed = self.keyring.seal(canonical_bytes(record), context=b"medops-catalog")
        remote.put(_catalog_key(row.dataset, row.number), [sealed.encode()])
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.push",
                    resource_type="dataset_version",
                    resource_id=out.ref,
                    details={
                        "remote": remote.url,
                        "objects": summary.objects,
                        "bytes": summary.bytes,
                    },
                ),
            )
        return TransferOut(
            ref=out.ref,
            remote=remote.url,
            objects=summary.objects,
            bytes=summary.bytes,
            skipped=summary.skipped,
            seconds=summary.seconds,
        )

    def pull(self, ctx: Context, ref: DatasetRef, remote_url: str | None = None) -> TransferOut:
        """Fetch a version's objects the store lacks from the remote (each verified before
        it counts) and, on an installation that has not seen it, its version record.
        Audited ``data.pull``."""
        from medops.datasets import transfer
        from medops.storage.backends import open_remote

        actor = require_actor(ctx)
        if not ref.version.isdigit():
            raise _bad("ref", "pull needs NAME@NUMBER")
        remote = open_remote(self._settings, self._remote_url(remote_url))
        try:
            sealed = remote.get(_catalog_key(ref.name, int(ref.version)))
        except (NotFoundError, FileNotFoundError):
            raise NotFoundError(f"{ref} is not on {remote.url}: push it first") from None
        record = json.loads(self.keyring.open(sealed.decode(), context=b"medops-catalog"))
        version = VersionOut.model_validate(record["version"])
        stored = [StoredFile.model_validate(s) for s in record["stored"]]
        digests = sorted({record["manifest"]} | {p.object for s in stored for p in s.parts})
        summary = transfer.pull(
            self._replica_db, self.store, remote, remote.url, digests, clock=self._clock
        )
        manifest = Manifest.model_validate_json(self.store.get(record["manifest"]))
        if (
            manifest.root != version.root
            or identity.merkle_root(list(manifest.files)) != version.root
        ):
            raise IntegrityError(f"{ref}: the pulled manifest does not match its root")
        now = self._clock.now()
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.pull",
                    resource_type="dataset_version",
                    resource_id=str(ref),
                    details={"remote": remote.url, "objects": summary.objects},
                ),
            )
            for digest in digests:
                if session.get(DataObject, digest) is None:
                    kind = "manifest" if digest == record["manifest"] else "pack"
                    session.add(
                        DataObject(
                            digest=digest,
                            kind=kind,
                            size=0,
                            kek_id=self.store.kek_id(digest),
                            created_at=now,
                        )
                    )
            _register_blobs(session, stored, now)
            if session.get(Dataset, ref.name) is None:
                session.add(
                    Dataset(
                        name=ref.name,
                        description=None,
                        project=ref.name,
                        created_at=now,
                        created_by=actor.username,
                    )
                )
                session.flush()
            exists = session.scalars(
                select(DatasetVersion).where(
                    DatasetVersion.dataset == ref.name, DatasetVersion.number == version.number
                )
            ).first()
            if exists is None:
                session.add(
                    DatasetVersion(
                        id=version.id,
                        dataset=ref.name,
                        number=version.number,
                        root=version.root,
                        manifest=record["manifest"],
                        file_count=version.file_count,
                        total_bytes=version.total_bytes,
                        message=version.message,
                        source=version.source.model_dump_json(),
                        derived_from=None,
                        derivation=version.derivation,
                        deidentification=record["deidentification"],
                        contents=record["contents"] or "{}",
                        created_at=version.created_at,
                        created_by=version.created_by,
                    )
                )
                session.flush()
                for item in record.get("series", []):
                    session.add(DicomSeries(version_id=version.id, **item))
            elif exists.root != version.root:
                raise ConflictError(f"{ref} here has another root than on the remote")
        return TransferOut(
            ref=f"{ref.name}@{version.number}",
            remote=remote.url,
            objects=summary.objects,
            bytes=summary.bytes,
            skipped=summary.skipped,
            seconds=summary.seconds,
        )

    def rotate_keys(self, ctx: Context) -> RotationSummary:
        """Re-wrap every data key and sealed secret under the current KEK (no data is
        re-encrypted). Audited ``data.keys.rotate``."""
        from medops.datasets import keys

        require_actor(ctx)
        summary = keys.rotate(self._replica_db, self.store, self.keyring)
        blobs, blobs_rewrapped = self.blob_rewrap()
        summary = summary.model_copy(update={"blobs": blobs, "blobs_rewrapped": blobs_rewrapped})
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="data.keys.rotate",
                    resource_type="data_kek",
                    resource_id=summary.kek_id,
                    details={
                        "objects": summary.objects,
                        "rewrapped": summary.rewrapped,
                        "secrets": summary.secrets,
                        "blobs": summary.blobs,
                        "blobs_rewrapped": summary.blobs_rewrapped,
                    },
                ),
            )
        return summary

    # -- helpers ----------------------------------------------------------------------------------

    def _manifest(self, row: DatasetVersion) -> Manifest:
        try:
            data = self.store.get(row.manifest)
        except NotFoundError:
            # Say which version, not where the store keeps its files.
            raise NotFoundError(
                f"{row.dataset}@{row.number}: its manifest is not in this installation's store "
                f"(pull it: medops data pull {row.dataset}@{row.number})"
            ) from None
        manifest = Manifest.model_validate_json(data)
        if manifest.root != row.root:
            raise IntegrityError(f"{row.dataset}@{row.number}: the manifest is not its root's")
        return manifest

    def _objects_of(self, row: DatasetVersion) -> set[str]:
        files = self._manifest(row).files
        stored = self._blobs({f.digest: f.size for f in files})
        return {p.object for s in stored.values() for p in s.parts}

    def _blobs(self, digests: dict[str, int]) -> dict[str, StoredFile]:
        found: dict[str, StoredFile] = {}
        wanted = list(digests)
        with self._db.session() as session:
            for start in range(0, len(wanted), 500):
                for blob in session.scalars(
                    select(DataBlob).where(DataBlob.digest.in_(wanted[start : start + 500]))
                ):
                    parts = tuple(
                        Part(object=o, offset=off, length=n) for o, off, n in json.loads(blob.parts)
                    )
                    found[blob.digest] = StoredFile(digest=blob.digest, size=blob.size, parts=parts)
        return found

    def _audit_read(
        self,
        session: Session,
        ctx: Context,
        row: DatasetVersion,
        action: str,
        purpose: str,
        path: str | None,
    ) -> None:
        query = select(DicomSeries.patient_ref).where(DicomSeries.version_id == row.id)
        refs = sorted({ref for ref in session.scalars(query) if ref})
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=action,
                resource_type="dataset_version",
                resource_id=f"{row.dataset}@{row.number}",
                reason=purpose,
                patient_ref=refs[0] if len(refs) == 1 else None,
                details={
                    "purpose": purpose,
                    "patient_refs": refs[:1000],
                    "patients": len(refs),
                    "path": path,
                },
            ),
        )

    @functools.cached_property
    def _grant_key(self) -> bytes:
        # Derived from the KEK: a grant one replica issues is good on another, and survives a
        # restart; a key rotation ends the grants issued before it.
        return self.keyring.derive(b"read-grant")

    def _grant(self, user_id: str, version_id: str, expires: int) -> str:
        body = f"{user_id}.{version_id}.{expires}"
        mac = hmac.new(self._grant_key, body.encode(), "sha256").hexdigest()[:32]
        return f"{version_id}.{expires}.{mac}"

    def _check_grant(self, grant: str, user_id: str) -> str:
        try:
            version_id, expires_text, mac = grant.split(".")
            expires = int(expires_text)
        except ValueError:
            raise PermissionDeniedError("not a read grant: check out the version first") from None
        if not hmac.compare_digest(self._grant(user_id, version_id, expires).split(".")[2], mac):
            raise PermissionDeniedError("not a valid read grant: check out the version again")
        if expires < self._clock.now().timestamp():
            raise PermissionDeniedError("the read grant has expired: check out the version again")
        return version_id

    def _dataset_out(self, session: Session, row: Dataset) -> DatasetOut:
        live = select(DatasetVersion.number).where(
            DatasetVersion.dataset == row.name, DatasetVersion.deleted_at.is_(None)
        )
        numbers = list(session.scalars(live))
        return DatasetOut(
            name=row.name,
            description=row.description,
            project=row.project,
            created_at=row.created_at,
            created_by=row.created_by,
            versions=len(numbers),
            latest=max(numbers) if numbers else None,
            holds=len(list(_holds(session, row.name, None, every=True))),
        )

    def _out(self, session: Session, row: DatasetVersion) -> VersionOut:
        parent = session.get(DatasetVersion, row.derived_from) if row.derived_from else None
        return VersionOut(
            id=row.id,
            dataset=row.dataset,
            number=row.number,
            ref=f"{row.dataset}@{row.number}",
            root=row.root,
            file_count=row.file_count,
            total_bytes=row.total_bytes,
            message=row.message,
            source=DataSource.model_validate_json(row.source),
            derived_from=f"{parent.dataset}@{parent.number}" if parent else None,
            derivation=row.derivation,
            deidentified=row.deidentification is not None,
            created_at=row.created_at,
            created_by=row.created_by,
            deleted_at=row.deleted_at,
            held=any(True for _ in _holds(session, row.dataset, row.id)),
        )


def _resolve(session: Session, ref: DatasetRef, *, include_deleted: bool = False) -> DatasetVersion:
    """The version ``ref`` names: a number, ``latest`` or a root prefix."""
    query = select(DatasetVersion).where(DatasetVersion.dataset == ref.name)
    if ref.version.isdigit():
        query = query.where(DatasetVersion.number == int(ref.version))
    else:
        if not include_deleted:
            query = query.where(DatasetVersion.deleted_at.is_(None))
        if ref.version.startswith("sha256:"):
            query = query.where(DatasetVersion.root.startswith(ref.version))
    rows = list(session.scalars(query.order_by(DatasetVersion.number.desc()).limit(2)))
    if not rows:
        raise NotFoundError(f"no dataset version {ref}: see 'medops data list {ref.name}'")
    if ref.version.startswith("sha256:") and len(rows) > 1:
        raise _bad("version", f"{ref.version} names more than one version: give more digits")
    row = rows[0]
    if row.deleted_at is not None and not include_deleted:
        raise NotFoundError(f"{ref} was deleted ({row.deleted_reason})")
    return row


def _holds(
    session: Session, dataset: str, version_id: str | None, *, every: bool = False
) -> Iterable[DataHold]:
    """Active holds on a dataset: those on every version, and on ``version_id``."""
    query = select(DataHold).where(DataHold.dataset == dataset, DataHold.released_at.is_(None))
    rows = session.scalars(query.order_by(DataHold.placed_at))
    return [h for h in rows if every or h.version_id is None or h.version_id == version_id]


def _hold_out(session: Session, row: DataHold) -> HoldOut:
    number = None
    if row.version_id is not None:
        version = session.get(DatasetVersion, row.version_id)
        number = version.number if version else None
    return HoldOut(
        id=row.id,
        dataset=row.dataset,
        version=number,
        reason=row.reason,
        placed_at=row.placed_at,
        placed_by=row.placed_by,
        released_at=row.released_at,
        released_by=row.released_by,
    )


def _project_context(project: str) -> bytes:
    return b"medops-deid-project\0" + project.encode()


def _mapping_context(project: str, kind: str, pseudonym: str) -> bytes:
    return b"medops-deid-mapping\0" + f"{project}\0{kind}\0{pseudonym}".encode()


def _catalog_key(name: str, number: int) -> str:
    return f"catalog/{name}/{number}"


def _pack_entries(data: bytes) -> list[tuple[str, int, int]]:
    """A pack's files (digest, offset, length), each range checked against its digest."""
    from medops.datasets.packformat import read_pack_index

    view = memoryview(data)
    try:
        index = read_pack_index(view)
    except (IntegrityError, InvalidInputError) as exc:
        raise _bad("body", f"not a valid pack: {exc.message}") from None
    entries = []
    for entry in index:
        if entry.offset + entry.length > len(data):
            raise _bad("body", "a pack entry runs past the end of the object")
        if _sha(view[entry.offset : entry.offset + entry.length]) != entry.digest:
            raise _bad("body", f"the pack's bytes for {entry.digest} do not match it")
        entries.append((entry.digest, entry.offset, entry.length))
    return entries


def _register_blobs(session: Session, stored: Iterable[StoredFile], now: datetime) -> None:
    """Record where each file content's bytes are, unless it is recorded already."""
    for item in stored:
        if session.get(DataBlob, item.digest) is None:
            session.add(
                DataBlob(
                    digest=item.digest,
                    size=item.size,
                    created_at=now,
                    parts=json.dumps([[p.object, p.offset, p.length] for p in item.parts]),
                )
            )
