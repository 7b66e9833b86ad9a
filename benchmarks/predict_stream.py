#!/usr/bin/env python3
# ruff: noqa: T201, S603
"""Peak memory and time of ``medops predict --input big.csv --output results.csv``.

A file of N rows is streamed to a deployment in batches within the server's per-request limit
(medops/bulk_predict.py): memory should not grow with N. This measures the CLI process's peak
resident set size (``wait4``'s ``ru_maxrss``) and its wall time for files of several sizes:

- ``remote``: the CLI talks to ``medops server`` in another process (MEDOPS_URL), so the
  figure is the client's alone;
- ``embedded``: no server; the CLI runs the app in its own process (the SQLite file in
  MEDOPS_HOME), so the figure is client and server together.

The home comes from ``serving_medops_setup.py`` (the diabetes pipeline through the governed
path, deployed as ``diabetes``; a clinician's API token). Rows are drawn from scikit-learn's
diabetes data with noise, with a patient reference each.

Run with the project's venv:
    .venv/bin/python benchmarks/predict_stream.py [--rows 20000,200000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from benchlib import working_folder
from sklearn.datasets import load_diabetes  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
MEDOPS = str(Path(sys.executable).with_name("medops"))


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    data = load_diabetes(as_frame=True, scaled=False).data.astype("float64")
    rng = np.random.default_rng(seed)
    names = list(data.columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_ref", *names])
        chunk = 50_000
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            rows = data.to_numpy()[rng.integers(0, len(data), size)]
            rows = rows + rng.normal(0, 0.02, rows.shape) * rows.std(axis=0)
            rows[:, 0] = np.clip(np.round(rows[:, 0]), 18, 110)  # age
            rows[:, 1] = rng.choice([1.0, 2.0], size)  # sex
            for i, row in enumerate(rows):
                writer.writerow([f"pt-{start + i}", *(f"{v:.4f}" for v in row)])


def measure(args: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """(exit status, seconds, peak RSS in MiB) of one CLI run."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [MEDOPS, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stderr is not None:
        err = process.stderr.read().decode()
        if process.returncode:
            print(err, file=sys.stderr)
    return process.returncode, seconds, usage.ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="20000,200000")
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args()
    sizes = [int(n) for n in options.rows.split(",")]
    with working_folder(options.workdir, "medops-predict-stream-") as work:
        home = work / "home"
        token = (
            subprocess.run(
                [sys.executable, str(HERE / "serving_medops_setup.py"), str(home)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}
        base |= {"MEDOPS_HOME": str(home), "MEDOPS_TOKEN": token, "MEDOPS_MFA_REQUIRED_ROLES": ""}
        base["MEDOPS_MONITOR_INTERVAL_SECONDS"] = "0"
        port = free_port()
        log = (work / "server.log").open("wb")
        server = subprocess.Popen(
            [MEDOPS, "server", "--port", str(port)], env=base, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(f"{url}/readyz", timeout=1):  # noqa: S310
                        break
                except OSError:
                    time.sleep(0.1)
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
            print("| mode | rows | file MiB | seconds | rows/s | peak RSS MiB |")
            print("|---|---|---|---|---|---|")
            for n in sizes:
                data = work / f"rows-{n}.csv"
                write_rows(data, n)
                mib = data.stat().st_size / 2**20
                for mode, env in (("remote", base | {"MEDOPS_URL": url}), ("embedded", base)):
                    out = work / f"results-{mode}-{n}.csv"
                    args = ["predict", "diabetes", "--input", str(data), "--output", str(out)]
                    code, seconds, peak = measure(args, env)
                    assert code == 0, f"{mode} {n}: exit {code}"
                    with out.open() as handle:
                        assert sum(1 for _ in handle) == n + 1
                    print(
                        f"| {mode} | {n:,} | {mib:.1f} | {seconds:.1f} | {n / seconds:,.0f} "
                        f"| {peak:.0f} |"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


if __name__ == "__main__":
    main()
