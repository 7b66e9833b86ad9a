#!/usr/bin/env python3
# ruff: noqa: T201
"""Side-by-side serving benchmark: the same model behind several servers, as a matrix of
models, rows per request and worker processes.

What is served (``serving_models.py``, one definition for the peers and for medops): scikit-
learn's bundled diabetes data (``load_diabetes(as_frame=True, scaled=False)``, 442 rows, target
binarised at its median, 10 named features) and, with ``--models``,

- ``logreg``: Pipeline(StandardScaler, LogisticRegression(max_iter=1000)) (the default);
- ``gbm``: a 200-tree GradientBoostingClassifier (depth 3, ``random_state=0``).

``peers/build_model.py`` trains each model once per run and packages that one fitted pipeline
for every peer; medops trains the same definition in the project's venv (same scikit-learn,
same seed) and takes it through its governed path. Before measuring, every server's answer to
every request the run will send is checked against scikit-learn's ``predict_proba``, every
row, to 1e-5. That holds for the trees too: skl2onnx writes them with float32 thresholds and
leaves, 1.6e-7 at most from scikit-learn on this data (checked on all 442 rows at build time);
medops writes float64 trees that decide as scikit-learn does; MLflow and BentoML run
scikit-learn itself. The servers:

- ``bare``: ``peers/bare_app.py``, FastAPI + onnxruntime (skl2onnx export), ``uvicorn
  --workers W``; the floor: HTTP + JSON + one ``InferenceSession.run`` per request.
- ``mlflow``: ``mlflow models serve --env-manager local --workers W`` on the pipeline logged
  with ``mlflow.sklearn.log_model`` (cloudpickle, named-column signature, ``predict_proba``).
- ``bentoml``: ``bentoml serve`` of ``peers/bento_service.py`` (the pipeline from BentoML's model
  store), its ``@bentoml.service(workers=1)`` overridden to W at run time through
  ``BENTOML_CONFIG_OVERRIDES``.
- ``medops``: see :func:`start_medops`: everything on, ``medops server --workers W`` (W uvicorn
  worker processes on one port, each with its own audit chain, on one SQLite file).

Requests (``--batches``, rows per request, default 1). One row is row 0 of the data set, sent
in each server's single-row shape (as the benchmark always did). N > 1 rows are N distinct
rows, rows 0 to N-1 (from row 0 again past the 442nd), each checked for parity, in each
server's batch shape, scored in one model call per request:

- bare: POST /predict_batch ``{"records": [{"features": {...}}, ...]}`` (medops's shape);
- mlflow: POST /invocations ``{"dataframe_records": [{...}, ...]}`` (N records);
- bentoml: POST /predict_batch ``{"records": [{...}, ...]}`` (a list of feature dicts);
- medops: POST /api/v1/deployments/diabetes/predict ``{"records": [{"features": {...}}, ...]}``
  (every row validated, logged and audited, durably, before the answer).

Method: the run goes through one server set per model and workers value (``--models`` x
``--workers``): the model is built, the selected servers are started with W workers each, as
subprocesses in their own process groups on free 127.0.0.1 ports, from the benchmark-only venv
``benchmarks/.peers-venv`` (made by ``peers/setup.sh``; never the project's locked
environment); each is polled with its real request until it answers 200, its probabilities are
checked for every batch size, then it is warmed up on every batch size; the set is stopped
before the next one starts, so only one set runs at a time. The load generator is ``wrk``
(keep-alive HTTP/1.1, closed loop: each connection sends its next request when the previous
answer arrives) with a generated Lua script per server and batch size that POSTs the same JSON
body, counts every status other than 200 and prints one machine-readable line with the request
count and the p50/p99 latency. Runs alternate: in each round, for each batch size and
concurrency (= wrk connections), every server of the set gets one run of ``--duration``
seconds, the server order rotating from round to round so no server always follows the same
neighbour. The table has one row per model, batch size, workers, server and concurrency: the
median over rounds of throughput (requests/s, and rows/s = requests/s x batch size), p50 and
p99 latency and server CPU time per request (user + system time of the server's whole process
tree, read from /proc before and after each run, so every worker, supervisor and child
counts), the min-max of throughput over rounds, the ratios to ``bare`` of the same model, batch
size, workers and concurrency, and the total non-200 answers and socket errors. The projected
duration is printed first: the load runs and warm-ups exactly, the builds and start-ups
roughly (``START_ESTIMATE_S``).

The machine has 2 cores: wrk runs with 1 thread by default, so it uses at most one core and
the server the other. With 2 workers the workers share what wrk leaves (about one core), so on
this machine the workers=2 rows show what a second process costs or buys under that limit, not
how a server scales on free cores; that needs at least W + 1 cores. Nothing is downloaded at
run time; telemetry of MLflow and BentoML is switched off by environment variables. Every
server runs on uvicorn with the same uvloop + httptools as medops (pinned in the peers venv),
keeps its default logging (access logs go to ``WORKDIR/<model>/<server>-w<W>.log``), and the
bare server uses one onnxruntime thread per worker, as medops does by default. Other load on
the machine shows up as noise: run it on a quiet machine.

Run (any Python 3.11+, this script uses the standard library only):
    bash benchmarks/peers/setup.sh            # once: benchmarks/.peers-venv
    python3 benchmarks/serving.py [--rounds 3] [--duration 10] [--concurrency 1,32]
                                  [--models logreg,gbm] [--batches 1,100] [--workers 1,2]
                                  [--only bare,mlflow,bentoml,medops] [--workdir DIR]
(``--model``, ``--batch`` are aliases of ``--models``, ``--batches``; each takes one value or
a comma-separated list). The whole matrix at the defaults, 2 models x 2 batch sizes x
2 workers x 4 servers x 2 concurrencies x 3 rounds x 10 s, takes about 38 minutes
(34 of load runs and warm-ups, 4 of builds and start-ups).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import working_folder
from serving_models import MODELS

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
VENV_BIN = HERE / ".peers-venv" / "bin"
HOST = "127.0.0.1"
SERVERS = ("bare", "mlflow", "bentoml", "medops")
READY_TIMEOUT_S = 180.0
PARITY_TOLERANCE = 1e-5
WRK = shutil.which("wrk") or "wrk"
PEER_PACKAGES = (
    "mlflow",
    "bentoml",
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "onnxruntime",
    "scikit-learn",
    "skl2onnx",
    "pandas",
    "numpy",
)
# Nothing phones home: MLflow and BentoML telemetry off, no hub look-ups.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}

Json = dict[str, Any]
Target = tuple[str, dict[str, str], int]  # (base_url, headers, worker processes it runs)


# --------------------------------------------------------------------------- processes

_PROCESSES: list[subprocess.Popen[bytes]] = []


def spawn(command: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
    """Start a server in its own process group, output to ``log``; :func:`stop_all` ends it."""
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed commands from this file
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _PROCESSES.append(process)


def server_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The environment every server gets: the peers venv first on PATH, telemetry off."""
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}"
    env["BENTOML_HOME"] = str(workdir / "bentoml")
    env.update(extra)
    return env


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (BentoML's workers leave the process group)."""
    parents = _parents()
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their descendants, in seconds."""
    ticks = 0
    for root in pids:
        for pid in process_tree(root):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_all() -> None:
    """SIGTERM every server's process group and descendants; SIGKILL what is left after 10 s."""
    victims: list[tuple[subprocess.Popen[bytes], list[int]]] = [
        (process, process_tree(process.pid)) for process in _PROCESSES if process.poll() is None
    ]
    for process, tree in victims:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process, tree in victims:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    _PROCESSES.clear()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Launch:
    """What a starter gets: the folder ``peers/build_model.py`` built for ``model``, a free
    port, the worker processes asked for, and the server's log file."""

    folder: Path
    model: str
    port: int
    workers: int
    log: Path


def start_bare(launch: Launch) -> Target:
    spawn(
        [
            str(VENV_BIN / "uvicorn"),
            "bare_app:app",
            "--workers",
            str(launch.workers),
            "--host",
            HOST,
            "--port",
            str(launch.port),
        ],
        cwd=PEERS,
        env=server_env(launch.folder, BARE_MODEL_PATH=str(launch.folder / "model.onnx")),
        log=launch.log,
    )
    return f"http://{HOST}:{launch.port}", {}, launch.workers


def start_mlflow(launch: Launch) -> Target:
    model_uri = json.loads((launch.folder / "meta.json").read_text())["mlflow_model_uri"]
    spawn(
        [
            str(VENV_BIN / "mlflow"),
            "models",
            "serve",
            "--model-uri",
            model_uri,
            "--env-manager",
            "local",
            "--workers",
            str(launch.workers),
            "--host",
            HOST,
            "--port",
            str(launch.port),
        ],
        cwd=launch.folder,
        env=server_env(launch.folder),
        log=launch.log,
    )
    return f"http://{HOST}:{launch.port}", {}, launch.workers


def start_bentoml(launch: Launch) -> Target:
    """The service's ``workers=1`` is overridden at run time through BentoML's configuration
    (``BENTOML_CONFIG_OVERRIDES``), so one service file serves every ``--workers``."""
    workers = {"services": {"DiabetesClassifier": {"workers": launch.workers}}}
    spawn(
        [
            str(VENV_BIN / "bentoml"),
            "serve",
            "bento_service:DiabetesClassifier",
            "--working-dir",
            str(PEERS),
            "--host",
            HOST,
            "--port",
            str(launch.port),
        ],
        cwd=PEERS,
        env=server_env(launch.folder, BENTOML_CONFIG_OVERRIDES=json.dumps(workers)),
        log=launch.log,
    )
    return f"http://{HOST}:{launch.port}", {}, launch.workers


def start_medops(launch: Launch) -> Target:
    """medops with everything on: authentication (API token), permission check, validation
    of named features against the signature, micro-batching, and the prediction and its audit
    record made durable (group commit) before the answer. ``--workers W`` uvicorn workers,
    SQLite in the home, logs at the default level (one JSON line per request)."""
    home = launch.folder / "medops-home"
    shutil.rmtree(home, ignore_errors=True)
    project = HERE.parent / ".venv" / "bin"
    setup = [str(project / "python"), str(HERE / "serving_medops_setup.py"), str(home)]
    token = (
        subprocess.run(  # noqa: S603 - fixed command
            [*setup, "--model", launch.model],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env.update({"MEDOPS_HOME": str(home), "MEDOPS_MFA_REQUIRED_ROLES": ""})
    spawn(
        [
            str(project / "medops"),
            "server",
            "--port",
            str(launch.port),
            "--workers",
            str(launch.workers),
        ],
        cwd=launch.folder,
        env=env,
        log=launch.log,
    )
    return f"http://127.0.0.1:{launch.port}", {"Authorization": f"Bearer {token}"}, launch.workers


# ============================================================================ END MEDOPS

STARTERS: dict[str, Callable[[Launch], Target]] = {
    "bare": start_bare,
    "mlflow": start_mlflow,
    "bentoml": start_bentoml,
    "medops": start_medops,
}
MEDOPS_PREDICT = "/api/v1/deployments/diabetes/predict"


def request_for(name: str, rows: list[dict[str, float]]) -> tuple[str, Json]:
    """The route and body asking server ``name`` about ``rows``: one row in the single-row
    shape every server was always asked with, several rows in that server's batch shape."""
    if name == "mlflow":
        return "/invocations", {"dataframe_records": rows}
    if name == "medops":
        if len(rows) == 1:
            return MEDOPS_PREDICT, {"features": rows[0]}
        return MEDOPS_PREDICT, {"records": [{"features": row} for row in rows]}
    if len(rows) == 1:
        return "/predict", {"features": rows[0]}
    if name == "bare":
        return "/predict_batch", {"records": [{"features": row} for row in rows]}
    return "/predict_batch", {"records": rows}  # bentoml: a list of feature dicts


def batch_rows(meta: Json, size: int) -> tuple[list[dict[str, float]], list[float]]:
    """``size`` distinct rows of the data set, rows 0, 1, 2, ... (from row 0 again past the
    last), and the positive-class probability scikit-learn gives each."""
    rows, positive = meta["rows"], meta["positive"]
    picked = [index % len(rows) for index in range(size)]
    return [rows[index] for index in picked], [float(positive[index]) for index in picked]


@dataclass
class Server:
    name: str
    base_url: str
    headers: dict[str, str]
    workers: int  # worker processes it actually runs
    pids: list[int]
    log: Path


@dataclass(frozen=True)
class Query:
    """One batch size's request to one server, and the probabilities it must answer."""

    url: str
    payload: Json
    expected: list[float]


def post(url: str, headers: dict[str, str], payload: Json, timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")


def positive_probabilities(body: Any) -> list[float] | None:
    """The class-1 probability of each row in an answer: a ``probabilities`` list (one row) or
    list of lists (bare and BentoML batches), MLflow's ``predictions`` lists, or medops's
    ``predictions[i].score``; None when the answer holds none of these."""
    if not isinstance(body, dict):
        return None
    found: list[float] | None = None
    probabilities, predictions = body.get("probabilities"), body.get("predictions")
    if isinstance(probabilities, list) and probabilities:
        nested = all(isinstance(row, list) for row in probabilities)
        found = [float(row[-1]) for row in (probabilities if nested else [probabilities])]
    elif isinstance(predictions, list) and predictions:
        if all(isinstance(row, list) for row in predictions):
            found = [float(row[-1]) for row in predictions]
        elif all(
            isinstance(row, dict) and isinstance(row.get("score"), float) for row in predictions
        ):
            found = [float(row["score"]) for row in predictions]  # medops: the positive class's
    for value in body.values():
        if found is not None:
            break
        found = positive_probabilities(value)
    return found


def log_tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def check_parity(name: str, query: Query, body: Any) -> None:
    """Raise unless the answer holds one probability per row, each within the tolerance."""
    found = positive_probabilities(body)
    if found is None:
        print(f"note: {name}: no probabilities found in its answer, parity not checked: {body}")
        return
    if len(found) != len(query.expected):
        raise RuntimeError(f"{name} answers {len(found)} rows for {len(query.expected)}: {body}")
    gaps = [abs(got - want) for got, want in zip(found, query.expected, strict=True)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    if gaps[worst] > PARITY_TOLERANCE:
        raise RuntimeError(
            f"{name} answers p(1)={found[worst]} for row {worst} of {len(found)}, "
            f"expected {query.expected[worst]}"
        )


def start(
    name: str, launch: Launch, meta: Json, batches: list[int]
) -> tuple[Server, dict[int, Query]]:
    """Start one server, wait until its real request answers 200, then check its
    probabilities for every batch size; answers the server and its query per batch size."""
    first = len(_PROCESSES)
    base_url, headers, workers = STARTERS[name](launch)
    processes = _PROCESSES[first:]
    server = Server(name, base_url, headers, workers, [p.pid for p in processes], launch.log)
    queries: dict[int, Query] = {}
    for size in batches:
        rows, expected = batch_rows(meta, size)
        path, payload = request_for(name, rows)
        queries[size] = Query(base_url + path, payload, expected)
    ready = queries[batches[0]]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"{name} exited while starting:\n{log_tail(server.log)}")
        try:
            status, body = post(ready.url, headers, ready.payload, timeout=5)
        except OSError:
            status, body = 0, None
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s (last: {status})")
        time.sleep(0.25)
    for size, query in queries.items():
        status, body = post(query.url, headers, query.payload, timeout=30)
        if status != 200:
            raise RuntimeError(f"{name} answers {status} to a batch of {size}: {body}")
        check_parity(name, query, body)
    return server, queries


# --------------------------------------------------------------------------- load

LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.body = {body}
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local non200 = 0
  for _, thread in ipairs(threads) do non200 = non200 + thread:get("non200") end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "p50_us": %.0f, "p99_us": %.0f, '
      .. '"non200": %d, "socket_errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    non200, e.connect + e.read + e.write + e.timeout))
end
"""


def lua_script(server: Server, query: Query, script: Path) -> Path:
    def long_string(text: str) -> str:
        assert "]==]" not in text, text
        return f"[==[{text}]==]"

    headers = {"Content-Type": "application/json", **server.headers}
    lines = [f"wrk.headers[ {long_string(k)} ] = {long_string(v)}" for k, v in headers.items()]
    body = json.dumps(query.payload, separators=(",", ":"))
    script.write_text(LUA_TEMPLATE.format(body=long_string(body), headers="\n".join(lines)))
    return script


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    non200: int
    socket_errors: int


def load(
    server: Server, url: str, script: Path, connections: int, duration: float, threads: int
) -> Run:
    """One wrk run against ``url`` of ``server``; its CPU time is read around the run."""
    command = [WRK, "--threads", str(min(threads, connections))]
    command += ["--connections", str(connections), "--duration", f"{duration:g}s"]
    command += ["--timeout", "10s", "--script", str(script), url]
    cpu_before = cpu_seconds(server.pids)
    done = subprocess.run(  # noqa: S603 - wrk with our own arguments
        command, capture_output=True, text=True, check=False, timeout=duration + 60
    )
    cpu_used = cpu_seconds(server.pids) - cpu_before
    result = next(
        (line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")), None
    )
    if done.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    stats = json.loads(result.removeprefix("WRK_RESULT "))
    requests = max(int(stats["requests"]), 1)
    return Run(
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        cpu_ms_per_request=cpu_used * 1000 / requests,
        non200=int(stats["non200"]),
        socket_errors=int(stats["socket_errors"]),
    )


# (model, batch, workers asked for, server, concurrency)
Key = tuple[str, int, int, str, int]


def measure(
    servers: list[Server],
    queries: dict[str, dict[int, Query]],
    args: argparse.Namespace,
    model: str,
    workers: int,
    results: dict[Key, list[Run]],
) -> None:
    """Warm every server up on every batch size, then the alternating rounds: in each round,
    for each batch size and concurrency, every server once, the order rotating by round."""
    scripts = {
        (server.name, size): lua_script(
            server, query, server.log.with_name(f"{server.name}-w{workers}-b{size}.lua")
        )
        for server in servers
        for size, query in queries[server.name].items()
    }
    for size in args.batches:
        for server in servers:
            url = queries[server.name][size].url
            load(server, url, scripts[server.name, size], max(args.concurrency), args.warmup, 1)
    for round_index in range(args.rounds):
        shift = round_index % max(len(servers), 1)
        order = servers[shift:] + servers[:shift]
        for size in args.batches:
            for connections in args.concurrency:
                for server in order:
                    url, script = queries[server.name][size].url, scripts[server.name, size]
                    run = load(server, url, script, connections, args.duration, args.wrk_threads)
                    key = (model, size, workers, server.name, connections)
                    results.setdefault(key, []).append(run)
                    print(
                        f"round {round_index + 1} {model} b={size:<3} w={workers} "
                        f"c={connections:<3} {server.name:8s} {run.rps:8.0f} req/s  "
                        f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  "
                        f"non-200 {run.non200}",
                        flush=True,
                    )


# --------------------------------------------------------------------------- report


def peer_versions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "v = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: v[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: v[name] = 'absent'\n"
        "v['python'] = sys.version.split()[0]\n"
        "print(json.dumps(v))\n"
    )
    done = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "python"), "-c", code, *PEER_PACKAGES],
        capture_output=True,
        text=True,
        check=True,
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def report(
    results: dict[Key, list[Run]],
    ran_workers: dict[tuple[str, int, str], int],
    args: argparse.Namespace,
) -> str:
    """One table: a row per model, batch size, workers, server and concurrency; the ratios
    are to ``bare`` with the same model, batch size, workers and concurrency. The workers
    column is what the server ran (medops: always 1)."""
    columns = (
        "model",
        "batch",
        "workers",
        "server",
        "conc",
        "req/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "req/s vs bare",
        "p50 vs bare",
        "p99 vs bare",
        "req/s min-max",
        "non-200",
        "socket errors",
    )
    rows = ["| " + " | ".join(columns) + " |", "|---|---:|---:|---" + "|---:" * 12 + "|"]
    for model in args.models:
        for size in args.batches:
            for workers in args.workers:
                for connections in args.concurrency:
                    medians: dict[str, dict[str, float]] = {}
                    for name in args.only:
                        runs = results.get((model, size, workers, name, connections), [])
                        if runs:
                            medians[name] = {
                                field: statistics.median(getattr(run, field) for run in runs)
                                for field in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
                            }
                    bare = medians.get("bare", {})
                    for name, median in medians.items():
                        runs = results[(model, size, workers, name, connections)]
                        rps = [run.rps for run in runs]
                        rows.append(
                            f"| {model} | {size} | {ran_workers[model, workers, name]} "
                            f"| {name} | {connections} | {median['rps']:.0f} "
                            f"| {median['rps'] * size:.0f} "
                            f"| {median['p50_ms']:.2f} | {median['p99_ms']:.2f} "
                            f"| {median['cpu_ms_per_request']:.3f} "
                            f"| {ratio(median['rps'], bare.get('rps'))} "
                            f"| {ratio(median['p50_ms'], bare.get('p50_ms'))} "
                            f"| {ratio(median['p99_ms'], bare.get('p99_ms'))} "
                            f"| {min(rps):.0f}-{max(rps):.0f} "
                            f"| {sum(run.non200 for run in runs)} "
                            f"| {sum(run.socket_errors for run in runs)} |"
                        )
    fewer = sorted({(name, asked) for (_, asked, name), ran in ran_workers.items() if ran != asked})
    for name, asked in fewer:
        rows.append(
            f"\n{name} ran 1 process where {asked} workers were asked; its ratios in "
            f"those rows compare 1 process with bare's {asked} workers."
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------- main

# Rough start-up costs, for the projected duration only (seconds, on the 2-core machine).
BUILD_ESTIMATE_S = 15.0
START_ESTIMATE_S = {"bare": 3.0, "mlflow": 15.0, "bentoml": 20.0, "medops": 15.0}


def projected_seconds(args: argparse.Namespace) -> tuple[float, float]:
    """(seconds of load runs, warm-ups included; rough seconds of builds and start-ups)."""
    server_sets = len(args.models) * len(args.workers)
    runs_per_server = len(args.batches) * args.rounds * len(args.concurrency)
    load_s = (
        server_sets
        * len(args.only)
        * (len(args.batches) * args.warmup + runs_per_server * args.duration)
    )
    starts_s = len(args.models) * BUILD_ESTIMATE_S + server_sets * sum(
        START_ESTIMATE_S[name] for name in args.only
    )
    return load_s, starts_s


def integers(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per server (3)")
    parser.add_argument(
        "--concurrency", default="1,32", help="wrk connections, comma-separated (1,32)"
    )
    parser.add_argument(
        "--only", default=",".join(SERVERS), help=f"servers, comma-separated ({','.join(SERVERS)})"
    )
    parser.add_argument(
        "--models",
        "--model",
        default="logreg",
        help=f"models, comma-separated, from {','.join(MODELS)} (default logreg)",
    )
    parser.add_argument(
        "--batches",
        "--batch",
        type=integers,
        default=[1],
        help="rows per request, comma-separated (default 1)",
    )
    parser.add_argument(
        "--workers",
        type=integers,
        default=[1],
        help="worker processes per server, comma-separated (default 1)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--workdir", type=Path, help="keep model, logs and scripts here")
    args = parser.parse_args(argv)
    args.concurrency = integers(args.concurrency)
    args.only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(args.only) - set(SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {SERVERS}")
    args.models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")
    if not (VENV_BIN / "python").exists():
        parser.error(f"no peers venv at {VENV_BIN.parent}: run bash benchmarks/peers/setup.sh")
    if shutil.which("wrk") is None:
        parser.error("wrk not found: apt-get install -y wrk")
    return args


def build(folder: Path, model: str) -> Json:
    """Train and package ``model`` for every peer (peers/build_model.py); its meta.json."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "build.log").open("wb") as build_log:
        subprocess.run(  # noqa: S603
            [
                str(VENV_BIN / "python"),
                str(PEERS / "build_model.py"),
                str(folder),
                "--model",
                model,
            ],
            cwd=folder,
            env=server_env(folder),
            check=True,
            stdout=build_log,
            stderr=subprocess.STDOUT,
        )
    meta: Json = json.loads((folder / "meta.json").read_text())
    return meta


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_s, starts_s = projected_seconds(args)
    print(
        f"projected duration: about {(load_s + starts_s) / 60:.0f} min "
        f"({load_s / 60:.1f} min of load runs and warm-ups, about {starts_s / 60:.1f} min of "
        f"model builds and server start-ups): models {','.join(args.models)} x workers "
        f"{','.join(map(str, args.workers))} server sets, batches "
        f"{','.join(map(str, args.batches))}, concurrency "
        f"{','.join(map(str, args.concurrency))}, {args.rounds} round(s) x "
        f"{args.duration:g} s, servers {','.join(args.only)}",
        flush=True,
    )
    began_all = time.monotonic()
    versions = peer_versions()
    wrk_version = subprocess.run(  # noqa: S603
        [WRK, "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    results: dict[Key, list[Run]] = {}
    ran_workers: dict[tuple[str, int, str], int] = {}
    with working_folder(args.workdir, "serving-bench-") as workdir:
        for model in args.models:
            folder = workdir / model
            print(f"building {model} in {folder} ...", flush=True)
            meta = build(folder, model)
            for workers in args.workers:
                servers: list[Server] = []
                queries: dict[str, dict[int, Query]] = {}
                try:
                    for name in args.only:
                        began = time.monotonic()
                        log = folder / f"{name}-w{workers}.log"
                        launch = Launch(folder, model, free_port(), workers, log)
                        try:
                            server, queries[name] = start(name, launch, meta, args.batches)
                        except NotImplementedError as error:
                            print(f"note: skipping {name}: {error}")
                            continue
                        servers.append(server)
                        ran_workers[model, workers, name] = server.workers
                        tree = sum(len(process_tree(pid)) for pid in server.pids)
                        print(
                            f"{name} ({model}, {server.workers} worker(s), {tree} processes "
                            f"in its tree) ready in {time.monotonic() - began:.1f} s",
                            flush=True,
                        )
                    measure(servers, queries, args, model, workers, results)
                finally:
                    stop_all()
    print()
    print(
        f"## Serving benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"{args.rounds} round(s) x {args.duration:g} s per run, wrk {args.wrk_threads} "
        f"thread(s) ({wrk_version.split(' Copyright')[0]}), {os.cpu_count()} CPU(s); "
        f"took {(time.monotonic() - began_all) / 60:.1f} min; medians over rounds; "
        "rows/s = req/s x batch; CPU = user+sys of the server's process tree per request.\n"
    )
    print(report(results, ran_workers, args))
    print("\npeers venv: " + ", ".join(f"{name} {v}" for name, v in versions.items()))


if __name__ == "__main__":
    main()
