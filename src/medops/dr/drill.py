"""The disaster-recovery drill: lose the primary database under prediction load, recover,
and measure what was lost (RPO) and how long predictions failed (RTO).

Replication modes (``sync``, ``async``): a primary cluster and a streaming standby made with
``pg_basebackup -R``; the servers are given one libpq multi-host URL naming both, with
``target_session_attrs=read-write``, so after ``pg_ctl promote`` they find the new primary by
themselves (no restart). ``backup`` mode: the primary's backups alone (``medops backup
create`` during the load), restored with ``medops backup restore`` onto a fresh cluster and a
fresh home, and the servers started again on it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import socket
import subprocess  # nosec B404 - starts medops servers with argument lists, never a shell
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import httpx
import psycopg
from pydantic import BaseModel, Field

from medops.config import Settings
from medops.dr.load import Load
from medops.dr.postgres import Cluster, find_bindir
from medops.dr.seed import MEDOPS, medops, new_password, seed
from medops.errors import ConfigurationError

Progress = Callable[[str], None]
SERVER_START_SECONDS = 60


class DrillMode(StrEnum):
    """How the database survives the loss of its primary."""

    SYNC = "sync"  # a synchronous streaming standby: a commit waits for the standby's flush
    ASYNC = "async"  # an asynchronous streaming standby: a commit does not wait
    BACKUP = "backup"  # no standby: the backups alone


class DrillOptions(BaseModel):
    """What the drill runs: how many servers and client threads, how long the load runs
    before the primary is lost and after predictions succeed again."""

    mode: DrillMode = DrillMode.SYNC
    servers: int = Field(default=2, ge=1, le=8)
    clients: int = Field(default=4, ge=1, le=64)
    load_seconds: float = Field(default=5.0, gt=0, le=3600)
    after_seconds: float = Field(default=2.0, ge=0, le=3600)
    promote_after_seconds: float = Field(default=0.0, ge=0, le=3600)
    recover_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    pg_port: int = Field(default=5440, ge=1024, le=65534)
    pg_bindir: Path | None = None
    workdir: Path | None = None
    keep: bool = False


class Step(BaseModel):
    """One step of the drill and the seconds it took."""

    name: str
    seconds: float


class DrillReport(BaseModel):
    """What a drill measured."""

    mode: DrillMode
    started_at: datetime
    machine: str = Field(description="host name, CPU count, platform")
    postgres: str = Field(description="the server version of the drill's clusters")
    replicas: int = Field(description="streaming standbys (0 in backup mode)")
    servers: int
    clients: int
    database_url: str = Field(description="the URL the servers were given (no password)")
    servers_restarted: bool = Field(description="whether the servers had to be restarted")
    load_rate_per_second: float = Field(description="acknowledged predictions per second")
    predictions_acknowledged: int
    acknowledged_before_loss: int = Field(description="acknowledged, sent before the loss")
    lost: int = Field(description="RPO: acknowledged predictions absent after recovery")
    lost_before_loss: int = Field(description="of those, acknowledged before the loss")
    lost_seconds: float = Field(description="RPO in time: the loss minus the first lost ack")
    failed_requests: int
    rto_seconds: float | None = Field(
        description="from the loss until a prediction succeeds again (None: never, in time)"
    )
    recovery_seconds: float = Field(description="promote, or fresh cluster + restore + start")
    backup_id: str | None = None
    standby_lag_bytes: int | None = Field(
        default=None, description="WAL the standby had not flushed just before the loss"
    )
    lost_before_backup: int | None = Field(
        default=None, description="backup mode: acknowledged before the backup began, lost"
    )
    audit_verifies: bool
    audit_records: int
    audit_problem: str | None = None
    steps: list[Step]
    failures: list[str] = Field(
        default_factory=list, description="what the drill's objectives did not meet (empty: passed)"
    )

    @property
    def passed(self) -> bool:
        return not self.failures


def run_drill(options: DrillOptions, progress: Progress | None = None) -> DrillReport:
    """Run one drill in a folder of its own (removed afterwards unless ``keep``)."""
    say = progress or (lambda _message: None)
    bindir = find_bindir(options.pg_bindir)
    if options.mode is DrillMode.BACKUP and importlib.util.find_spec("medops.backup") is None:
        msg = "the backup drill needs 'medops backup' (medops.backup), not in this build"
        raise ConfigurationError(msg)
    folder = options.workdir or Path(tempfile.mkdtemp(prefix="medops-dr-"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # the postgres user reaches its cluster folders inside
    drill = _Drill(options, bindir, folder, say)
    try:
        return drill.run()
    finally:
        drill.close()
        if not options.keep and options.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


class _Drill:
    def __init__(self, options: DrillOptions, bindir: Path, folder: Path, say: Progress) -> None:
        self.options = options
        self.bindir = bindir
        self.folder = folder
        self.say = say
        self.clusters: list[Cluster] = []
        self.servers: list[subprocess.Popen[bytes]] = []
        self.ports = [_free_port() for _ in range(options.servers)]
        self.steps: list[Step] = []
        self.password = new_password()
        self.backup_started: float | None = None
        self.standby_lag: int | None = None

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(name)
        started = time.monotonic()
        yield
        self.steps.append(Step(name=name, seconds=round(time.monotonic() - started, 2)))

    def cluster(self, name: str, port: int) -> Cluster:
        made = Cluster(name=name, bindir=self.bindir, folder=self.folder / "pg", port=port)
        self.clusters.append(made)
        return made

    def env(self, home: Path, url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}
        return env | {
            "MEDOPS_HOME": str(home),
            "MEDOPS_DATABASE_URL": url,
            "MEDOPS_ADMIN_PASSWORD": self.password,
            "MEDOPS_LOG_LEVEL": "warning",
        }

    # -- the drill ----------------------------------------------------------------------

    def run(self) -> DrillReport:
        started_at = datetime.now(UTC)
        if self.options.mode is DrillMode.BACKUP:
            return self._backup_drill(started_at)
        return self._replica_drill(started_at)

    def _replica_drill(self, started_at: datetime) -> DrillReport:
        options = self.options
        primary = self.cluster("primary", options.pg_port)
        standby = self.cluster("standby", options.pg_port + 1)
        with self.step("primary cluster and streaming standby (pg_basebackup -R)"):
            primary.initdb({"synchronous_commit": "on"})
            primary.start()
            standby.standby_from(primary, {})
            standby.start()
            if options.mode is DrillMode.SYNC:
                primary.psql("ALTER SYSTEM SET synchronous_standby_names = 'standby'")
                primary.psql("SELECT pg_reload_conf()")
            _wait_streaming(primary, "sync" if options.mode is DrillMode.SYNC else "async")
            primary.psql("CREATE DATABASE medops")
        url = (
            "postgresql+psycopg://postgres@/medops"
            f"?host=127.0.0.1:{primary.port}&host=127.0.0.1:{standby.port}"
            "&target_session_attrs=read-write"
        )
        home = self.folder / "home"
        env = self.env(home, url)
        with self.step("medops db upgrade, medops init, a deployed model (MFA users)"):
            seeded = seed(env, settings_of(env), self.password)
        with self.step(f"{options.servers} medops server(s) on both hosts"):
            self.start_servers(env)
        load = Load(
            urls=[f"http://127.0.0.1:{p}" for p in self.ports], deployment=seeded.deployment,
            token=seeded.token, records=seeded.records, clients=options.clients,
        )  # fmt: skip
        with self.step(f"load: {options.clients} clients for {options.load_seconds:g} s"):
            load.start()
            time.sleep(options.load_seconds)
            lag = primary.psql(
                "SELECT coalesce(max(pg_current_wal_lsn() - flush_lsn), 0) FROM pg_stat_replication"
            )
            self.standby_lag = int(float(lag.strip() or 0))
        with self.step("primary killed (SIGKILL of the postmaster and its processes)"):
            primary.kill()
        lost_at = time.monotonic()
        time.sleep(options.promote_after_seconds)
        promote_started = time.monotonic()
        with self.step("standby promoted (pg_ctl promote)"):
            standby.promote()
        recovery = time.monotonic() - promote_started
        rto = self._await_recovery(load, lost_at)
        load.stop()
        self.stop_servers()
        with self.step("checks on the promoted database: predictions and audit trail"):
            return self._measure(
                load, lost_at, standby.url(), home, rto=rto, recovery=recovery,
                started_at=started_at, replicas=1, url=url, restarted=False, backup_id=None,
            )  # fmt: skip

    def _backup_drill(self, started_at: datetime) -> DrillReport:
        options = self.options
        primary = self.cluster("primary", options.pg_port)
        with self.step("primary cluster"):
            primary.initdb({"synchronous_commit": "on"})
            primary.start()
            primary.psql("CREATE DATABASE medops")
        home = self.folder / "home"
        env = self.env(home, primary.url())
        with self.step("medops db upgrade, medops init, a deployed model (MFA users)"):
            seeded = seed(env, settings_of(env), self.password)
        with self.step(f"{options.servers} medops server(s) on the primary"):
            self.start_servers(env)
        load = Load(
            urls=[f"http://127.0.0.1:{p}" for p in self.ports], deployment=seeded.deployment,
            token=seeded.token, records=seeded.records, clients=options.clients,
        )  # fmt: skip
        backups = self.folder / "backups"
        with self.step(f"load: {options.clients} clients; medops backup create during it"):
            load.start()
            time.sleep(options.load_seconds / 2)
            self.backup_started = time.monotonic()
            made = medops(env, "backup", "create", "--to", str(backups), timeout=600)
            backup_id = str(made["id"])
            time.sleep(options.load_seconds / 2)
        with self.step("primary killed; the servers on it stopped"):
            primary.kill()
            lost_at = time.monotonic()
            self.stop_servers()
        recovery_started = time.monotonic()
        fresh = self.cluster("restored", options.pg_port + 2)
        restored_home = self.folder / "home-restored"
        restored_env = self.env(restored_home, fresh.url())
        with self.step("fresh cluster; the keys from escrow; medops backup restore"):
            _escrow_keys(home, restored_home)
            fresh.initdb({"synchronous_commit": "on"})
            fresh.start()
            fresh.psql("CREATE DATABASE medops")
            medops(restored_env, "backup", "restore", backup_id, "--from", str(backups),
                   timeout=600)  # fmt: skip
        with self.step(f"{options.servers} medops server(s) on the restored database"):
            self.start_servers(restored_env)
        recovery = time.monotonic() - recovery_started
        rto = self._await_recovery(load, lost_at)
        load.stop()
        self.stop_servers()
        with self.step("checks on the restored database: predictions and audit trail"):
            return self._measure(
                load, lost_at, fresh.url(), restored_home, rto=rto, recovery=recovery,
                started_at=started_at, replicas=0, url=fresh.url(), restarted=True,
                backup_id=backup_id,
            )  # fmt: skip

    def _await_recovery(self, load: Load, lost_at: float) -> float | None:
        with self.step("waiting for predictions to succeed again"):
            deadline = lost_at + self.options.recover_timeout_seconds
            while time.monotonic() < deadline:
                first = load.first_ack_after(lost_at)
                if first is not None:
                    time.sleep(self.options.after_seconds)
                    return round(max(first.at - lost_at, 0.0), 2)
                time.sleep(0.05)
        return None

    def _measure(
        self, load: Load, lost_at: float, database: str, home: Path, *, rto: float | None,
        recovery: float, started_at: datetime, replicas: int, url: str, restarted: bool,
        backup_id: str | None,
    ) -> DrillReport:  # fmt: skip
        from medops import admin

        acks = load.acknowledged()
        before = [a for a in acks if a.sent < lost_at]
        stored = _prediction_ids(database)
        lost = [a for a in acks if a.id not in stored]
        lost_before = [a for a in lost if a.sent < lost_at]
        lost_seconds = lost_at - min(a.at for a in lost_before) if lost_before else 0.0
        span = max(a.at for a in before) - min(a.at for a in before) if len(before) > 1 else 0
        settings = settings_of(self.env(home, database))
        verified = admin.audit_verify(settings)
        first = verified.problems[0] if verified.problems else None
        problem = f"{first.where}: {first.reason}" if first is not None else None
        lost_before_backup = (
            None if self.backup_started is None else sum(a.at < self.backup_started for a in lost)
        )
        failures = []
        if lost_before_backup:
            failures.append(
                f"{lost_before_backup} prediction(s) acknowledged before the backup lost"
            )
        if rto is None:
            waited = self.options.recover_timeout_seconds
            failures.append(f"predictions did not succeed again within {waited:g} s")
        if self.options.mode is DrillMode.SYNC and lost:
            failures.append(
                f"{len(lost)} acknowledged prediction(s) lost with synchronous replication"
            )
        if not verified.ok:
            failures.append(f"the audit trail does not verify ({problem})")
        if not before:
            failures.append("no prediction was acknowledged before the loss")
        return DrillReport(
            failures=failures,
            mode=self.options.mode,
            started_at=started_at,
            machine=f"{socket.gethostname()}, {os.cpu_count()} CPUs, {platform.platform()}",
            postgres=_server_version(database),
            replicas=replicas,
            servers=self.options.servers,
            clients=self.options.clients,
            database_url=url,
            servers_restarted=restarted,
            load_rate_per_second=round(len(before) / span, 1) if span else 0.0,
            predictions_acknowledged=len(acks),
            acknowledged_before_loss=len(before),
            lost=len(lost),
            lost_before_loss=len(lost_before),
            lost_seconds=round(lost_seconds, 2),
            failed_requests=len(load.failures),
            rto_seconds=rto,
            recovery_seconds=round(recovery, 2),
            backup_id=backup_id,
            lost_before_backup=lost_before_backup,
            standby_lag_bytes=self.standby_lag,
            audit_verifies=verified.ok,
            audit_records=verified.records,
            audit_problem=problem,
            steps=self.steps,
        )

    # -- servers --------------------------------------------------------------------------

    def start_servers(self, env: dict[str, str]) -> None:
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        for port in self.ports:
            log = (logs / f"server-{port}.log").open("ab")
            self.servers.append(
                subprocess.Popen(  # noqa: S603 - our own command  # nosec B603
                    [*MEDOPS, "server", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.monotonic() + SERVER_START_SECONDS
        for port in self.ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or any(s.poll() is not None for s in self.servers):
                    msg = f"medops server on port {port} did not start (see {logs})"
                    raise ConfigurationError(msg)
                time.sleep(0.1)

    def stop_servers(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.terminate()
        for server in self.servers:
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        self.servers = []

    def close(self) -> None:
        self.stop_servers()
        for cluster in self.clusters:
            with contextlib.suppress(ConfigurationError, OSError, subprocess.SubprocessError):
                cluster.stop()


def settings_of(env: dict[str, str]) -> Settings:
    """The settings ``env`` gives (its MEDOPS_* variables only, no .env file): what the
    drill's servers and commands see, whatever the caller's own environment holds."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _escrow_keys(home: Path, restored: Path) -> None:
    """The installation's keys (audit signing, TOTP secrets, backup), which a hospital keeps
    apart from its backups, put in the fresh home before the restore (mode 0600)."""
    restored.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in sorted(home.glob("*.key")):
        copy = restored / key.name
        copy.write_bytes(key.read_bytes())
        copy.chmod(0o600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _prediction_ids(url: str) -> set[str]:
    with psycopg.connect(_conninfo(url)) as conn:
        return {str(row[0]) for row in conn.execute("SELECT id FROM predictions")}


def _server_version(url: str) -> str:
    with psycopg.connect(_conninfo(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def _wait_streaming(primary: Cluster, state: str) -> None:
    """Until the primary sees its standby streaming in ``state`` (sync or async)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = primary.psql("SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'")
        if state in seen.split():
            return
        time.sleep(0.1)
    msg = f"the standby did not stream in {state} mode within 30 s (see {primary.folder})"
    raise ConfigurationError(msg)


__all__ = ["DrillMode", "DrillOptions", "DrillReport", "Step", "run_drill"]
