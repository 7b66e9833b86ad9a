"""Debian's haproxy in front of several ``medops server`` replicas (round robin, health check
on /readyz), and replicas started with their logs kept (the record of their scheduled runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from medops.config import Settings
from medops.context import Context, Origin
from medops.services import build_services
from tests.helpers.people import PASSWORD
from tests.helpers.server import MEDOPS, free_port

REQUIRE_ENV = "MEDOPS_REQUIRE_HAPROXY"


def haproxy_binary() -> str:
    """The haproxy executable; skips the test when missing, fails it under
    MEDOPS_REQUIRE_HAPROXY=1 (CI)."""
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"haproxy is not installed and {REQUIRE_ENV}=1: apt-get install haproxy")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return found


def config(port: int, backends: list[int]) -> str:
    """Round robin over ``backends``; a replica failing /readyz twice leaves the rotation; a
    request whose connection fails is tried on another replica."""
    servers = "\n".join(
        f"    server r{n} 127.0.0.1:{p} check inter 500ms fall 2 rise 2"
        for n, p in enumerate(backends)
    )
    return f"""global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
    retry-on conn-failure empty-response

frontend medops
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


@dataclass
class HaProxy:
    """A running haproxy and its address."""

    proc: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_haproxy(folder: Path, backends: list[int]) -> HaProxy:
    """haproxy with a config generated into ``folder``, answering once a replica is ready."""
    binary = haproxy_binary()
    port = free_port()
    cfg = folder / "haproxy.cfg"
    cfg.write_text(config(port, backends))
    subprocess.run([binary, "-c", "-q", "-f", str(cfg)], check=True)
    with (folder / "haproxy.log").open("w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=log, text=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return HaProxy(proc, url)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("haproxy did not answer")


@dataclass
class Replica:
    """One ``medops server`` process, its port and its log file (JSON lines)."""

    proc: subprocess.Popen[str]
    port: int
    log: Path
    killed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self) -> list[dict[str, object]]:
        lines = self.log.read_text(errors="replace").splitlines()
        found = []
        for line in lines:
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:  # the last line of a killed process
                    continue
        return found


def start_replica(env: dict[str, str], log: Path) -> Replica:
    """``medops server`` in its own process group, stderr (its JSON log) kept in ``log``."""
    port = free_port()
    with log.open("w") as stderr:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [MEDOPS, "server", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return Replica(proc, port, log)
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


@dataclass
class Runs:
    """The runs of one scheduled job, in time order, from every replica's log."""

    job: str
    holders: list[str] = field(default_factory=list)

    def tenures(self) -> list[str]:
        """The holders in the order they led: one entry per uninterrupted stretch."""
        led: list[str] = []
        for holder in self.holders:
            if not led or led[-1] != holder:
                led.append(holder)
        return led


def log_time() -> str:
    """Now as the replicas' log lines write it (ISO 8601 UTC with microseconds and Z), so
    the two compare as strings."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def runs_of(replicas: list[Replica], job: str, *, before: str | None = None) -> Runs:
    """Every ``scheduled job ran`` line of ``job``, merged across replicas by timestamp;
    with ``before`` (a :func:`log_time`), only the runs logged earlier."""
    lines = [
        (str(r["timestamp"]), str(r["holder"]))
        for replica in replicas
        for r in replica.records()
        if r.get("event") == "scheduled job ran"
        and r.get("job") == job
        and (before is None or str(r["timestamp"]) < before)
    ]
    return Runs(job, [holder for _, holder in sorted(lines)])


def login(settings: Settings, username: str) -> str:
    """A login on the real clock (the fixtures' tokens were issued on a fixed one)."""
    real = build_services(settings)
    try:
        origin = Context(actor=None, origin=Origin(source_ip="127.0.0.1"))
        return real.logins.login(origin, username, PASSWORD, kind="login").secret
    finally:
        real.close()
