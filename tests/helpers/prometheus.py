"""A real Prometheus (Debian's ``prometheus``) scraping recorded /metrics pages: each target a
loopback HTTP server answering its snapshots in turn, then the last one forever."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from tests.helpers.grafana import REQUIRE_ENV
from tests.helpers.server import free_port

T = TypeVar("T")


@dataclass(frozen=True)
class Exposed:
    """What /metrics served: the names of the samples (``_total``, ``_bucket``... as
    served), and the families declared by a ``# TYPE`` line even without a sample."""

    samples: frozenset[str]
    declared: frozenset[str]
    label_values: frozenset[tuple[str, str]]
    scrapes: tuple[tuple[str, ...], ...] = ()


def exposed_by(*texts: str) -> Exposed:
    samples: set[str] = set()
    declared: set[str] = set()
    labels: set[tuple[str, str]] = set()
    for text in texts:
        for family in text_string_to_metric_families(text):
            declared.add(family.name)
            samples.update(s.name for s in family.samples)
            labels.update(pair for s in family.samples for pair in s.labels.items())
    return Exposed(frozenset(samples), frozenset(declared), frozenset(labels))


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        why = "prometheus is not installed (apt-get install prometheus)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}, and {REQUIRE_ENV}=1")
        pytest.skip(why)
    return found


@contextmanager
def exposition(snapshots: list[str]) -> Iterator[int]:
    """A loopback /metrics answering ``snapshots`` in turn, then the last forever; its port."""
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = snapshots[min(served[0], len(snapshots) - 1)].encode()
            served[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class Sample(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: dict[str, str]


class QueryData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resultType: str  # noqa: N815 - Prometheus' field name
    result: list[Sample]


class QueryAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str
    data: QueryData | None = None
    error: str | None = None


class RuleState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    health: str
    lastError: str = ""  # noqa: N815 - Prometheus' field name
    lastEvaluation: str  # noqa: N815 - Prometheus' field name


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def query(self, expr: str) -> QueryAnswer:
        answer = self.client.post("/api/v1/query", data={"query": expr})
        return QueryAnswer.model_validate_json(answer.content)

    def rules(self) -> list[RuleState]:
        groups = self.client.get("/api/v1/rules").json()["data"]["groups"]
        return [RuleState.model_validate(r) for g in groups for r in g["rules"]]


def wait_for(check: Callable[[], T | None], seconds: float = 60) -> T | None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@contextmanager
def scraping(
    tmp_path: Path, targets: list[list[str]], rule_files: list[Path]
) -> Iterator[Prometheus]:
    """Prometheus scraping each target's snapshots every second, evaluating ``rule_files``
    every second, ready once every target was scraped at least twice."""
    binary = prometheus_binary()
    with ExitStack() as stack:
        ports = [stack.enter_context(exposition(t)) for t in targets]
        names = []
        for path in rule_files:  # every group evaluated at the global second
            loaded = yaml.safe_load(path.read_text())
            for group in loaded["groups"]:
                group.pop("interval", None)
            (tmp_path / path.name).write_text(yaml.safe_dump(loaded))
            names.append(path.name)
        listed = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{', '.join(names)}]\n"
            f"scrape_configs: [{{job_name: medops, static_configs: [{{targets: [{listed}]}}]}}]\n"
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
        server = Prometheus(port)
        stack.callback(server.client.close)
        try:

            def scraped_twice() -> bool:
                # Prometheus listens before it is ready, and answers 503 until then.
                if server.client.get("/-/ready").status_code != 200:
                    return False
                answer = server.query("count_over_time(up[5m]) >= 2")
                return answer.data is not None and len(answer.data.result) == len(ports)

            assert wait_for(scraped_twice), "Prometheus did not scrape every target twice"
            yield server
        finally:
            process.terminate()
            process.wait(timeout=30)
