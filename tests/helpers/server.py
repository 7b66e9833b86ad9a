"""A real `medops server` process on a free port of the loopback, and killing one under load."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

MEDOPS = str(Path(sys.executable).with_name("medops"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, *, workers: int = 1) -> subprocess.Popen[str]:
    """``medops server`` in a process group of its own (its workers, when more than one, are
    in it too: ``kill_under_load`` kills the whole group)."""
    proc = subprocess.Popen(
        [MEDOPS, "server", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def wait_ready(url: str, *, verify: ssl.SSLContext | bool = True, seconds: float = 30) -> None:
    """Wait until ``url``/readyz answers 200 (raise when it does not within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


def kill_under_load(
    proc: subprocess.Popen[str],
    threads: list[threading.Thread],
    stop: threading.Event,
    *,
    seconds: float,
) -> None:
    """Start the client threads, SIGKILL the server (every process of its group: a worker
    must not outlive its parent) after ``seconds``, then stop them."""
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


def assert_restarts(env: dict[str, str]) -> None:
    """The server starts again on the same database after the kill."""
    restarted = start_server(env, free_port())
    try:
        assert restarted.poll() is None
    finally:
        restarted.terminate()
        restarted.wait(timeout=15)
