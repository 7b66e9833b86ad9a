"""Running servers evaluate alerts by themselves, once per tick across replicas: two server
processes on one database share the ``alerts.evaluate`` lease (one holder at a time), and
the /metrics page shows the open-alert gauge."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import select

from medops.db.engine import Database
from medops.jobs import JobLease
from medops.services import Services
from tests.helpers.alerting import PERSON, hooked
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import free_port, start_server


def test_two_servers_evaluate_under_one_lease(tmp_path: Path, empty_db_url: str) -> None:
    """With MEDOPS_ALERT_EVALUATE_SECONDS=0.5 the lease row appears; sampled for a few
    seconds it always names one holder, which keeps extending it."""
    env = clean_env(
        MEDOPS_HOME=str(tmp_path / "home"),
        MEDOPS_DATABASE_URL=empty_db_url,
        MEDOPS_ALERT_EVALUATE_SECONDS="0.5",
    )
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD="harvest-lantern-pine")
    servers = [start_server(env, free_port()) for _ in range(2)]
    database = Database(empty_db_url)
    try:
        seen: list[tuple[str, object]] = []
        deadline = time.monotonic() + 30
        while len(seen) < 6 and time.monotonic() < deadline:
            time.sleep(0.5)
            with database.session() as session:
                row = session.scalars(
                    select(JobLease).where(JobLease.name == "alerts.evaluate")
                ).first()
                if row is not None:
                    seen.append((row.holder, row.until))
        assert len(seen) == 6
        assert len({holder for holder, _ in seen}) == 1
        assert len({until for _, until in seen}) > 1  # extended tick after tick
    finally:
        database.dispose()
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=15)


def test_the_metrics_page_counts_open_alerts(http: httpx.Client, services: Services) -> None:
    """medops_alerts{alertname,deployment,severity,team,state} is 1 for a firing alert."""
    hooked(services).set("drift_detected", 1, deployment="sepsis")
    services.alerts.evaluate(PERSON)
    scraped = http.get("/metrics").text
    assert (
        'medops_alerts{alertname="DriftDetected",deployment="sepsis",severity="warning",'
        'state="firing",team="data_science"} 1.0'
    ) in scraped
