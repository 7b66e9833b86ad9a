"""A backup made while a real server serves predictions restores onto an empty machine: the
blob stores come back byte for byte, the audit trail verifies and the latest checkpoint and
every chain's head are those of the backup; a machine that is not empty is refused."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from medops import admin
from medops.audit.tables import AuditEvent
from medops.backup import database as dbcopy
from medops.backup.service import create_backup, restore_backup, verify_backup
from medops.db.engine import Database
from medops.errors import ConflictError
from medops.serving.tables import Prediction
from medops.testing import FixedClock
from tests.helpers.backup import Populated, manifest_of, new_machine, store_files
from tests.helpers.cli_runner import clean_env
from tests.helpers.registry import DEPLOYMENT, random_records
from tests.helpers.server import free_port, start_server


def _count(url: str, what: type[Prediction] | type[AuditEvent]) -> int:
    database = Database(url)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(what)) or 0)
    finally:
        database.dispose()


def test_a_backup_made_while_serving_restores_onto_an_empty_machine(
    populated: Populated, repo: Path, tmp_path: Path, empty_db_url: str, clock: FixedClock
) -> None:
    settings = populated.settings
    assert settings.database_url is not None
    env = clean_env(MEDOPS_HOME=str(settings.home), MEDOPS_DATABASE_URL=settings.database_url)
    port = free_port()
    server = start_server(env, port)
    answered: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/deployments/{DEPLOYMENT}/predict"
        with httpx.Client(headers=populated.clinician, timeout=10) as http:
            seed = 100
            while not stop.is_set():
                seed += 1
                records = [{"features": r} for r in random_records(2, seed=seed)]
                answer = http.post(url, json={"records": records})
                if answer.status_code != 200:
                    failures.append(answer.text)
                    return
                answered.append(seed)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        # The server is serving before the backup starts.
        for _ in range(600):
            if len(answered) >= 3 or failures:
                break
            stop.wait(0.1)
        assert not failures, failures[0]
        created = create_backup(settings, targets=[str(repo)], clock=clock)
        during = len(answered)
    finally:
        stop.set()
        thread.join(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not failures, failures[0]
    assert during > 3, "no prediction was answered while the backup ran"
    assert created.ok
    assert created.targets[0].copied == created.objects > 0

    target = new_machine(settings, tmp_path / "restored", empty_db_url)
    restored = restore_backup(target, created.id, source=str(repo))

    assert restored.chain_heads_match
    assert restored.checkpoint_matches
    assert restored.audit_verified is True, restored.audit_problem
    assert admin.audit_verify(target).ok
    # Byte for byte: every object the backup listed, under the same key, in both stores.
    manifest = manifest_of(repo, created.id)
    manifest_keys = {
        name: {o.key for o in store.objects} for name, store in manifest.stores.items()
    }
    for name, source_root, restored_root in (
        ("blobs", settings.blob_dir, target.blob_dir),
        ("data", settings.resolved_data_dir, target.resolved_data_dir),
    ):
        before, after = store_files(source_root), store_files(restored_root)
        assert set(after) == manifest_keys[name]
        assert after
        assert all(before[key] == data for key, data in after.items())
    # The restored database holds the predictions of the snapshot, each with its record
    # (the audit trail verifies), and its latest checkpoint is the backup's.
    assert target.database_url is not None
    assert _count(target.database_url, Prediction) >= populated.predictions
    revision, state = dbcopy.state_of(target.database_url)
    assert revision == restored.schema_revision
    assert state.latest_checkpoint is not None
    assert state.latest_checkpoint == manifest.audit.latest_checkpoint
    # Audited on both machines: the backup where it was made, the restore where it landed.
    assert "backup.create" in _actions(settings.database_url)
    assert _actions(target.database_url)[-1] == "backup.restore"


def test_a_machine_that_is_not_empty_is_refused(
    populated: Populated, repo: Path, empty_db_url: str, clock: FixedClock
) -> None:
    """Restoring onto the installation itself (or any with a database or objects) is refused
    before anything is written."""
    settings = populated.settings
    created = create_backup(settings, targets=[str(repo)], clock=clock)
    with pytest.raises(ConflictError, match="empty"):
        restore_backup(settings, created.id, source=str(repo))
    # A fresh database but the old home's stores: refused too.
    fresh = settings.model_copy(update={"database_url": empty_db_url})
    with pytest.raises(ConflictError, match="store"):
        restore_backup(fresh, created.id, source=str(repo))
    assert dbcopy.state_of(empty_db_url)[0] is None  # nothing was written
    assert verify_backup(settings, created.id, source=str(repo)).ok
    # create and verify are audited; the refused restores changed nothing to audit.
    assert _actions(str(settings.database_url)) == ["backup.create", "backup.verify"]


def _actions(url: str) -> list[str]:
    database = Database(url)
    try:
        with database.session() as session:
            rows = session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.like("backup.%"))
                .order_by(AuditEvent.seq)
            )
            return list(rows)
    finally:
        database.dispose()
