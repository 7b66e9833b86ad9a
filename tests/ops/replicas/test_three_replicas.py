"""Three ``medops server`` replicas on one PostgreSQL database behind haproxy, under load.

Predictions flow through haproxy while the production alias moves back and forth (through
haproxy), monitoring runs are started on every replica directly and every replica writes
audit records; then the replica leading ``alerts.evaluate`` is killed (SIGKILL) and another
takes the job over. Afterwards: the audit trail verifies, every acknowledged prediction is
stored and audited exactly once, every monitoring window exists once, the alias ends on the
last acknowledged change with each change audited once, and each scheduled job ran under one
leader at a time (its runs, merged across the replicas' logs, change hands once, at the kill).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from medops.audit import signing
from medops.audit.checkpoints import verify_database
from medops.audit.tables import AuditCheckpoint, AuditEvent
from medops.config import Settings
from medops.db.engine import Database
from medops.jobs import LEASE_GRACE, JobLease
from medops.monitoring.tables import MonitoringResult
from medops.registry.tables import ModelAlias
from medops.rowcheck import check_rows
from medops.services import Services
from medops.serving.tables import Prediction
from tests.helpers.cli_runner import clean_env
from tests.helpers.haproxy import (
    Replica,
    haproxy_binary,
    log_time,
    login,
    runs_of,
    start_haproxy,
    start_replica,
)
from tests.helpers.registry import DEPLOYMENT, NAME, approved, predict, random_records

pytestmark = [pytest.mark.replicas]
PERIOD = 1.0  # alert evaluation, dispatch and monitoring; refresh is half of it
LED = ("alerts.evaluate", "monitoring.run", "audit.checkpoint")


@dataclass
class Load:
    """What the clients saw: the ids of acknowledged predictions, and failures by kind."""

    acknowledged: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def client(url: str, token: str, load: Load, n: int) -> None:
    records = random_records(20, seed=n)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        i = 0
        while not load.stop.is_set():
            i += 1
            body = {"features": records[i % 20], "patient_ref": f"c{n}-{i}"}
            try:
                answer = http.post(f"/api/v1/deployments/{DEPLOYMENT}/predict", json=body,
                                   timeout=10)  # fmt: skip
            except httpx.TransportError as exc:
                with load.lock:
                    load.refused[type(exc).__name__] += 1
                continue
            with load.lock:
                if answer.status_code == 200:
                    load.acknowledged.extend(p["id"] for p in answer.json()["predictions"])
                else:
                    load.refused[str(answer.status_code)] += 1


def holder_of(db: Database, job: str) -> str | None:
    with db.session() as session:
        row = session.get(JobLease, job)
        return row.holder if row is not None else None


def replica_of(replicas: list[Replica], holder: str) -> Replica:
    """The replica whose process id the holder name carries (host-pid-id)."""
    pid = int(holder.split("-")[-2])
    (found,) = [r for r in replicas if r.proc.pid == pid]
    return found


def wait_for(condition: object, attempts: int) -> bool:
    """Check ``condition`` once per period, ``attempts`` times at most."""
    for _ in range(attempts):
        if callable(condition) and condition():
            return True
        time.sleep(PERIOD)
    return False


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_three_replicas_behind_haproxy_under_load(
    settings: Settings,
    services: Services,
    deployed: dict[str, dict[str, str]],
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    haproxy_binary()  # fails under MEDOPS_REQUIRE_HAPROXY=1 when missing, before the setup
    v2 = approved(http, deployed, c=2.0)
    # Predictions from long ago (the fixtures' clock): four complete count:50 windows that
    # every replica's monitoring runs will race to compute.
    for batch in range(2):
        body = {"records": [{"features": r, "patient_ref": f"old-{batch}-{i}"}
                            for i, r in enumerate(random_records(100, seed=batch))]}  # fmt: skip
        assert predict(http, deployed["clin"], body).status_code == 200
    env = clean_env(
        MEDOPS_HOME=str(settings.home),
        MEDOPS_DATABASE_URL=settings.resolved_database_url,
        MEDOPS_SERVING_REFRESH_SECONDS=str(PERIOD / 2),
        MEDOPS_ALERT_EVALUATE_SECONDS=str(PERIOD),
        MEDOPS_ALERT_DISPATCH_SECONDS=str(PERIOD),
        MEDOPS_MONITOR_INTERVAL_SECONDS=str(PERIOD),
        MEDOPS_MONITOR_WINDOW="count:50",
        MEDOPS_AUDIT_CHECKPOINT_SECONDS="5",
        MEDOPS_AUDIT_CHECKPOINT_RECORDS="200",
    )
    clinician = login(settings, "user-clinician")
    engineer = login(settings, "user-ml-engineer")
    replicas = [start_replica(env, tmp_path / f"replica-{n}.log") for n in range(3)]
    proxy = start_haproxy(tmp_path, [r.port for r in replicas])
    db = Database(settings.resolved_database_url)
    load = Load()
    threads = [threading.Thread(target=client, args=(proxy.url, clinician, load, n))
               for n in range(3)]  # fmt: skip
    changes: list[int] = []  # the alias changes acknowledged, in order
    try:
        for thread in threads:
            thread.start()
        auth = {"Authorization": f"Bearer {engineer}"}
        with httpx.Client(base_url=proxy.url, headers=auth, timeout=30) as through:
            for n, version in enumerate([v2, 1, v2, 1, v2, 1, v2]):
                moved = through.put(f"/api/v1/models/{NAME}/aliases/production",
                                    json={"version": version, "reason": f"change {n}"})  # fmt: skip
                assert moved.status_code == 200, moved.text
                changes.append(version)
                for replica in replicas:  # monitoring started on every replica directly
                    run = httpx.post(
                        f"{replica.url}/api/v1/monitoring/run",
                        json={"window": "count:50"}, headers=auth, timeout=60,
                    )  # fmt: skip
                    assert run.status_code == 200, run.text
        assert wait_for(lambda: all(holder_of(db, job) for job in LED[:2]), 20)
        leader = holder_of(db, "alerts.evaluate")
        assert leader is not None
        victim = replica_of(replicas, leader)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        victim.killed = True
        # The lease lasts two periods and LEASE_GRACE: another replica leads soon after.
        bound = int(3 + LEASE_GRACE / PERIOD) + 5  # periods (+5: the check's own pace)
        assert wait_for(lambda: holder_of(db, "alerts.evaluate") not in (None, leader), bound)
        with httpx.Client(base_url=proxy.url, headers=auth, timeout=30) as through:
            moved = through.put(f"/api/v1/models/{NAME}/aliases/production",
                                json={"version": 1, "reason": "after the kill"})  # fmt: skip
            assert moved.status_code == 200, moved.text
            changes.append(1)
        wait_for(lambda: False, 3)  # a few more periods of load and scheduled work
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        proxy.stop()
        # A replica that stops gives its leases up at once, so one still running may take
        # over while the others stop: that hand-over is by design and not counted below.
        stopping_at = log_time()
        for replica in replicas:
            if not replica.killed:
                replica.proc.terminate()
        for replica in replicas:
            replica.proc.wait(timeout=30)

    try:
        key = signing.load_or_create(settings.resolved_audit_key_file).public_key()
        report, records = verify_database(db, rows=check_rows, public_key=key)
        with db.session() as session:
            stored = Counter(session.scalars(select(Prediction.id)))
            windows = Counter(session.execute(select(
                MonitoringResult.deployment, MonitoringResult.version,
                MonitoringResult.window_kind, MonitoringResult.sequence)).all())  # fmt: skip
            alias = session.scalar(
                select(ModelAlias.version).where(ModelAlias.alias == "production")
            )
            checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
            chains = set(session.scalars(select(AuditEvent.chain_id).distinct()))
    finally:
        db.dispose()

    assert len(load.acknowledged) >= 100, f"too little load to mean anything: {load.refused}"
    assert report.ok, report.first
    # Every acknowledged prediction stored once, audited once.
    assert all(stored[p] == 1 for p in load.acknowledged)
    audited = Counter(r["resource_id"] for r in records if r["action"] == "prediction.create")
    assert all(audited[p] == 1 for p in load.acknowledged)
    # Every monitoring window once (and some were computed, on several replicas' runs).
    assert len(windows) >= 4
    assert max(windows.values()) == 1
    # No alias change lost: the last acknowledged one stands; each one audited once (plus
    # the fixture's first promotion).
    assert alias == changes[-1]
    production = f"{NAME}@production"
    moves = [r for r in records if r["resource_type"] == "model_alias"
             and r["resource_id"] == production and r["outcome"] == "success"]  # fmt: skip
    assert len(moves) == len(changes) + 1
    # Checkpoints were signed, covering the chains of every replica (plus the fixtures').
    assert checkpoints
    assert len(chains) >= 4
    # Scheduled work under one leader at a time until the shutdown: alert evaluation changed
    # hands once (the kill); the others never had two leaders taking turns.
    evaluations = runs_of(replicas, "alerts.evaluate", before=stopping_at)
    assert len(evaluations.tenures()) == 2, evaluations.tenures()
    assert evaluations.tenures()[0] == leader
    for job in ("monitoring.run", "audit.checkpoint"):
        tenures = runs_of(replicas, job, before=stopping_at).tenures()
        assert 1 <= len(tenures) <= 2, (job, tenures)
        assert len(tenures) == len(set(tenures)), (job, tenures)
