"""SIGKILL of a real server under prediction load loses no acknowledged prediction."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import select

from medops.audit import signing
from medops.audit.checkpoints import verify_database
from medops.config import Settings
from medops.context import Context, Origin
from medops.db.engine import Database
from medops.rowcheck import check_rows
from medops.services import build_services
from medops.serving.tables import Prediction
from tests.helpers.cli_runner import clean_env
from tests.helpers.people import PASSWORD
from tests.helpers.registry import DEPLOYMENT, random_records
from tests.helpers.server import assert_restarts, free_port, kill_under_load, start_server


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_sigkill_under_prediction_load_keeps_every_acknowledged_prediction(
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    workers: int,
) -> None:
    """Six clients send predictions (single records and batches) to a real server that is
    killed with SIGKILL mid-flight: every prediction answered with 200 has its row and its
    audit record, the audit chains verify, and the server starts again. With two workers,
    each writes its own chain: the clients open a connection per request, so both serve."""
    env = clean_env(
        MEDOPS_HOME=str(settings.home), MEDOPS_DATABASE_URL=settings.resolved_database_url
    )
    # The fixtures' tokens were issued on a fixed clock; the server runs on the real one.
    real = build_services(settings)
    try:
        origin = Context(actor=None, origin=Origin(source_ip="127.0.0.1"))
        token = real.logins.login(origin, "user-clinician", PASSWORD, kind="login").secret
    finally:
        real.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(env, port, workers=workers)
    records = random_records(40, seed=11)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        # One connection per request with two workers, so that both are handed some.
        limits = httpx.Limits(max_keepalive_connections=0 if workers > 1 else None)
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits
        ) as http:
            i = 0
            while not stop.is_set() and i < 5000:
                i += 1
                body = (
                    {"features": records[i % 40], "patient_ref": f"c{n}-{i}"}
                    if n % 2
                    else {"records": [{"features": r} for r in records[:8]]}
                )
                try:
                    answer = http.post(
                        f"/api/v1/deployments/{DEPLOYMENT}/predict", json=body, timeout=5
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    with lock:
                        acknowledged.extend(p["id"] for p in answer.json()["predictions"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    kill_under_load(proc, threads, stop, seconds=3.0)
    assert len(acknowledged) >= 50, "too little load to mean anything"

    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            stored = set(session.scalars(select(Prediction.id)))
        key = signing.load_or_create(settings.resolved_audit_key_file).public_key()
        report, audit_records = verify_database(database, rows=check_rows, public_key=key)
    finally:
        database.dispose()
    assert set(acknowledged) <= stored
    assert report.ok, report.first
    audited = {r["resource_id"] for r in audit_records if r["action"] == "prediction.create"}
    assert set(acknowledged) <= audited
    chains = {r["chain_id"] for r in audit_records if r["action"] == "prediction.create"}
    assert len(chains) == workers

    assert_restarts(env)
