"""How fast the ``medops`` command answers, next to ``git`` and ``kubectl`` on the same machine.

Run: ``.venv/bin/python benchmarks/startup.py [--runs 15]``. Times whole processes, wall clock,
from spawn to exit (the median of ``--runs`` runs after one warm-up run, so the page cache and
Python's bytecode caches are warm as they are for anyone who types commands all day; the
environment drops PYTHONDONTWRITEBYTECODE), with each process' peak memory (max RSS):

- ``medops --help`` and ``medops --version``;
- ``medops deploy status diabetes`` against a running ``medops server`` (``MEDOPS_URL`` and an
  API token set: the remote path a person at a terminal uses), end to end: the process starts,
  imports what the command needs, asks the server over HTTP and prints the table;
- ``git --help`` and ``kubectl --help`` where they are installed (said when they are not).

Needs GNU time at /usr/bin/time for the memory figure. The server side is prepared by
``serving_medops_setup.py`` (a governed deployment of a
scikit-learn pipeline) in a temporary home, then served by ``medops server`` on a free port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
MEDOPS = str(VENV_BIN / "medops")
TIME = "/usr/bin/time"  # GNU time (Debian package "time")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of ``command``, which must succeed.

    The peak comes from GNU time (``/usr/bin/time -f %M``) around the command: the resource
    usage of a child forked from this Python process would count this process' own memory."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [TIME, "-f", "%M", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        capture_output=False,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {' '.join(lines)}")
    return elapsed, int(lines[-1])


def measure(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float, int]:
    """Median and minimum wall seconds over ``runs`` runs after one warm-up, and peak RSS."""
    timed(command, env)
    results = [timed(command, env) for _ in range(runs)]
    walls = [wall for wall, _ in results]
    return statistics.median(walls), min(walls), max(rss for _, rss in results)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("medops server stopped before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("medops server was not ready within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, int]] = []
    # As installed software runs: Python writes and then reads its bytecode caches (.pyc), which
    # an installer such as pip also writes at install time. PYTHONDONTWRITEBYTECODE, set on
    # some build machines, would make every run compile every module from source again.
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MEDOPS_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    with benchlib.working_folder(None, "medops-startup-") as folder:
        home = folder / "home"
        env = {**base_env, "MEDOPS_HOME": str(home), "NO_COLOR": "1"}
        setup = subprocess.run(  # noqa: S603
            [sys.executable, str(HERE / "serving_medops_setup.py"), str(home)],
            env=env,
            capture_output=True,
            check=True,
        )
        token = setup.stdout.decode().strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603
            [MEDOPS, "server", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url, server)
            local = {**base_env, "MEDOPS_HOME": str(folder / "client"), "NO_COLOR": "1"}
            remote = {**local, "MEDOPS_URL": url, "MEDOPS_TOKEN": token}
            commands: list[tuple[str, list[str], dict[str, str]]] = [
                ("medops --help", [MEDOPS, "--help"], local),
                ("medops --version", [MEDOPS, "--version"], local),
                (
                    "medops deploy status diabetes (remote)",
                    [MEDOPS, "deploy", "status", "diabetes"],
                    remote,
                ),
            ]
            for peer in ("git", "kubectl"):
                found = shutil.which(peer)
                if found is None:
                    print(f"{peer}: not installed on this machine, not measured")  # noqa: T201
                else:
                    commands.append((f"{peer} --help", [found, "--help"], base_env))
            for label, command, command_env in commands:
                median, best, rss = measure(command, command_env, args.runs)
                rows.append((label, median, best, rss))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{'command':<42} {'median s':>9} {'min s':>7} {'peak MiB':>9}")  # noqa: T201
    for label, median, best, rss in rows:
        print(f"{label:<42} {median:>9.3f} {best:>7.3f} {rss / 1024:>9.1f}")  # noqa: T201


if __name__ == "__main__":
    main()
