#!/usr/bin/env python3
# ruff: noqa: T201
"""Measure what one ``medops server`` pod needs: the figures behind the Deployment's
resource requests and limits (deploy/kubernetes/base/deployment.yaml).

Run from the repository root with the project's venv::

    .venv/bin/python deploy/kubernetes/measure_resources.py [--seconds 30] [--clients 4]

What it does, on a fresh SQLite home in a temporary folder:

1. ``benchmarks/serving_medops_setup.py`` makes a governed installation: the diabetes
   classifier (scikit-learn, exported to ONNX) registered, validated, signed, promoted and
   deployed as ``diabetes``, and an API token of a clinician (printed on stdout).
2. ``medops server --host 127.0.0.1 --port P`` starts, one process as in a pod (the
   container's command, no ``--workers``), and ``/readyz`` is polled until 200.
3. Idle: ``process_resident_memory_bytes`` read from ``/metrics`` after the first requests.
4. Load, one phase per request shape: ``--clients`` threads, each with its own keep-alive
   HTTP connection, POST ``/api/v1/deployments/diabetes/predict`` in a closed loop for
   ``--seconds`` seconds (one record per request, then 100 records per request). During a
   phase ``/metrics`` is read every second: the peak ``process_resident_memory_bytes``, and
   CPU as the growth of ``process_cpu_seconds_total`` over the phase divided by its length
   (cores used by the server process; the load generator is another process).

It prints one JSON document: the figures per phase, the machine's core count and load average
(this machine is shared, so the CPU share a phase gets is a floor of what the server could use).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREDICT = "/api/v1/deployments/diabetes/predict"
ROW = {
    "age": 59.0,
    "sex": 2.0,
    "bmi": 32.1,
    "bp": 101.0,
    "s1": 157.0,
    "s2": 93.2,
    "s3": 38.0,
    "s4": 4.0,
    "s5": 4.8598,
    "s6": 87.0,
}


@dataclass(frozen=True)
class Phase:
    name: str
    records_per_request: int
    seconds: float
    requests_ok: int
    requests_failed: int
    requests_per_second: float
    cpu_cores: float
    rss_peak_mib: float
    rss_end_mib: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"/metrics has no {name}")
    return float(match.group(1))


def _drive(base: str, token: str, records: int, seconds: float, clients: int, name: str) -> Phase:
    body = {"records": [{"features": ROW} for _ in range(records)]}
    stop = threading.Event()
    ok = [0] * clients
    failed = [0] * clients

    def worker(index: int) -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            while not stop.is_set():
                if http.post(PREDICT, json=body).status_code == 200:
                    ok[index] += 1
                else:
                    failed[index] += 1

    with httpx.Client(base_url=base, timeout=10) as scraper:
        cpu_start = _metric(scraper.get("/metrics").text, "process_cpu_seconds_total")
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        peak = 0.0
        rss = 0.0
        while time.monotonic() - started < seconds:
            time.sleep(1)
            text = scraper.get("/metrics").text
            rss = _metric(text, "process_resident_memory_bytes")
            peak = max(peak, rss)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        text = scraper.get("/metrics").text
        cpu = _metric(text, "process_cpu_seconds_total") - cpu_start
        rss = _metric(text, "process_resident_memory_bytes")
        peak = max(peak, rss)
    return Phase(
        name=name,
        records_per_request=records,
        seconds=round(elapsed, 1),
        requests_ok=sum(ok),
        requests_failed=sum(failed),
        requests_per_second=round(sum(ok) / elapsed, 1),
        cpu_cores=round(cpu / elapsed, 3),
        rss_peak_mib=round(peak / 2**20, 1),
        rss_end_mib=round(rss / 2**20, 1),
    )


def main(seconds: float, clients: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="medops-measure-"))
    home = folder / "home"
    server: subprocess.Popen[bytes] | None = None
    try:
        setup = subprocess.run(  # noqa: S603 - fixed command
            [str(BIN / "python"), str(ROOT / "benchmarks" / "serving_medops_setup.py"), str(home)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT / "benchmarks",
        )
        token = setup.stdout.strip().splitlines()[-1]
        env = dict(os.environ)
        env.update({"MEDOPS_HOME": str(home), "MEDOPS_MFA_REQUIRED_ROLES": ""})
        port = _free_port()
        server = subprocess.Popen(  # noqa: S603 - fixed command
            [str(BIN / "medops"), "server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > 60:
                raise SystemExit("the server did not become ready in 60 s")
            time.sleep(0.1)
        ready_seconds = time.monotonic() - started
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            for _ in range(20):  # the model loaded, first batches done
                http.post(PREDICT, json={"records": [{"features": ROW}]}).raise_for_status()
        idle = _metric(httpx.get(f"{base}/metrics").text, "process_resident_memory_bytes")
        phases = [
            _drive(base, token, 1, seconds, clients, "1 record per request"),
            _drive(base, token, 100, seconds, clients, "100 records per request"),
        ]
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "load_average": os.getloadavg()},
            "clients": clients,
            "ready_after_seconds": round(ready_seconds, 2),
            "rss_idle_mib": round(idle / 2**20, 1),
            "phases": [asdict(phase) for phase in phases],
        }
        print(json.dumps(report, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    main(args.seconds, args.clients)
