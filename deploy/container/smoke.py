"""Smoke-test a built medops image (run by build.sh with .venv's python, as root).

    .venv/bin/python deploy/container/smoke.py IMAGE

On a fresh database of the PostgreSQL at MEDOPS_SMOKE_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/postgres):

1. ``buildah run --isolation chroot`` runs ``medops db upgrade`` in the image as its user
   (chroot isolation shares the host's network: the container reaches 127.0.0.1:5432);
2. the image's filesystem (``buildah mount``) is run the way a container runtime runs it:
   a private mount namespace, the root filesystem bind-mounted READ-ONLY, a tmpfs /tmp, the
   MEDOPS_HOME volume (a host folder) at /var/lib/medops, only the image's environment, as the
   image's numeric user; in it ``medops init``, a check that the root cannot be written, then
   the image's entry point and command (``medops server``, on a free port) in the background;
3. /healthz and /readyz answer 200, the image's HEALTHCHECK command exits 0;
4. the first day through that server with the host's .venv/bin/medops as the client
   (MEDOPS_URL): admin with MFA (TOTP, as tests/helpers do), users of each role, a
   scikit-learn model registered as ONNX, validated, carded, approved by a clinician and an
   ML engineer (MFA), promoted, deployed; a prediction comes back.

Prints one PASS or FAIL line per check; exits 1 on the first failure (the server's log tail
is printed). The database, the container and the folders are removed whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp

MEDOPS = str(Path(sys.executable).with_name("medops"))
ADMIN_PW = "tidal-granite-sketch-smoke-test"
USER_PW = "a-long-user-password-for-the-smoke-test"
MODEL = "smoke-risk"
DEPLOYMENT = "smoke"

# The image's root filesystem, run as a container runtime would (argv: root, home folder,
# then the command). Everything happens in a private mount namespace (unshare --mount).
SANDBOX = r"""
set -eu
R="$1"; VOLUME="$2"; USERSPEC="$3"; shift 3
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -o remount,bind,ro "$R/sys"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$R/dev"
for d in null zero full random urandom tty; do
    touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"
done
ln -s /proc/self/fd "$R/dev/fd"
mkdir "$R/dev/shm"; mount -t tmpfs -o mode=1777,size=64m tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=1777,size=512m tmpfs "$R/tmp"
mount --bind "$VOLUME" "$R/var/lib/medops"
exec chroot --userspec="$USERSPEC" "$R" "$@"
"""


class SmokeFailure(Exception):
    pass


def passed(what: str) -> None:
    print(f"PASS {what}", flush=True)


def check(ok: bool, what: str, detail: str = "") -> None:
    if not ok:
        raise SmokeFailure(f"{what}: {detail}" if detail else what)
    passed(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str
    healthcheck: list[str]
    labels: dict[str, str]

    @classmethod
    def of(cls, image: str) -> ImageConfig:
        out = subprocess.run(
            ["buildah", "inspect", "--type", "image", image],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        info = json.loads(out)
        oci = info["OCIv1"]["config"]
        docker = info["Docker"]["config"]
        health = (docker.get("Healthcheck") or {}).get("Test") or []
        return cls(
            entrypoint=oci.get("Entrypoint") or [],
            cmd=oci.get("Cmd") or [],
            env=oci.get("Env") or [],
            user=oci.get("User") or "0:0",
            workdir=oci.get("WorkingDir") or "/",
            healthcheck=health[1:] if health[:1] == ["CMD"] else [],
            labels=oci.get("Labels") or {},
        )


@dataclass
class Container:
    """The image's filesystem, mounted, run with SANDBOX as the image's user."""

    config: ImageConfig
    root: Path
    volume: Path
    name: str

    def argv(self, command: Sequence[str], env: dict[str, str]) -> list[str]:
        environment = [*self.config.env, *(f"{k}={v}" for k, v in env.items())]
        return [
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", SANDBOX, "sandbox", str(self.root), str(self.volume), self.config.user,
            "/usr/bin/env", "-i", "-C", self.config.workdir, *environment, *command,
        ]  # fmt: skip

    def run(self, command: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, env), capture_output=True, text=True, timeout=120, check=False
        )

    def start(self, command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.argv(command, env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    name = f"medops_image_smoke_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
        yield "postgresql+psycopg://" + url_of(url)
    finally:
        # DROP DATABASE waits for a checkpoint of the whole (shared, busy) cluster: over a
        # minute here under load. A detached process drops it; the stage does not wait.
        subprocess.Popen(
            [sys.executable, "-c", DROP, admin_url, name],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"PASS database {name} handed to a detached DROP DATABASE ... WITH (FORCE)")


DROP = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
"""


def url_of(conninfo: str) -> str:
    """user@host:port/dbname of a libpq conninfo (the parts the smoke test sets)."""
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    auth = str(parts.get("user", "postgres"))
    if parts.get("password"):
        auth += f":{parts['password']}"
    return f"{auth}@{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/{parts['dbname']}"


@contextmanager
def mounted_container(image: str) -> Iterator[tuple[str, Path]]:
    ctr = subprocess.run(
        ["buildah", "from", "--pull=never", "--quiet", image],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    try:
        root = subprocess.run(
            ["buildah", "mount", ctr], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield ctr, Path(root)
    finally:
        subprocess.run(["buildah", "umount", ctr], check=False, capture_output=True)
        subprocess.run(["buildah", "rm", ctr], check=False, capture_output=True)


class Client:
    """The host's medops CLI pointed at the container's server."""

    def __init__(self, url: str, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}
        self.env = env | {"MEDOPS_URL": url, "MEDOPS_HOME": str(home), "COLUMNS": "200"}

    def __call__(self, *args: str, stdin: str = "") -> Any:
        proc = subprocess.run(
            [MEDOPS, *args], input=stdin, capture_output=True, text=True, env=self.env,
            timeout=180, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SmokeFailure(f"medops {' '.join(args)}: {proc.stderr.strip()}")
        return json.loads(proc.stdout) if "--json" in args else proc.stdout


def first_day(cli: Client, files: dict[str, Path]) -> dict[str, Any]:
    """The README's first day through the container's server; the prediction's answer."""
    recovery: dict[str, list[str]] = {}

    def enroll(user: str, password: str) -> None:
        enrollment = cli("--as", user, "mfa", "enroll", "--password-stdin", "--json",
                         stdin=password + "\n")  # fmt: skip
        codes = cli("--as", user, "mfa", "confirm", pyotp.TOTP(enrollment["secret"]).now(),
                    "--json")  # fmt: skip
        recovery[user] = list(codes["codes"])
        # A TOTP code is good once: the next login uses a recovery code.
        cli("login", "-u", user, "--password-stdin", "--otp", recovery[user].pop(),
            stdin=password + "\n")  # fmt: skip

    cli("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW + "\n")
    enroll("admin", ADMIN_PW)
    passed("admin logs in through the container's server and enrolls TOTP (MFA)")
    for user, role in (("dana", "data_scientist"), ("cora", "clinician"), ("eli", "ml_engineer")):
        cli("--as", "admin", "users", "create", user, "--role", role,
            "--full-name", f"Smoke {user.title()}", "--password-stdin", stdin=USER_PW + "\n")  # fmt: skip
        cli("login", "-u", user, "--password-stdin", stdin=USER_PW + "\n")
    enroll("eli", USER_PW)
    passed("users of each role created; the ML engineer enrolls TOTP")

    cli("--as", "eli", "models", "create", MODEL, "--policy", str(files["policy"]))
    registered = cli(
        "--as", "dana", "models", "register", MODEL, str(files["model"]),
        "--sample", str(files["train"]), "--demographic", "sex", "--demographic", "age",
        "--bands", "age=40,60", "--range", "age=18,110", "--range", "bmi=10,80",
        "--training-data", "file:///data/train.csv", "--json",
    )  # fmt: skip
    ref = f"{MODEL}/{registered['version']}"
    cli("--as", "dana", "models", "validate", ref, "--data", str(files["eval"]),
        "--label", "progression", "--bootstrap", "100")  # fmt: skip
    cli("--as", "cora", "models", "card", ref, "--set", str(files["card"]))
    passed(f"model {ref} registered as ONNX, validated and carded")
    cli("--as", "cora", "models", "approve", ref, "--password-stdin", stdin=USER_PW + "\n")
    cli("--as", "eli", "models", "approve", ref, "--password-stdin",
        "--otp", recovery["eli"].pop(), stdin=USER_PW + "\n")  # fmt: skip
    cli("--as", "eli", "models", "promote", ref, "--reason", "image smoke test")
    cli("--as", "eli", "deploy", "create", DEPLOYMENT, "--model", f"{MODEL}@production",
        "--reason", "image smoke test")  # fmt: skip
    passed(f"{ref} approved by a clinician and an ML engineer, promoted and deployed")
    answer: dict[str, Any] = cli(
        "--as", "cora", "predict", DEPLOYMENT, "--input", f"@{files['record']}",
        "--patient-ref", "smoke-1", "--json",
    )  # fmt: skip
    return answer


def model_files(folder: Path) -> dict[str, Path]:
    """A scikit-learn pipeline on the diabetes data that ships with scikit-learn, its
    training sample, a labelled evaluation CSV, a model card, a policy and one record."""
    import joblib  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    from medops import examples

    x_train, x_eval, y_train, y_eval = examples.diabetes_frames()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    files = {
        name: folder / file
        for name, file in (
            ("model", "model.joblib"), ("train", "train.csv"), ("eval", "eval.csv"),
            ("card", "card.json"), ("policy", "policy.json"), ("record", "record.json"),
        )
    }  # fmt: skip
    joblib.dump(model, files["model"])
    x_train.to_csv(files["train"], index=False)
    files["eval"].write_bytes(examples.labeled_csv(x_eval, y_eval))
    files["card"].write_text(json.dumps(examples.DIABETES_CARD))
    # The >=60 age band of this split has a wide AUROC gap (tests/helpers/model_data.py).
    files["policy"].write_text(json.dumps({"max_subgroup_gap": 0.15}))
    record = {k: float(v) for k, v in x_eval.iloc[0].to_dict().items()}
    files["record"].write_text(json.dumps(record))
    return files


def wait_ready(url: str, server: subprocess.Popen[bytes], seconds: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if server.poll() is not None:
            raise SmokeFailure(f"medops server exited with status {server.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SmokeFailure(f"the server did not answer /readyz within {seconds:.0f} s")


def smoke(image: str, stack: ExitStack) -> None:
    config = ImageConfig.of(image)
    check(config.user.split(":")[0].isdigit() and config.user.split(":")[0] != "0",
          f"the image runs as a numeric non-root user ({config.user})")  # fmt: skip
    admin_url = os.environ.get(
        "MEDOPS_SMOKE_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    db_url = stack.enter_context(database(admin_url))
    passed(f"fresh database {db_url.rsplit('/', 1)[1]}")
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medops-smoke-")))
    volume = work / "volume"
    volume.mkdir(mode=0o700)
    uid, gid = (int(x) for x in config.user.split(":"))
    os.chown(volume, uid, gid)
    ctr, root = stack.enter_context(mounted_container(image))
    env = {"MEDOPS_DATABASE_URL": db_url, "MEDOPS_ADMIN_PASSWORD": ADMIN_PW}

    # 1. buildah's own runtime (chroot isolation: the host's network).
    upgrade = subprocess.run(
        ["buildah", "run", "--isolation", "chroot", "--user", config.user,
         "-v", f"{volume}:/var/lib/medops", "-e", f"MEDOPS_DATABASE_URL={db_url}",
         ctr, "--", *config.entrypoint, "db", "upgrade", "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    check(upgrade.returncode == 0,
          "buildah run --isolation chroot: medops db upgrade on the fresh database",
          upgrade.stderr.strip()[-2000:])  # fmt: skip

    container = Container(config, root, volume, ctr)
    init = container.run([*config.entrypoint, "init", "--json"], env)
    check(init.returncode == 0, "medops init (read-only root, MEDOPS_HOME volume)",
          init.stderr.strip()[-2000:])  # fmt: skip

    probe = container.run(
        ["/usr/bin/python3.11", "-c",
         "import json,os,pathlib\n"
         "def w(p):\n"
         "    try:\n"
         "        pathlib.Path(p).write_text('x'); pathlib.Path(p).unlink(); return 'written'\n"
         "    except OSError as e:\n"
         "        return e.strerror\n"
         "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(),"
         " 'root': w('/opt/medops/probe'), 'etc': w('/etc/probe'),"
         " 'home': w('/var/lib/medops/probe'), 'tmp': w('/tmp/probe'),"
         " 'gcc': any(os.path.exists(p + '/gcc') or os.path.exists(p + '/cc')"
         " for p in os.environ['PATH'].split(':'))}))"],
        {},
    )  # fmt: skip
    check(probe.returncode == 0, "probe ran in the container", probe.stderr.strip())
    seen = json.loads(probe.stdout)
    check(seen["uid"] == uid and seen["gid"] == gid, f"runs as uid {uid} gid {gid}", str(seen))
    check(seen["root"] == seen["etc"] == "Read-only file system",
          "the root filesystem is read-only (/opt/medops, /etc)", str(seen))  # fmt: skip
    check(seen["home"] == seen["tmp"] == "written",
          "MEDOPS_HOME (/var/lib/medops) and /tmp are writable", str(seen))  # fmt: skip
    check(not seen["gcc"], "no compiler on the PATH", str(seen))

    port = free_port()
    command = [*config.entrypoint, *config.cmd]
    if "--port" in command:
        command[command.index("--port") + 1] = str(port)
    else:
        command += ["--port", str(port)]
    log = work / "server.log"
    server = container.start(command, env, log)

    def stop() -> None:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    stack.callback(stop)
    url = f"http://127.0.0.1:{port}"
    try:
        seconds = wait_ready(url, server)
        passed(f"the image's entry point serves ({' '.join(command[1:])}) in {seconds:.1f} s")
        for path in ("/healthz", "/readyz"):
            status = httpx.get(url + path, timeout=5).status_code
            check(status == 200, f"GET {path} -> 200", f"got {status}")
        health = container.run(config.healthcheck, {"HEALTHCHECK_PORT": str(port)})
        check(health.returncode == 0 and bool(config.healthcheck),
              f"the image's HEALTHCHECK ({' '.join(config.healthcheck)}) exits 0",
              health.stderr.strip())  # fmt: skip

        files = model_files(work)
        answer = first_day(Client(url, work / "client"), files)
        predictions = answer.get("predictions") or [answer]
        first = predictions[0]
        score = first.get("score", first.get("probability"))
        check(isinstance(score, float) and 0.0 <= score <= 1.0,
              f"a prediction through the container's server (score {score})",
              json.dumps(answer)[:500])  # fmt: skip
    except BaseException:
        print_tail(log)
        raise
    stop()
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in volume.rglob("*")}
    check(owners == {(uid, gid)},
          f"every file in the MEDOPS_HOME volume belongs to {uid}:{gid}", str(owners))  # fmt: skip


def print_tail(log: Path, lines: int = 40) -> None:
    if log.exists():
        print(f"--- the server's log ({log}), last {lines} lines:", file=sys.stderr)
        for line in log.read_text(errors="replace").splitlines()[-lines:]:
            print(f"    {line}", file=sys.stderr)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: smoke.py IMAGE", file=sys.stderr)
        return 2
    for tool in ("buildah", "unshare", "chroot"):
        if shutil.which(tool) is None:
            print(f"FAIL {tool} is not installed", file=sys.stderr)
            return 1
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            smoke(sys.argv[1], stack)
    except (SmokeFailure, subprocess.SubprocessError, OSError, psycopg.Error) as exc:
        print(f"FAIL {exc}", flush=True)
        return 1
    print(f"PASS smoke test of {sys.argv[1]} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
