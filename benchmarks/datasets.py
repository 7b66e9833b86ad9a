"""Dataset versions: medops against DVC, side by side in one run (issue 20).

Two data sets of random bytes (fixed seed), as the issue measures them: 500 MiB in 2,000 files
of 256 KiB, and 20,000 files of 16 KiB (``--small``: 200 and 2,000 files, for a quick check).
For each, medians of ``--runs`` fresh runs (a new folder, repository, home and remote each
time; the page cache stays warm, as in the issue's figures) of:

- DVC 3.67.1 (``benchmarks/dvc-peers/setup.sh`` makes ``benchmarks/.dvc-venv``): ``dvc add``
  the first time and unchanged, ``dvc push`` to a local remote, ``dvc pull`` into a fresh
  ``git clone`` (fetch and checkout);
- the medops CLI: ``medops data add NAME DIR --json`` the first time and unchanged, ``medops
  data push NAME@latest`` to a folder remote, and on a fresh home with the same KEK and remote
  ``medops data pull NAME@latest`` + ``medops data checkout NAME@latest DIR``;
- the engine alone, in a child process: scan + hash (all cores) + pack, and the hash again
  through the stat cache;
- the floor: hashlib SHA-256 of every file on one core.

Each command runs as a child process and its peak resident memory comes from ``os.wait4``
(that child and its descendants). Run with the project's venv so the engine imports::

    .venv/bin/python benchmarks/datasets.py [--small] [--runs 3] [--only dvc,medops,engine]

It prints a markdown table to paste into benchmarks/RESULTS.md. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
KIB = 1024
MIB = 1024 * 1024
SEED = 20
PASSWORD = "benchmark-password-not-for-production"  # noqa: S105 - a throwaway home
NAME = "bench"
STEPS = ("add (first)", "add (unchanged)", "push", "pull (fresh clone)")


@dataclass(frozen=True)
class DataSet:
    """A data set of ``files`` random files of ``size`` bytes each."""

    label: str
    files: int
    size: int

    @property
    def total(self) -> int:
        return self.files * self.size


FULL = (
    DataSet("2,000 files of 256 KiB", 2000, 256 * KIB),
    DataSet("20,000 files of 16 KiB", 20000, 16 * KIB),
)
SMALL = (
    DataSet("200 files of 256 KiB", 200, 256 * KIB),
    DataSet("2,000 files of 16 KiB", 2000, 16 * KIB),
)


@dataclass
class Sample:
    """Seconds and peak RSS (KiB) of one step in one run, or the error that stopped it."""

    seconds: float | None = None
    peak_kib: int | None = None
    error: str | None = None
    stdout: str = ""


@dataclass
class Results:
    """step -> samples over the runs."""

    steps: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, step: str, sample: Sample) -> None:
        self.steps.setdefault(step, []).append(sample)


class StepFailedError(Exception):
    """A child command failed; the rest of that tool's run is skipped."""


def generate(folder: Path, data: DataSet) -> None:
    """The data set's files under ``folder`` (100 per sub-folder), random bytes, fixed seed."""
    rng = random.Random(SEED + data.files)  # noqa: S311 - test data, fixed seed
    for number in range(data.files):
        sub = folder / f"part{number // 100:03}"
        if number % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{number:05}.bin").write_bytes(rng.randbytes(data.size))


def run(command: list[str], *, cwd: Path, env: dict[str, str], stdin: str | None = None) -> Sample:
    """Run ``command``; its wall time, peak RSS (``os.wait4``: this child and its descendants)
    and standard output; StepFailedError with its last error line if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 - the benchmark's own commands
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        if proc.stdin is not None:
            proc.stdin.write((stdin or "").encode())
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = (stderr.strip() or stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise StepFailedError(f"`{' '.join(command[1:5])}` exit {proc.returncode}: {tail[0][:200]}")
    return Sample(seconds=seconds, peak_kib=usage.ru_maxrss, stdout=stdout)


run_measured = run


def quiet_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **benchlib.QUIET_ENV, "DVC_NO_ANALYTICS": "1", **extra}
    env.setdefault("GIT_AUTHOR_NAME", "bench")
    env.setdefault("GIT_AUTHOR_EMAIL", "bench@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "bench")
    env.setdefault("GIT_COMMITTER_EMAIL", "bench@example.invalid")
    return env


def dvc_run(folder: Path, source: Path, dvc: Path, results: Results) -> None:
    """One fresh DVC run: add first and unchanged, push, pull into a fresh clone."""
    repo, remote, clone = folder / "dvc-repo", folder / "dvc-remote", folder / "dvc-clone"
    repo.mkdir()
    env = quiet_env(DVC_SITE_CACHE_DIR=str(folder / "dvc-site-cache"))
    run(["git", "init", "-q"], cwd=repo, env=env)
    run([str(dvc), "init", "-q"], cwd=repo, env=env)
    run([str(dvc), "config", "core.analytics", "false"], cwd=repo, env=env)
    run([str(dvc), "remote", "add", "-d", "local", str(remote)], cwd=repo, env=env)
    shutil.copytree(source, repo / "data")
    time.sleep(0.2)
    results.add("add (first)", run_measured([str(dvc), "add", "data"], cwd=repo, env=env))
    results.add("add (unchanged)", run_measured([str(dvc), "add", "data"], cwd=repo, env=env))
    results.add("push", run_measured([str(dvc), "push"], cwd=repo, env=env))
    run(["git", "add", "data.dvc", ".gitignore", ".dvc/config"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "data"], cwd=repo, env=env)
    run(["git", "clone", "-q", str(repo), str(clone)], cwd=folder, env=env)
    results.add("pull (fresh clone)", run_measured([str(dvc), "pull"], cwd=clone, env=env))
    check_same(source, clone / "data")


def _serve(medops: Path, folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``medops server`` on a free loopback port for this home; its URL once it answers."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(  # noqa: S603 - the benchmark's own commands
        [str(medops), "server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310
                return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise StepFailedError("medops server did not start") from None
            time.sleep(0.2)


SERVERS: list[subprocess.Popen[bytes]] = []
SERVER_MODE = False  # --server: the CLI talks to a running `medops server` (MEDOPS_URL)


def medops_run(folder: Path, source: Path, medops: Path, results: Results) -> None:
    """One fresh medops run: add first and unchanged, push, pull + checkout on a fresh home
    (embedded: each command runs the app in-process; --server: against a running server)."""
    try:
        _medops_run(folder, source, medops, results)
    finally:
        while SERVERS:
            server = SERVERS.pop()
            server.terminate()
            server.wait(timeout=30)


def _medops_run(folder: Path, source: Path, medops: Path, results: Results) -> None:
    kek = "bench:" + base64.b64encode(os.urandom(32)).decode()
    remote = folder / "medops-remote"
    remote.mkdir()
    data = folder / "medops-data"
    shutil.copytree(source, data)

    def home(name: str) -> dict[str, str]:
        env = quiet_env(
            MEDOPS_HOME=str(folder / name),
            MEDOPS_DATA_KEK=kek,
            MEDOPS_DATA_REMOTE=str(remote),
            MEDOPS_ADMIN_PASSWORD=PASSWORD,
            MEDOPS_MFA_REQUIRED_ROLES="",
        )
        env.pop("MEDOPS_URL", None)
        env.pop("MEDOPS_DATABASE_URL", None)
        run([str(medops), "init"], cwd=folder, env=env)
        if SERVER_MODE:
            server, url = _serve(medops, folder, env)
            SERVERS.append(server)
            env = {**env, "MEDOPS_URL": url}
        run(
            [str(medops), "login", "-u", "admin", "--password-stdin"],
            cwd=folder,
            env=env,
            stdin=PASSWORD + "\n",
        )
        # Datasets are added by a data scientist (admins manage accounts, not data).
        run(
            [str(medops), "users", "create", "bench-ds", "--role", "data_scientist",
             "--password-stdin"],
            cwd=folder,
            env=env,
            stdin=PASSWORD + "\n",
        )  # fmt: skip
        run(
            [str(medops), "login", "-u", "bench-ds", "--password-stdin"],
            cwd=folder,
            env=env,
            stdin=PASSWORD + "\n",
        )
        return env

    first = home("medops-home-a")
    time.sleep(0.2)
    add = [str(medops), "data", "add", NAME, str(data), "--json"]
    results.add("add (first)", run_measured(add, cwd=folder, env=first))
    results.add("add (unchanged)", run_measured(add, cwd=folder, env=first))
    results.add(
        "push", run_measured([str(medops), "data", "push", f"{NAME}@1"], cwd=folder, env=first)
    )
    second = home("medops-home-b")
    out = folder / "medops-checkout"
    pull = run_measured([str(medops), "data", "pull", f"{NAME}@1"], cwd=folder, env=second)
    checkout = run_measured(
        [str(medops), "data", "checkout", f"{NAME}@1", str(out), "--purpose", "benchmark"],
        cwd=folder,
        env=second,
    )
    results.add(
        "pull (fresh clone)",
        Sample(
            seconds=(pull.seconds or 0) + (checkout.seconds or 0),
            peak_kib=max(pull.peak_kib or 0, checkout.peak_kib or 0),
        ),
    )
    check_same(source, out)


def engine_run(folder: Path, source: Path, results: Results) -> None:
    """The engine alone in a child process: scan+hash+pack, hash via the stat cache; floor."""
    del folder
    for mode, step in (
        ("engine", "engine: scan+hash+pack"),
        ("cached", "engine: hash, stat cache warm"),
        ("floor", "hashlib floor (1 core)"),
    ):
        command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(source)]
        sample = run(command, cwd=HERE, env=quiet_env())
        # The child times its own work: no interpreter start or imports (and for the stat
        # cache, only the warm pass); the peak RSS is the whole child's.
        sample.seconds = json.loads(sample.stdout)["seconds"]
        results.add(step, sample)


def child(mode: str, source: Path) -> None:
    """Inside the child process: do one engine measurement (timing printed is not used)."""
    started = time.perf_counter()
    if mode == "floor":
        buffer = bytearray(MIB)
        view = memoryview(buffer)
        for path in sorted(source.rglob("*")):
            if path.is_file():
                hasher = hashlib.sha256()
                with path.open("rb", buffering=0) as handle:
                    while count := handle.readinto(buffer):
                        hasher.update(view[:count])
        sys.stdout.write(json.dumps({"seconds": time.perf_counter() - started}) + "\n")
        return
    from medops.datasets.hashing import hash_files
    from medops.datasets.packing import Packer
    from medops.datasets.scan import scan
    from medops.datasets.statcache import StatCache

    if mode == "engine":
        started = time.perf_counter()
        files = scan([source])
        entries = hash_files(files)
        for _ in Packer().objects(list(zip(files, entries, strict=True))):
            pass
        sys.stdout.write(json.dumps({"seconds": time.perf_counter() - started}) + "\n")
        return
    cache_path = Path(tempfile.gettempdir()) / f"medops-bench-statcache-{os.getpid()}.sqlite"
    try:
        with StatCache(cache_path) as cache:
            hash_files(scan([source]), cache=cache)
        started = time.perf_counter()
        with StatCache(cache_path) as cache:
            hash_files(scan([source]), cache=cache)
        # The child reports the warm pass only (the cold pass is "engine: scan+hash+pack").
        sys.stdout.write(json.dumps({"seconds": time.perf_counter() - started}) + "\n")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(cache_path) + suffix).unlink(missing_ok=True)


def check_same(source: Path, copy: Path) -> None:
    """StepFailedError unless ``copy`` has exactly ``source``'s files and bytes."""
    want = {p.relative_to(source): p for p in source.rglob("*") if p.is_file()}
    have = {p.relative_to(copy): p for p in copy.rglob("*") if p.is_file()}
    if set(want) != set(have) or any(want[k].read_bytes() != have[k].read_bytes() for k in want):
        raise StepFailedError(f"{copy} does not hold the same files as {source}")


def median(samples: list[Sample]) -> tuple[float | None, int | None, str | None]:
    ok = [s for s in samples if s.seconds is not None]
    errors = [s.error for s in samples if s.error]
    if not ok:
        return None, None, errors[0] if errors else "not run"
    peaks = [s.peak_kib for s in ok if s.peak_kib is not None]
    return (
        statistics.median(s.seconds for s in ok if s.seconds is not None),
        max(peaks) if peaks else None,
        None,
    )


def table(data: DataSet, dvc: Results, medops: Results, engine: Results, runs: int) -> str:
    lines = [
        f"### {data.label} ({data.total / MIB:.0f} MiB), medians of {runs} fresh runs",
        "",
        "| step | DVC 3.67.1 s | medops s | speed-up | DVC peak MiB | medops peak MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for step in STEPS:
        d_s, d_m, d_err = median(dvc.steps.get(step, []))
        m_s, m_m, m_err = median(medops.steps.get(step, []))
        speed = f"{d_s / m_s:.1f}x" if d_s and m_s else "–"
        lines.append(f"| {step} | {fmt(d_s)} | {fmt(m_s)} | {speed} | {mib(d_m)} | {mib(m_m)} |")
        notes += [f"- DVC failed: {d_err}" for _ in [0] if d_err and d_err != "not run"]
        notes += [f"- medops failed: {m_err}" for _ in [0] if m_err and m_err != "not run"]
    for step, samples in engine.steps.items():
        e_s, e_m, e_err = median(samples)
        lines.append(f"| {step} | | {fmt(e_s)} | | | {mib(e_m)} |")
        notes += [f"- {step}: {e_err}" for _ in [0] if e_err]
    if notes:
        lines += ["", *sorted(set(notes))]
    return "\n".join(lines)


def fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.2f}"


def mib(kib: int | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.0f}"


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def guarded(results: Results, number: int, work: Callable[..., None], *args: object) -> None:
    """Run one tool's fresh run; on a failure, record it for each step this run did not reach."""
    try:
        work(*args)
    except (StepFailedError, OSError) as exc:
        for step in STEPS:
            samples = results.steps.setdefault(step, [])
            if len(samples) <= number:
                samples.append(Sample(error=str(exc)))
        sys.stderr.write(f"  failed: {exc}" + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 and 2,000 files: a quick check")
    parser.add_argument("--runs", type=int, default=3, help="fresh runs per tool (median)")
    parser.add_argument(
        "--only", default="dvc,medops,engine", help="comma-separated: dvc, medops, engine"
    )
    parser.add_argument("--dvc", type=Path, default=HERE / ".dvc-venv" / "bin" / "dvc")
    parser.add_argument("--medops", type=Path, default=Path(sys.executable).parent / "medops")
    parser.add_argument(
        "--folder", type=Path, default=None, help="work here (kept) instead of a temp folder"
    )
    parser.add_argument(
        "--server",
        action="store_true",
        help="the medops CLI talks to a running `medops server` per home (MEDOPS_URL)",
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    only = set(args.only.split(","))
    global SERVER_MODE  # noqa: PLW0603 - one flag for the whole run
    SERVER_MODE = args.server
    if "dvc" in only and not args.dvc.exists():
        sys.stderr.write(f"{args.dvc} is missing: run bash benchmarks/dvc-peers/setup.sh" + "\n")
        return 2
    sections = [f"Machine: {machine()}", ""]
    with benchlib.working_folder(args.folder, "medops-datasets-bench-") as work:
        for data in SMALL if args.small else FULL:
            source = work / f"source-{data.files}"
            if not source.exists():
                generate(source, data)
            dvc, medops, engine = Results(), Results(), Results()
            for number in range(args.runs):
                sys.stderr.write(f"{data.label}: run {number + 1}/{args.runs}" + "\n")
                for tool, results, work_fn, extra in (
                    ("dvc", dvc, dvc_run, (args.dvc,)),
                    ("medops", medops, medops_run, (args.medops,)),
                ):
                    if tool in only:
                        folder = work / f"run-{tool}-{data.files}-{number}"
                        shutil.rmtree(folder, ignore_errors=True)
                        folder.mkdir()
                        guarded(results, number, work_fn, folder, source, *extra, results)
                        shutil.rmtree(folder, ignore_errors=True)
                if "engine" in only:
                    try:
                        engine_run(work, source, engine)
                    except StepFailedError as exc:
                        engine.add("engine", Sample(error=str(exc)))
            sections += [table(data, dvc, medops, engine, args.runs), ""]
            shutil.rmtree(source, ignore_errors=True)
    sys.stdout.write("\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
