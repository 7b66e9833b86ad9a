"""The running server signs audit checkpoints by itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from medops.audit.tables import AuditCheckpoint
from medops.db.engine import Database
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import free_port, start_server


def test_server_checkpoints_once_enough_records_wait(tmp_path: Path, empty_db_url: str) -> None:
    """With MEDOPS_AUDIT_CHECKPOINT_RECORDS=1 a checkpoint appears within a few ticks."""
    env = clean_env(
        MEDOPS_HOME=str(tmp_path / "home"),
        MEDOPS_DATABASE_URL=empty_db_url,
        MEDOPS_AUDIT_CHECKPOINT_RECORDS="1",
        MEDOPS_AUDIT_CHECKPOINT_DIR=str(tmp_path / "export"),
    )
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD="harvest-lantern-pine")
    port = free_port()
    server = start_server(env, port)
    try:
        httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data={"username": "admin", "password": "harvest-lantern-pine"},
        )
        database = Database(empty_db_url)
        try:
            count = 0
            deadline = time.monotonic() + 30
            while count == 0 and time.monotonic() < deadline:
                time.sleep(0.5)
                with database.session() as session:
                    count = session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0
        finally:
            database.dispose()
        assert count >= 1
        assert list((tmp_path / "export").glob("checkpoint-*.json"))
    finally:
        server.terminate()
        server.wait(timeout=15)
