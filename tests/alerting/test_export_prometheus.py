"""The exported rules in a real Prometheus (Debian's ``prometheus``) scraping what a real
medops app serves on /metrics after real predictions: every rule evaluates without error,
the SLO series come out per deployment, and a healthy deployment raises nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from medops.alerting.export_files import export_prometheus
from medops.alerting.export_reference import builtin_rules
from tests.helpers.registry import DEPLOYMENT, predict, random_records
from tests.helpers.server import free_port

REQUIRE_ENV = "MEDOPS_REQUIRE_PROMTOOL"
ERRORS = "deployment:medops_prediction_errors:ratio_rate"
SLOW = "deployment:medops_prediction_slow:ratio_rate"


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        why = "prometheus is not installed (apt-get install prometheus)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}, and {REQUIRE_ENV}=1")
        pytest.skip(why)
    return found


class _Scrapes:
    """A loopback /metrics that answers each snapshot in turn, then the last one forever."""

    def __init__(self, snapshots: list[str]) -> None:
        self.snapshots = snapshots
        self.served = 0

    def next(self) -> bytes:
        text = self.snapshots[min(self.served, len(self.snapshots) - 1)]
        self.served += 1
        return text.encode()


@pytest.fixture
def exposition() -> Iterator[tuple[_Scrapes, int]]:
    """A loopback HTTP server for Prometheus to scrape, and its port."""
    scrapes = _Scrapes([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = scrapes.next()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield scrapes, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, path: str, **query: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["data"]


def _by_deployment(port: int, query: str) -> dict[str, str]:
    """The instant value of each deployment's series of ``query``."""
    found = _get(port, "/api/v1/query", query=query)["result"]
    return {r["metric"]["deployment"]: r["value"][1] for r in found}


def _body(seed: int) -> dict[str, Any]:
    return {"records": [{"features": r} for r in random_records(2, seed=seed)]}


def _wait(check: Any, seconds: float = 40) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_prometheus_evaluates_the_exported_rules_over_medops_metrics(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    exposition: tuple[_Scrapes, int],
    tmp_path: Path,
) -> None:
    """Over two scrapes of a live app's /metrics (predictions in between), Prometheus
    evaluates every exported rule with health ok, records the availability and latency
    ratios of the deployment (errors 0, not absent, before any 5xx), and fires no alert."""
    binary = _prometheus()
    clin = deployed["clin"]
    for seed in range(3):
        assert predict(http, clin, _body(seed)).status_code == 200
    assert predict(http, clin, {"records": []}, name="nonexistent").status_code == 404
    first = http.get("/metrics").text
    for seed in range(3, 9):
        assert predict(http, clin, _body(seed)).status_code == 200
    scrapes, target = exposition
    scrapes.snapshots = [first, http.get("/metrics").text]

    for file in export_prometheus(builtin_rules()).files:
        (tmp_path / file.name).write_text(file.content)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [medops-rules.yml]\n"
        f"scrape_configs: [{{job_name: medops, static_configs: "
        f"[{{targets: ['127.0.0.1:{target}']}}]}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        errors = _wait(lambda: _by_deployment(port, f"{ERRORS}5m").get(DEPLOYMENT))
        assert errors == "0"  # no 5xx yet: 0, not an absent series
        assert _by_deployment(port, f"{ERRORS}1h")[DEPLOYMENT] == "0"
        slow = _by_deployment(port, f"{SLOW}5m")
        assert 0.0 <= float(slow[DEPLOYMENT]) <= 1.0

        def evaluated() -> list[dict[str, Any]] | None:
            rules = [r for g in _get(port, "/api/v1/rules")["groups"] for r in g["rules"]]
            done = all(r["lastEvaluation"] > "2000" for r in rules)
            return rules if done else None

        rules = _wait(evaluated)
        assert rules is not None
        assert len(rules) == 29
        assert {(r["name"], r["health"], r.get("lastError", "")) for r in rules} == {
            (r["name"], "ok", "") for r in rules
        }
        assert _get(port, "/api/v1/alerts")["alerts"] == []
    finally:
        process.terminate()
        process.wait(timeout=30)
