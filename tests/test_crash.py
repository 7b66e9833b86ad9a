"""SIGKILL under concurrent load loses no acknowledged action, and the log still verifies."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from medops.audit import signing
from medops.audit.checkpoints import verify_database
from medops.db.engine import Database
from medops.rowcheck import check_rows
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import assert_restarts, free_port, kill_under_load, start_server

ADMIN_PW = "kestrel-marble-oak"


def test_sigkill_under_load_keeps_every_acknowledged_audit_record(
    tmp_path: Path, empty_db_url: str
) -> None:
    """Four clients create tokens and one is refused over and over (its refusals go through
    the group-commit writer); the server is killed mid-flight. Every answered action has its
    record, the chains verify, and the server starts again on the same database."""
    env = clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_DATABASE_URL=empty_db_url)
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(env, port)
    token = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PW}
    ).json()["access_token"]
    httpx.post(
        f"{url}/api/v1/users",
        json={"username": "nurse", "role": "clinician", "password": "amber-willow-trail"},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    nurse = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": "nurse", "password": "amber-willow-trail"}
    ).json()["access_token"]
    acknowledged: list[str] = []
    refused: list[str] = []  # refusals are audited through the group-commit writer
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                try:
                    answer = http.post("/api/v1/tokens", json={"name": f"c{n}-{i}"}, timeout=5)
                except httpx.TransportError:
                    return
                if answer.status_code == 201:
                    with lock:
                        acknowledged.append(answer.json()["id"])

    def intruder() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {nurse}"}) as http:
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                request_id = f"intrude-{i}"
                try:
                    answer = http.post(
                        "/api/v1/users", json={}, headers={"X-Request-ID": request_id}, timeout=5
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 403:
                    with lock:
                        refused.append(request_id)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=intruder))
    kill_under_load(proc, threads, stop, seconds=2.0)
    assert len(acknowledged) >= 20, "too little load to mean anything"

    database = Database(empty_db_url)
    try:
        key = signing.load_or_create(tmp_path / "home" / "audit-signing.key").public_key()
        report, records = verify_database(database, rows=check_rows, public_key=key)
    finally:
        database.dispose()
    assert report.ok, report.first
    audited = {r["resource_id"] for r in records if r["action"] == "token.create"}
    assert set(acknowledged) <= audited
    assert len(refused) >= 5
    denials = {r["request_id"] for r in records if r["outcome"] == "denied"}
    assert set(refused) <= denials

    assert_restarts(env)
