"""Backups of one installation: create, list, verify, restore, prune.

Local administration like ``medops.admin``: it runs where the database and the stores are,
acts as the local ``system`` actor, and each action is audited (``backup.create``,
``backup.verify``, ``backup.restore``, ``backup.prune``) in this installation's database when
it has one.

``create`` dumps the database from one snapshot (database.py), then copies every stored object
of the blob stores that the target does not hold yet (stores.py; objects are immutable and
content-addressed, and every object the dump refers to was stored before the row that refers
to it committed), then writes the encrypted dump and, last, the signed manifest. ``restore``
checks the whole backup before it writes anything, onto an empty database and empty stores
only, and then compares the restored database with the manifest: the audit chains' heads, the
latest checkpoint, and (with the audit key at hand) a full verification of the audit trail.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import medops
from medops.backup import database as dbcopy
from medops.backup import keys as crypto
from medops.backup import retention, stores
from medops.backup.repository import Repository, object_context, open_target
from medops.backup.schemas import (
    BackupList,
    BackupSummary,
    CreateResult,
    DatabaseCopy,
    Manifest,
    PruneResult,
    RestoreResult,
    RuleCheck,
    StoreCopy,
    StoredObject,
    TargetResult,
    VerifyResult,
)
from medops.clock import Clock, SystemClock
from medops.config import Settings
from medops.errors import (
    ConfigurationError,
    ConflictError,
    FieldError,
    IntegrityError,
    InvalidInputError,
    MedopsError,
    NotFoundError,
)
from medops.files import private_folder
from medops.logs import get_logger
from medops.storage.backends.base import Backend

WORKERS = 8
log = get_logger("medops.backup")


# -- targets and the 3-2-1 rule ------------------------------------------------------------


def _targets(settings: Settings, targets: Sequence[str] | None) -> list[str]:
    chosen = [t for t in (targets or settings.backup_targets) if t.strip()]
    if not chosen:
        msg = (
            "no backup target: set MEDOPS_BACKUP_TARGETS (folders or s3://bucket/prefix, "
            "comma-separated) or pass --to DIR|s3://bucket/prefix"
        )
        raise ConfigurationError(msg)
    return list(dict.fromkeys(chosen))


def _medium(target: str) -> str:
    return "object-storage" if urlparse(target).scheme == "s3" else "disk"


def rule_check(settings: Settings, targets: Sequence[str]) -> RuleCheck:
    """The 3-2-1 rule for backups held in ``targets``: copies are the live data plus one per
    target; media are local disk (the live data) and the targets' kinds; s3:// targets are
    offsite, folders are on site."""
    copies = 1 + len(targets)
    media = len({"disk", *(_medium(t) for t in targets)})
    offsite = sum(1 for t in targets if _medium(t) == "object-storage")
    missing = []
    if copies < settings.backup_min_copies:
        missing.append(f"{copies} of {settings.backup_min_copies} copies")
    if media < settings.backup_min_media:
        missing.append(f"{media} of {settings.backup_min_media} media")
    if offsite < settings.backup_min_offsite:
        missing.append(f"{offsite} of {settings.backup_min_offsite} offsite")
    return RuleCheck(
        copies=copies,
        media=media,
        offsite=offsite,
        min_copies=settings.backup_min_copies,
        min_media=settings.backup_min_media,
        min_offsite=settings.backup_min_offsite,
        met=not missing,
        reason="; ".join(missing) + " (add targets to MEDOPS_BACKUP_TARGETS)" if missing else "met",
    )


# -- auditing ------------------------------------------------------------------------------


def _audit(
    settings: Settings,
    action: str,
    resource_id: str | None,
    details: dict[str, object],
    *,
    failed: str | None = None,
) -> None:
    """Record ``action`` in this installation's database; an installation without one (a
    machine about to be restored onto) has nothing to record into."""
    from medops.admin import LOCAL_ORIGIN
    from medops.audit.schemas import AuditEntry, Outcome
    from medops.context import SYSTEM_ACTOR, Context
    from medops.services import build_services

    url = settings.resolved_database_url
    if dbcopy.dialect_of(url) == "sqlite" and not dbcopy.sqlite_path(url).exists():
        return
    try:
        if dbcopy.state_of(url)[0] is None:
            return  # not migrated: no audit log here
    except Exception as exc:  # noqa: BLE001 - no database reachable: nothing to record into
        log.warning("backup action not audited", action=action, error=type(exc).__name__)
        return
    services = build_services(settings)
    try:
        services.audit.record_alone(
            Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN),
            AuditEntry(
                action=action,
                outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
                resource_type="backup",
                resource_id=resource_id,
                reason=failed,
                details=details,
            ),
        )
    finally:
        services.close()


# -- create --------------------------------------------------------------------------------


@contextmanager
def _workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="medops-backup-"))
    try:
        folder.chmod(0o700)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _dump(settings: Settings, into: Path) -> dbcopy.Dump:
    url = settings.resolved_database_url
    if dbcopy.dialect_of(url) == "postgresql":
        return dbcopy.dump_postgres(settings, url, into)
    return dbcopy.dump_sqlite(url, into)


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(crypto.SEGMENT):
            hasher.update(chunk)
    return hasher.hexdigest()


class _TargetCopy:
    """What one target holds and what this backup copied to it."""

    def __init__(self, target: str, repository: Repository) -> None:
        self.target = target
        self.repository = repository
        self.held: set[str] = set()
        self.copied = 0
        self.reused = 0
        self.bytes = 0
        self.error: str | None = None
        self.lock = threading.Lock()

    def result(self) -> TargetResult:
        return TargetResult(
            target=self.target,
            copied=self.copied,
            reused=self.reused,
            bytes_copied=self.bytes,
            error=self.error,
        )


def create_backup(
    settings: Settings,
    *,
    targets: Sequence[str] | None = None,
    clock: Clock | None = None,
) -> CreateResult:
    """Back up the database and the blob stores to every target (default
    MEDOPS_BACKUP_TARGETS)."""
    started = time.monotonic()
    chosen = _targets(settings, targets)
    copies = [_TargetCopy(t, Repository(open_target(settings, t))) for t in chosen]
    keys = crypto.load_keys(settings, create=True)
    key = keys.current
    now = (clock or SystemClock()).now()
    backup_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    for copy in copies:
        try:
            copy.held = copy.repository.object_digests()
        except MedopsError as exc:
            copy.error = exc.message
    with _workdir() as work:
        try:
            dump = _dump(settings, work / "database")
        except MedopsError as exc:  # no backup without the database: audited as a failure
            _audit(settings, "backup.create", backup_id, {"targets": chosen}, failed=exc.message)
            raise
        dump_sha = _file_sha256(dump.path)
        dump_size = dump.path.stat().st_size
        sealed = work / "database.enc"
        with sealed.open("wb") as handle:
            for piece in crypto.seal(key, b"database:" + backup_id.encode(), _chunks(dump.path)):
                handle.write(piece)
        store_copies = {
            name: _copy_store(backend, copies, key)
            for name, backend in stores.sources(settings).items()
        }
        manifest = Manifest(
            id=backup_id,
            created_at=now,
            medops_version=medops.__version__,
            key_id=key.id,
            schema_revision=dump.schema_revision,
            database=DatabaseCopy(
                dialect=dump.dialect,
                format=dump.format,
                file=Repository.database_key(backup_id),
                sha256=dump_sha,
                size=dump_size,
                stored_sha256=_file_sha256(sealed),
                stored_size=sealed.stat().st_size,
                server_version=dump.server_version,
                tool_version=dump.tool_version,
            ),
            audit=dump.audit,
            stores=store_copies,
        )
        for copy in copies:
            if copy.error is not None:
                continue
            try:
                copy.repository.backend.put(manifest.database.file, _chunks(sealed))
                copy.repository.write_manifest(key, manifest)
            except MedopsError as exc:
                copy.error = exc.message
    written = [c.target for c in copies if c.error is None]
    objects = [o for s in store_copies.values() for o in s.objects]
    result = CreateResult(
        id=backup_id,
        created_at=now,
        database=dump.dialect,
        database_bytes=dump_size,
        objects=len(objects),
        object_bytes=sum(o.size for o in objects),
        targets=[c.result() for c in copies],
        rule=rule_check(settings, written),
        seconds=round(time.monotonic() - started, 3),
        ok=len(written) == len(copies),
    )
    failures = "; ".join(f"{c.target}: {c.error}" for c in copies if c.error)
    _audit(
        settings,
        "backup.create",
        backup_id,
        {
            "targets": written,
            "objects": result.objects,
            "copied": {c.target: c.copied for c in copies},
            "database_sha256": dump_sha,
            "rule_met": result.rule.met,
        },
        failed=failures or None,
    )
    if not written:
        raise ConfigurationError(f"backup {backup_id} was written to no target: {failures}")
    return result


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(crypto.SEGMENT):
            yield chunk


def _copy_store(
    backend: Backend, copies: Sequence[_TargetCopy], key: crypto.BackupKey
) -> StoreCopy:
    """Copy every object of ``backend`` that a target lacks; returns what the store held."""

    def one(store_key: str) -> StoredObject | None:
        try:
            data = backend.get(store_key)
        except NotFoundError:
            return None  # removed since it was listed (a dataset purge): not in this backup
        digest = hashlib.sha256(data).hexdigest()
        sealed: bytes | None = None
        for copy in copies:
            if copy.error is not None:
                continue
            with copy.lock:
                if digest in copy.held:
                    copy.reused += 1
                    continue
                copy.held.add(digest)  # claimed: another key with the same bytes reuses it
            if sealed is None:
                sealed = b"".join(crypto.seal(key, object_context(digest), [data]))
            try:
                copy.repository.backend.put(f"objects/{digest[:2]}/{digest}", [sealed])
            except MedopsError as exc:
                copy.error = exc.message
                continue
            with copy.lock:
                copy.copied += 1
                copy.bytes += len(data)
        return StoredObject(key=store_key, sha256=digest, size=len(data))

    listed = list(stores.stored_keys(backend))
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="medops-backup") as pool:
        found = [o for o in pool.map(one, listed) if o is not None]
    return StoreCopy(source=backend.url, objects=sorted(found, key=lambda o: o.key))


# -- list ----------------------------------------------------------------------------------


def list_backups(settings: Settings, *, targets: Sequence[str] | None = None) -> BackupList:
    """The complete backups in the targets (manifests read without their signatures; verify
    checks those), newest first, with where each is held."""
    chosen = _targets(settings, targets)
    found: dict[str, tuple[Manifest, list[str]]] = {}
    errors: list[str] = []
    for target in chosen:
        repository = Repository(open_target(settings, target))
        try:
            ids = repository.backup_ids()
            for backup_id in ids:
                if backup_id not in found:
                    found[backup_id] = (repository.read_manifest(backup_id, None), [])
                found[backup_id][1].append(target)
        except MedopsError as exc:
            errors.append(f"{target}: {exc.message}")
    summaries = [
        BackupSummary(
            id=m.id,
            created_at=m.created_at,
            medops_version=m.medops_version,
            database=m.database.dialect,
            schema_revision=m.schema_revision,
            objects=len(m.digests()),
            bytes=m.database.size + sum(o.size for s in m.stores.values() for o in s.objects),
            targets=held,
        )
        for m, held in found.values()
    ]
    summaries.sort(key=lambda s: (s.created_at, s.id), reverse=True)
    newest_held = summaries[0].targets if summaries else []
    return BackupList(backups=summaries, rule=rule_check(settings, newest_held), errors=errors)


# -- verify --------------------------------------------------------------------------------


def _source(settings: Settings, source: str | None, backup_id: str) -> Repository:
    """The repository to read ``backup_id`` from: ``source``, else the first target that
    holds it."""
    if source is not None:
        return Repository(open_target(settings, source))
    candidates = _targets(settings, None)
    for target in candidates:
        repository = Repository(open_target(settings, target))
        try:
            if backup_id in repository.backup_ids():
                return repository
        except MedopsError:
            continue
    msg = f"backup {backup_id} is in none of MEDOPS_BACKUP_TARGETS: name it with --from"
    raise NotFoundError(msg)


def _check(
    settings: Settings,
    repository: Repository,
    keys: crypto.BackupKeys,
    manifest: Manifest,
    work: Path,
    problems: list[str],
    on_object: Callable[[str, StoredObject, bytes], None] | None = None,
) -> Path:
    """Check every object and the dump; returns the decrypted dump's path."""
    seen: dict[str, bytes | None] = {}
    for name, store in manifest.stores.items():
        for item in store.objects:
            if item.sha256 in seen and on_object is None:
                continue
            try:
                data = repository.read_object(keys, item.sha256)
            except MedopsError as exc:
                problems.append(exc.message)
                seen[item.sha256] = None
                continue
            if len(data) != item.size:
                problems.append(f"object {item.sha256} has {len(data)} bytes, not {item.size}")
            seen[item.sha256] = None
            if on_object is not None:
                on_object(name, item, data)
    dump = work / "database"
    try:
        repository.read_database(keys, manifest, dump)
        if manifest.database.dialect == "sqlite":
            dbcopy.check_sqlite_dump(dump)
        elif manifest.database.server_version:
            dbcopy.check_postgres_dump(settings, dump, manifest.database.server_version)
    except IntegrityError as exc:
        problems.append(exc.message)
    return dump


def verify_backup(settings: Settings, backup_id: str, *, source: str | None = None) -> VerifyResult:
    """Check the manifest's signature, decrypt and hash every object and the dump."""
    started = time.monotonic()
    repository = _source(settings, source, backup_id)
    keys = crypto.load_keys(settings, create=False)
    problems: list[str] = []
    manifest: Manifest | None = None
    try:
        manifest = repository.read_manifest(backup_id, keys)
    except IntegrityError as exc:
        problems.append(exc.message)
    if manifest is not None:
        with _workdir() as work:
            _check(settings, repository, keys, manifest, work, problems)
    result = VerifyResult(
        id=backup_id,
        target=repository.url,
        ok=not problems,
        objects=len(manifest.digests()) if manifest else 0,
        bytes=(
            manifest.database.size
            + sum(o.size for s in manifest.stores.values() for o in s.objects)
        )
        if manifest
        else 0,
        problems=problems,
        seconds=round(time.monotonic() - started, 3),
    )
    _audit(
        settings,
        "backup.verify",
        backup_id,
        {"target": repository.url, "ok": result.ok},
        failed=problems[0] if problems else None,
    )
    return result


# -- restore -------------------------------------------------------------------------------


def _refuse_unless_empty(settings: Settings, dialect: str) -> dict[str, Backend]:
    url = settings.resolved_database_url
    if dbcopy.dialect_of(url) != dialect:
        msg = (
            f"this backup holds a {dialect} database but MEDOPS_DATABASE_URL is "
            f"{dbcopy.dialect_of(url)}: point it at an empty {dialect} database"
        )
        raise InvalidInputError(msg, errors=[FieldError("MEDOPS_DATABASE_URL", "wrong kind")])
    empty = (
        dbcopy.postgres_is_empty(url) if dialect == "postgresql" else dbcopy.sqlite_is_empty(url)
    )
    if not empty:
        where = dbcopy.sqlite_path(url) if dialect == "sqlite" else "MEDOPS_DATABASE_URL"
        msg = (
            f"{where} already holds a database: a backup restores onto an empty machine only "
            "(a fresh MEDOPS_HOME, an empty database)"
        )
        raise ConflictError(msg)
    targets = stores.sources(settings)
    for name, backend in targets.items():
        if not stores.is_empty(backend):
            msg = (
                f"the {name} store at {backend.url} is not empty: a backup restores onto an "
                "empty machine only"
            )
            raise ConflictError(msg)
    return targets


def restore_backup(
    settings: Settings, backup_id: str, *, source: str | None = None
) -> RestoreResult:
    """Restore ``backup_id`` onto this (empty) installation: database and stores."""
    started = time.monotonic()
    repository = _source(settings, source, backup_id)
    keys = crypto.load_keys(settings, create=False)
    manifest = repository.read_manifest(backup_id, keys)
    targets = _refuse_unless_empty(settings, manifest.database.dialect)
    if settings.database_url is None:
        private_folder(settings.home)
    with _workdir() as work:
        problems: list[str] = []
        dump = _check(settings, repository, keys, manifest, work, problems)
        if problems:
            msg = f"backup {backup_id} fails verification, nothing restored: {problems[0]}"
            raise IntegrityError(msg)
        url = settings.resolved_database_url
        if manifest.database.dialect == "postgresql":
            dbcopy.restore_postgres(settings, dump, url)
        else:
            dbcopy.restore_sqlite(dump, url)

        def put(name: str, item: StoredObject, data: bytes) -> None:
            targets[name].put(item.key, [data])

        _check(settings, repository, keys, manifest, work, problems, on_object=put)
        for backend in targets.values():
            stores.tidy(backend)
        if problems:
            raise IntegrityError(f"backup {backup_id} changed while restoring: {problems[0]}")
    revision, state = dbcopy.state_of(settings.resolved_database_url)
    verified, problem = _verify_audit(settings)
    result = RestoreResult(
        id=backup_id,
        source=repository.url,
        database=manifest.database.dialect,
        schema_revision=revision,
        objects=len(manifest.digests()),
        bytes=manifest.database.size
        + sum(o.size for s in manifest.stores.values() for o in s.objects),
        audit_records=state.records,
        chain_heads_match=state.chain_heads == manifest.audit.chain_heads,
        checkpoint_matches=state.latest_checkpoint == manifest.audit.latest_checkpoint,
        audit_verified=verified,
        audit_problem=problem,
        seconds=round(time.monotonic() - started, 3),
    )
    _audit(
        settings,
        "backup.restore",
        backup_id,
        {
            "source": repository.url,
            "chain_heads_match": result.chain_heads_match,
            "checkpoint_matches": result.checkpoint_matches,
            "audit_verified": verified,
        },
    )
    return result


def _verify_audit(settings: Settings) -> tuple[bool | None, str | None]:
    """Verify the restored audit trail with the installation's audit key (None: no key)."""
    if settings.resolved_audit_key_file.exists() is False:
        return None, "the audit signing key is not in place: copy it, then 'medops audit verify'"
    from medops import admin

    try:
        report = admin.audit_verify(settings)
    except MedopsError as exc:
        return None, exc.message
    first = report.first
    return report.ok, (f"{first.where}: {first.reason}" if first else None)


# -- prune ---------------------------------------------------------------------------------


def prune_backups(
    settings: Settings, *, targets: Sequence[str] | None = None, dry_run: bool = False
) -> list[PruneResult]:
    """Apply retention in each target, then remove the objects no kept backup needs."""
    results = []
    for target in _targets(settings, targets):
        repository = Repository(open_target(settings, target))
        manifests = {i: repository.read_manifest(i, None) for i in repository.backup_ids()}
        kept = retention.keep(
            [(m.id, m.created_at) for m in manifests.values()],
            daily=settings.backup_keep_daily,
            weekly=settings.backup_keep_weekly,
            monthly=settings.backup_keep_monthly,
        )
        removed = sorted(set(manifests) - kept)
        needed = {d for i in kept for d in manifests[i].digests()}
        unneeded = sorted(repository.object_digests() - needed)
        freed = 0
        if not dry_run:
            for backup_id in removed:
                repository.delete_backup(backup_id)
            for digest in unneeded:
                freed += repository.object_size(digest)
                repository.delete_object(digest)
        else:
            freed = sum(repository.object_size(d) for d in unneeded)
        results.append(
            PruneResult(
                target=target,
                kept=sorted(kept),
                removed=removed,
                objects_removed=len(unneeded),
                bytes_removed=freed,
                dry_run=dry_run,
            )
        )
    if not dry_run:
        _audit(
            settings,
            "backup.prune",
            None,
            {r.target: {"removed": r.removed, "objects": r.objects_removed} for r in results},
        )
    return results
