"""PostgreSQL clusters of the drill's own, made with the server binaries (initdb, pg_ctl,
pg_basebackup) in a folder of the drill: never the hospital's or anyone else's cluster.

PostgreSQL refuses to run as root; run as root, every binary runs as the ``postgres`` OS user
(``runuser``) and the data folders belong to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess  # nosec B404 - runs PostgreSQL's own binaries with argument lists
import time
from dataclasses import dataclass, field
from pathlib import Path

from medops.errors import ConfigurationError

SERVER_BINARIES = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
SEARCHED = "/usr/lib/postgresql/*/bin"
START_SECONDS = 60


def find_bindir(explicit: Path | None = None) -> Path:
    """The folder of PostgreSQL's server binaries: ``explicit``, else the one of ``pg_ctl`` on
    PATH, else the newest /usr/lib/postgresql/N/bin (Debian's layout)."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    else:
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        versions = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates.extend(versions)
    for folder in candidates:
        if all((folder / name).is_file() for name in SERVER_BINARIES):
            return folder
    where = str(explicit) if explicit is not None else f"PATH or {SEARCHED}"
    msg = (
        f"PostgreSQL's server binaries ({', '.join(SERVER_BINARIES)}) are not in {where}; "
        "install them (Debian: apt-get install postgresql) or pass --pg-bindir"
    )
    raise ConfigurationError(msg)


def _as_postgres() -> list[str]:
    """The prefix that runs a binary as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        msg = "running as root needs a 'postgres' OS user to run PostgreSQL (it refuses root)"
        raise ConfigurationError(msg) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        msg = "running as root needs runuser (util-linux) to run PostgreSQL as 'postgres'"
        raise ConfigurationError(msg)
    return [runuser, "-u", "postgres", "--"]


def _own(path: Path) -> None:
    """Give ``path`` to the ``postgres`` user when we are root (mode 0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Cluster:
    """One PostgreSQL cluster: its data folder, port and log, listening on 127.0.0.1 only,
    trusting local connections (a drill's throw-away cluster, never a production one)."""

    name: str
    bindir: Path
    folder: Path
    port: int
    logs: list[Path] = field(default_factory=list)

    @property
    def datadir(self) -> Path:
        return self.folder / self.name

    @property
    def logfile(self) -> Path:
        return self.folder / f"{self.name}.log"

    def _run(self, *args: str, timeout: float = START_SECONDS) -> str:
        command = [*_as_postgres(), str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(  # noqa: S603 - our own binaries and arguments  # nosec B603
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            why = last[-1] if last else f"exit {done.returncode}"
            msg = f"{args[0]} failed for cluster {self.name} on port {self.port}: {why}"
            raise ConfigurationError(msg)
        return done.stdout

    def url(self, database: str = "medops") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def initdb(self, settings: dict[str, str]) -> None:
        """A new cluster with ``settings`` appended to its postgresql.conf."""
        _own(self.folder)
        self._run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
            "--no-sync", "-N",
        )  # fmt: skip
        self.configure(settings)

    def configure(self, settings: dict[str, str]) -> None:
        base = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.folder}'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_connections": "200",
            "hot_standby": "on",
            "cluster_name": f"'{self.name}'",
        }
        lines = [f"{key} = {value}" for key, value in (base | settings).items()]
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\n# medops dr drill\n" + "\n".join(lines) + "\n")

    def start(self) -> None:
        if not port_is_free(self.port):
            msg = f"port {self.port} is taken; pick free ones with --pg-port"
            raise ConfigurationError(msg)
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "start")

    def postmaster_pid(self) -> int:
        first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
        return int(first)

    def kill(self) -> None:
        """SIGKILL the postmaster and every process it started, as a machine that died
        leaves it: no backend finishes a commit, no WAL sender sends another byte. Nothing
        when it does not run (a stale postmaster.pid names no process of ours)."""
        pid = self.postmaster_pid()
        if not self.runs(pid):
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.01)

    def runs(self, pid: int) -> bool:
        """Whether ``pid`` is this cluster's live postmaster (its command line names our data
        folder: a pid reused by another process after a kill is never touched)."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return _alive(pid) and str(self.datadir).encode() in command

    def promote(self) -> None:
        """``pg_ctl promote``: the standby ends recovery and accepts writes."""
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "promote")

    def stop(self) -> None:
        """Stop it fast if it runs (nothing to do for a killed one)."""
        if not (self.datadir / "postmaster.pid").exists() or not self.runs(self.postmaster_pid()):
            return
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        except ConfigurationError:
            self.kill()

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
        )  # fmt: skip

    def standby_from(self, primary: Cluster, settings: dict[str, str]) -> None:
        """A streaming standby of ``primary``: ``pg_basebackup -R`` (writes primary_conninfo
        and standby.signal) with the WAL streamed alongside."""
        _own(self.folder)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self.configure(settings)


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"
