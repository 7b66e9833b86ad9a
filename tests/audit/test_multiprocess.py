"""Several server processes append at once; every chain still verifies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from medops.audit import signing
from medops.audit.checkpoints import verify_database
from medops.db.engine import Database
from medops.rowcheck import check_rows

WRITER = """
import sys
from medops.audit.schemas import AuditEntry
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.services import build_services

import time

services = build_services(Settings(home=sys.argv[1], database_url=sys.argv[2]))
while time.time() < float(sys.argv[4]):  # both writers start together
    time.sleep(0.005)
ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
for i in range(int(sys.argv[3])):
    with services.db.transaction() as session:
        services.audit.record(session, ctx, AuditEntry(action="test.write", resource_id=str(i)))
    time.sleep(0.004)  # a pause between writes, as between requests: lets the other in
    if i % 40 == 0:
        services.checkpoints.checkpoint()
print(services.audit.chain_id)
"""


def test_two_processes_append_concurrently_and_both_chains_verify(
    db_url: str, tmp_path: Path
) -> None:
    """Two writer processes, 150 records each, interleaved; checkpoints taken by both."""
    start = time.time() + 4  # after both interpreters have imported medops
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), db_url, "150", str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    chain_ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        chain_ids.append(out.strip())
    database = Database(db_url)
    try:
        key = signing.load_or_create(tmp_path / "audit-signing.key").public_key()
        report, records = verify_database(database, rows=check_rows, public_key=key)
    finally:
        database.dispose()
    assert report.ok, report.first
    per_chain = {c: sum(r["chain_id"] == c for r in records) for c in chain_ids}
    assert per_chain[chain_ids[0]] >= 150
    assert per_chain[chain_ids[1]] >= 150
    seqs = [r["seq"] for r in records if r["chain_id"] in chain_ids]
    owners = [
        r["chain_id"] for r in sorted(records, key=lambda r: r["seq"]) if r["chain_id"] in chain_ids
    ]
    assert len(set(seqs)) == len(seqs)
    assert owners != sorted(owners), "the two writers did not actually interleave"
