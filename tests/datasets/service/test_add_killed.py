"""SIGKILL during ``medops data add`` (a real process killed once it has uploaded an object)
leaves no version at all, and the next add resumes: it uploads only what is missing and
commits one complete version."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

from medops.audit.tables import AuditEvent
from medops.datasets.tables import DataObject, DatasetVersion
from tests.helpers.cli import init_with_people, log_in
from tests.helpers.cli_runner import MEDOPS, Cli, clean_env

KEK = "k1:" + base64.b64encode(bytes(range(32))).decode()
FILES = 80  # of 1 MiB: four packs of about 24 MiB


def _count(url: str, query: object) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]
    finally:
        engine.dispose()


def test_killed_add_leaves_nothing_half_visible_and_resumes(
    tmp_path: Path, empty_db_url: str
) -> None:
    """Kill the add after its first object is stored: no version row; the rerun uploads the
    rest only and commits version 1 with every file."""
    cli = Cli(
        clean_env(
            MEDOPS_HOME=str(tmp_path / "home"),
            MEDOPS_DATABASE_URL=empty_db_url,
            MEDOPS_DATA_KEK=KEK,
        )
    )
    init_with_people(cli, [("dana", "data_scientist", "Dana Data")])
    log_in(cli, "dana")
    source = tmp_path / "src"
    source.mkdir()
    for number in range(FILES):
        (source / f"f{number:03d}.bin").write_bytes(os.urandom(1024 * 1024))
    proc = subprocess.Popen(
        [MEDOPS, "data", "add", "big", str(source), "--json"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(empty_db_url, select(func.count()).select_from(DataObject)) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stored = _count(empty_db_url, select(func.count()).select_from(DataObject))
    assert stored >= 1
    assert _count(empty_db_url, select(func.count()).select_from(DatasetVersion)) == 0
    done = cli.ok("data", "add", "big", str(source), "--json").json()
    assert done["version"]["number"] == 1
    assert done["version"]["file_count"] == FILES
    puts = _count(
        empty_db_url,
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "data.object.put"),
    )
    packs = _count(
        empty_db_url,
        select(func.count()).select_from(DataObject).where(DataObject.kind == "pack"),
    )
    assert puts == packs  # nothing stored before the kill was uploaded again
    assert cli.ok("data", "verify", "big@1", "--json").json()["ok"]
