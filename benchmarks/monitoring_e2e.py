#!/usr/bin/env python3
# ruff: noqa: T201
"""End-to-end monitoring benchmark: predictions logged through the API, then one monitoring
window over all of them, against Evidently on the same rows loaded from Parquet.

The goal it measures (issue 17, item 5): monitoring N = 1M logged predictions x 20 features
end to end (reading the log plus every statistic of the window) at least 20x faster than
Evidently's report on the same rows loaded from Parquet, at no more than a third of its
memory; reading the log at least 10x faster than today.

Data (``numpy.random.default_rng(SEED)``, values rounded to 4 decimals so the JSON sent to the
server, the log and the Parquet files hold the same numbers): 20 numeric features ``f00`` ...
``f19`` (normal, lognormal, uniform and exponential shapes in turn, as in ``monitoring.py``).
Reference: ``--reference-rows`` rows (default 50,000) with a binary outcome drawn from a
logistic function of the features. Current: ``--rows`` rows (default 1,000,000) from the same
distributions, with ``f00``-``f03`` shifted by +0.05 to +0.2 standard deviations and spread
10 % wider, so drift shows; no outcomes.

Model: ``Pipeline(StandardScaler, LogisticRegression)`` fitted on a separate draw of the
reference distribution, exported to ONNX by ``medops.packaging.package_model`` (skl2onnx) and
taken through the governed path as ``serving_medops_setup.py`` does: registered, validated on
the reference rows with their outcomes (that report's rows become the version's reference
profile), a complete card, a clinician's and an ML engineer's signatures, promoted to
``production`` and deployed as ``bench``.

Logging phase (timed, reported as rows/s, not part of the goal): ``medops server`` (one
uvicorn worker, SQLite in the work folder, default settings except the scheduled monitor,
which is off so it does not run during the load) and ``--clients`` client processes (default
4), each POSTing its contiguous share of the current rows in ``{"records": [...]}`` requests of
``--batch`` records (default 100) over one keep-alive connection; a request shed with 503 is
sent again after its Retry-After. Each client keeps the scores the server answered; they
become the ``score`` column of ``current.parquet`` (the reference's are the ONNX model's
scores of the reference rows), written with pyarrow in the Evidently venv (the project's venv
has no Parquet reader). Afterwards one monitoring run of a window kind larger than the log
(``count:N+1``) builds and stores the version's reference profile, so no contender pays for
it, confirms the log holds N predictions, and the SQLite WAL is checkpointed into the file.

Monitoring phase (measured), each contender in its own subprocess per round, so the peak
resident set (``VmHWM`` from ``/proc/self/status`` at the end of the child: interpreter,
libraries, data and work) is per contender. Rounds alternate the contender order; the table
shows medians and min-max over ``--rounds`` (default 3).

- ``medops-e2e`` (project ``.venv``): ``MonitoringService.run(ctx, "count:N")`` over a copy of
  the logged home taken before the round (a run stores its window, so each round starts from
  the logged state): the series found in the log, the stored profile, one count window of all
  N rows read through ``logread.read_count_window``, ``evaluate_window`` and the result stored
  with its audit record. Timed: the run; building the services is reported apart.
- ``medops-read`` (project ``.venv``): only ``logread.read_count_window(db, LogSeries("bench",
  1), signature, 0, N)`` on the logged database: the seam to make 10x faster.
- ``medops-stats`` (project ``.venv``): only ``evaluate_window`` with the stored profile and
  the default configuration, on the current rows already in memory (the scores, no
  outcomes). The rows come from the same arrays the Parquet files were written from
  (``.npy``), as the project's venv has no Parquet reader; reading the stored profile
  ("profile") and loading the rows ("load") are timed apart.
  The rows are handed over as the read seam hands them: one float64 array per feature.
- ``read-before`` (project ``.venv``, only with ``--baseline DIR``): ``medops-read`` with the
  ``src/`` of an earlier checkout first on ``PYTHONPATH`` (e.g. ``git worktree add DIR
  216314c``, the commit before issue 17's log format): the reader that parsed every row's JSON,
  on the same database (it ignores the packed columns), for "10x faster than today".
- ``evidently`` (``benchmarks/.monitoring-venv``, ``monitoring-peers/setup.sh``): the
  reference and current Parquet files into two pandas DataFrames ("load"), then
  ``Report([DataDriftPreset()]).run(current, reference)`` ("report"); the total is the time
  compared with ``medops-e2e``.

What is compared, and why it is fair: Evidently gets the 20 features plus the ``score`` column
(its per-column drift of the score is medops' prediction drift), its own column-type inference
(Wasserstein distance for numeric columns at these sizes) and its DataDriftPreset's summary.
No outcomes are logged, so neither side computes realized performance (Evidently's
classification preset needs targets in the current data). medops' window does more than
Evidently's report, not less: per feature KS, Wasserstein, PSI, KL, Jensen-Shannon and
missing rate with a Holm-corrected dataset verdict, PCA multivariate drift, score drift and a
CBPE performance estimate; and ``medops-e2e`` also reads the log from SQLite and stores the
result, where Evidently reads a columnar file and keeps its result in memory.

Run (any Python 3.11+; this script uses the standard library only and re-runs itself in the
two venvs for the children):
    make setup                                     # once: .venv
    bash benchmarks/monitoring-peers/setup.sh      # once: benchmarks/.monitoring-venv
    python3 benchmarks/monitoring_e2e.py [--rows 1000000] [--reference-rows 50000]
        [--rounds 3] [--clients 4] [--batch 100] [--only medops-e2e,medops-read,...]
        [--workdir DIR [--reuse]] [--timeout 3600] [--json]
``--workdir`` keeps the logged home and the data (for 1M rows about 1.7 GB of SQLite, 0.2 GB
of ``.npy``, 0.15 GB of Parquet, and one more copy of the home during a ``medops-e2e``
round); ``--reuse`` skips the preparation and the logging phase when the folder already holds
a logged home of ``--rows`` rows. Results go to ``WORKDIR/results.json`` as well as the table
on stdout (``--json`` prints them instead).
"""

from __future__ import annotations

import argparse
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
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import QUIET_ENV, peak_kib, working_folder

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".monitoring-venv" / "bin" / "python"
PROJECT_BIN = HERE.parent / ".venv" / "bin"
PROJECT_PYTHON = PROJECT_BIN / "python"
CONTENDERS = ("medops-e2e", "medops-read", "medops-stats", "evidently", "read-before")
N_FEATURES = 20
SHIFTED = 4  # f00-f03 drift in the current rows
SEED = 20_261_205
NAME = "bench"  # model and deployment
PASSWORD = "benchmark-password-not-for-production"  # noqa: S105 - a throwaway home
PEER_PACKAGES = ("evidently", "pandas", "pyarrow", "numpy")
PROJECT_PACKAGES = ("medops", "numpy", "scipy", "sqlalchemy")

Json = dict[str, Any]


# --------------------------------------------------------------------------- children
# These run inside a venv (``--child NAME``): numpy, medops and Evidently are imported there.


def peak_mib() -> float:
    """Peak resident set of this process so far (VmHWM), in MiB."""
    return peak_kib() / 1024


def feature_names() -> list[str]:
    return [f"f{j:02d}" for j in range(N_FEATURES)]


def child_prepare(work: Path, rows: int, reference_rows: int) -> Json:
    """Data as ``.npy`` (features column-major), the model through the governed path and
    deployed in ``work/home``; returns the API token of a clinician."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    rng = np.random.default_rng(SEED)
    names = feature_names()

    def features(n: int, *, current: bool) -> Any:
        out = np.empty((N_FEATURES, n), dtype=np.float64)
        for j in range(N_FEATURES):
            shape = j % 4
            if shape == 0:
                column = rng.normal(10.0 * j, 1.0 + j, n)
            elif shape == 1:
                column = rng.lognormal(0.5, 0.75, n)
            elif shape == 2:
                column = rng.uniform(-j, j + 1.0, n)
            else:
                column = rng.exponential(2.0 + j, n)
            if current and j < SHIFTED:
                mean, std = column.mean(), column.std()
                column = mean + (column - mean) * 1.1 + 0.05 * (j + 1) * std
            out[j] = np.round(column, 4)
        return out

    weights = rng.normal(0.0, 1.0, N_FEATURES)

    def outcomes(x: Any) -> Any:
        z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        logit = weights @ z / np.sqrt(N_FEATURES) * 2.0
        return (rng.random(x.shape[1]) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    train = features(reference_rows, current=False)
    reference = features(reference_rows, current=False)
    current = features(rows, current=True)
    train_frame = pd.DataFrame(dict(zip(names, train, strict=True)))
    reference_frame = pd.DataFrame(dict(zip(names, reference, strict=True)))
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=1000))]
    )
    pipeline.fit(train_frame, outcomes(train))
    reference_labels = outcomes(reference)
    np.save(work / "reference_x.npy", reference)
    np.save(work / "current_x.npy", current)
    token, reference_scores = register(work / "home", pipeline, reference_frame, reference_labels)
    np.save(work / "reference_score.npy", reference_scores)
    return {"token": token, "features": names}


def register(home: Path, pipeline: Any, frame: Any, labels: Any) -> tuple[str, Any]:
    """The governed path of ``serving_medops_setup.py`` for ``pipeline``: (a clinician's API
    token, the ONNX model's scores of ``frame``)."""
    from medops import admin
    from medops.auth.schemas import TokenCreate, UserCreate
    from medops.config import Settings
    from medops.context import SYSTEM_ACTOR, Context, Origin
    from medops.core.onnx_model import OnnxModel
    from medops.core.permissions import Role
    from medops.examples import DIABETES_CARD
    from medops.packaging import package_model
    from medops.registry.refs import Ref
    from medops.registry.schemas import (
        ApprovalRequest,
        CardContent,
        ModelCreate,
        PromoteRequest,
        PromotionPolicy,
        VersionCreate,
    )
    from medops.services import build_services
    from medops.serving.schemas import DeploymentCreate

    settings = Settings(home=home, mfa_required_roles=())
    admin.init(settings)
    services = build_services(settings)
    system = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="127.0.0.1"))
    try:
        ctx = {}
        for username, role in (
            ("ds", Role.DATA_SCIENTIST),
            ("mle", Role.ML_ENGINEER),
            ("clin", Role.CLINICIAN),
        ):
            services.identity.create_user(
                system,
                UserCreate(username=username, role=role, password=PASSWORD, full_name=username),
            )
            login = services.logins.login(system, username, PASSWORD, kind="login")
            ctx[username] = Context(
                actor=services.logins.authenticate(login.secret), origin=system.origin
            )
        # A card needs a demographic attribute: f04 (normal, mean 40, sd 5, not shifted)
        # stands for age, in three bands.
        pkg = package_model(
            pipeline, sample=frame, demographic=["f04"], bands={"f04": [37.0, 43.0]}
        )
        assert pkg.parity is not None
        policy = PromotionPolicy(min_auroc=None, max_ece=None, max_subgroup_gap=None)
        services.registry.create_model(ctx["mle"], ModelCreate(name=NAME, policy=policy))
        services.registry.register_version(
            ctx["ds"],
            NAME,
            pkg.onnx,
            VersionCreate.model_validate(
                {
                    "signature": pkg.signature.model_dump(mode="json"),
                    "framework": pkg.framework,
                    "training_data": {"uri": "generated:monitoring_e2e", "digest": "0" * 64},
                    "parity": {
                        "columns": pkg.parity.columns,
                        "native_probabilities": pkg.parity.native_probabilities,
                        "tolerance": pkg.parity.tolerance,
                    },
                }
            ),
        )
        ref = Ref(NAME, version=1)
        labeled = frame.copy()
        labeled["outcome"] = labels
        services.registry.validate(
            ctx["ds"],
            ref,
            labeled.to_csv(index=False).encode(),
            label_column="outcome",
            dataset_name="reference.csv",
            n_bootstrap=50,
        )
        services.registry.set_card(ctx["clin"], ref, CardContent.model_validate(DIABETES_CARD))
        for signer in ("clin", "mle"):
            services.lifecycle.approve(ctx[signer], ref, ApprovalRequest(password=PASSWORD))
        services.lifecycle.promote(
            ctx["mle"], NAME, "production", PromoteRequest(version=1, reason="benchmark")
        )
        services.deployments.create(
            ctx["mle"], DeploymentCreate(name=NAME, model=f"{NAME}@production")
        )
        token = services.identity.create_token(ctx["clin"], TokenCreate(name="benchmark"))
        columns = {name: frame[name].to_numpy() for name in frame.columns}
        scores = OnnxModel(pkg.onnx, pkg.signature).positive_scores(columns)
        return token.token, scores
    finally:
        services.close()


def child_client(work: Path, index: int, clients: int, url: str, token: str, batch: int) -> Json:
    """POST this client's share of the current rows; keep the scores answered, in order."""
    import http.client
    from urllib.parse import urlsplit

    import numpy as np

    names = feature_names()
    current = np.load(work / "current_x.npy", mmap_mode="r")
    total = current.shape[1]
    begin, end = index * total // clients, (index + 1) * total // clients
    scores = np.empty(end - begin, dtype=np.float64)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    path = f"/api/v1/deployments/{NAME}/predict"
    shed = resent = 0
    began = time.perf_counter()
    for start in range(begin, end, batch):
        stop = min(start + batch, end)
        records = [
            {"features": dict(zip(names, row, strict=True))}
            for row in np.asarray(current[:, start:stop]).T.tolist()
        ]
        body = json.dumps({"records": records})
        while True:
            try:
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            except (ConnectionError, http.client.HTTPException):
                # Dropped connection: send again on a new one. The server may have logged
                # the batch already; the settle step reports such extra rows.
                connection.close()
                resent += 1
                if resent > 100:  # not a glitch any more
                    raise
                continue
            if answer.status == 200:
                break
            if answer.status != 503:  # shed: send it again
                raise RuntimeError(f"{answer.status}: {payload[:500]!r}")
            shed += 1
            time.sleep(min(float(answer.getheader("Retry-After") or 0.05), 1.0))
        answered = json.loads(payload)["predictions"]
        scores[start - begin : stop - begin] = [p["score"] for p in answered]
    seconds = time.perf_counter() - began
    connection.close()
    np.save(work / f"current_score_{index}.npy", scores)
    return {"rows": end - begin, "seconds": seconds, "shed": shed, "resent": resent}


def child_settle(work: Path, rows: int, clients: int) -> Json:
    """After the logging phase: the reference profile built and stored by a run of a window
    longer than the log (so no contender pays for it), the count of logged predictions from
    that run's summary, the profile and signature as files, the WAL checkpointed."""
    import sqlite3

    import numpy as np
    from sqlalchemy import select

    from medops.config import Settings
    from medops.context import SYSTEM_ACTOR, Context, Origin
    from medops.monitoring.tables import MonitoringProfile
    from medops.registry.refs import Ref
    from medops.services import build_services

    np.save(
        work / "current_score.npy",
        np.concatenate([np.load(work / f"current_score_{i}.npy") for i in range(clients)]),
    )
    settings = Settings(home=work / "home", mfa_required_roles=())
    services = build_services(settings)
    system = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="127.0.0.1"))
    try:
        summary = services.monitoring.run(system, f"count:{rows + 1}")
        logged = sum(p["predictions"] for p in summary.pending)
        if summary.skipped or logged < rows:
            raise RuntimeError(f"expected {rows} predictions: {summary}")
        version = services.registry.get_version(Ref(NAME, version=1))
        (work / "signature.json").write_text(version.signature.model_dump_json())
        with services.db.session() as session:
            profile = session.scalars(select(MonitoringProfile.profile)).one()
        (work / "profile.json").write_text(profile)
    finally:
        services.close()
    database = settings.resolved_database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"logged": logged}


def child_parquet(work: Path) -> Json:
    """``reference.parquet`` and ``current.parquet``: the features and the score."""
    import numpy as np
    import pandas as pd

    names = feature_names()
    for side in ("reference", "current"):
        x = np.load(work / f"{side}_x.npy")
        columns: dict[str, Any] = dict(zip(names, x, strict=True))
        columns["score"] = np.load(work / f"{side}_score.npy")
        pd.DataFrame(columns).to_parquet(work / f"{side}.parquet", index=False)
    return {}


def child_medops_e2e(home: Path, rows: int) -> Json:
    from datetime import timedelta

    from medops.config import Settings
    from medops.context import SYSTEM_ACTOR, Context, Origin
    from medops.services import build_services

    began = time.perf_counter()
    services = build_services(Settings(home=home, mfa_required_roles=()))
    system = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="127.0.0.1"))
    ready = time.perf_counter()
    try:
        # Past the grace minute of the last prediction, however recent the logging was.
        now = datetime.now(UTC) + timedelta(minutes=2)
        summary = services.monitoring.run(system, f"count:{rows}", now=now)
        done = time.perf_counter()
    finally:
        services.close()
    if summary.skipped or len(summary.computed) != 1 or summary.computed[0]["rows"] != rows:
        raise RuntimeError(f"expected one window of {rows} rows: {summary}")
    window = summary.computed[0]
    return {
        "setup_s": ready - began,
        "seconds": done - ready,
        "check": f"{window['verdict']}; " + "; ".join(window["alerts"]),
    }


def child_medops_read(home: Path, rows: int, work: Path) -> Json:
    from medops.config import Settings
    from medops.core.signature import ModelSignature
    from medops.db.engine import Database
    from medops.monitoring.logread import LogSeries, read_count_window

    signature = ModelSignature.model_validate_json((work / "signature.json").read_text())
    db = Database(Settings(home=home, mfa_required_roles=()).resolved_database_url)
    began = time.perf_counter()
    window, _span, _last = read_count_window(db, LogSeries(NAME, 1), signature, 0, rows)
    done = time.perf_counter()
    db.dispose()
    if window.rows != rows:
        raise RuntimeError(f"read {window.rows} rows, expected {rows}")
    return {"seconds": done - began, "check": f"{window.rows} rows"}


def child_medops_stats(work: Path) -> Json:
    import numpy as np

    from medops.core.signature import ModelSignature
    from medops.monitoring.evaluate import WindowRows, evaluate_window
    from medops.monitoring.profile import ReferenceProfile
    from medops.monitoring.schemas import MonitoringConfig
    from medops.monitoring.thresholds import applied

    began = time.perf_counter()
    signature = ModelSignature.model_validate_json((work / "signature.json").read_text())
    profile = ReferenceProfile.from_dict(json.loads((work / "profile.json").read_text()))
    judged = applied(profile, MonitoringConfig())
    profiled = time.perf_counter()
    current = np.load(work / "current_x.npy")
    scores = np.load(work / "current_score.npy")
    # As the read seam hands the rows over: one float64 array per numeric feature.
    window = WindowRows(
        features={
            n: np.ascontiguousarray(c) for n, c in zip(feature_names(), current, strict=True)
        },
        scores=scores,
        outcomes=[None] * len(scores),
    )
    del current
    loaded = time.perf_counter()
    document = evaluate_window(
        profile,
        signature,
        window,
        thresholds=judged.thresholds,
        correction=judged.correction,
        min_samples=judged.min_samples,
    )
    done = time.perf_counter()
    return {
        "profile_s": profiled - began,
        "load_s": loaded - profiled,
        "seconds": done - loaded,
        "check": f"{document['verdict']}; " + "; ".join(document["alerts"]),
    }


def child_evidently(work: Path) -> Json:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    began = time.perf_counter()
    reference = pd.read_parquet(work / "reference.parquet")
    current = pd.read_parquet(work / "current.parquet")
    loaded = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    done = time.perf_counter()
    metrics = snapshot.dict()["metrics"]
    # metrics[0] counts the drifted columns; then one ValueDrift per column (distance >=
    # threshold is drift for the distance methods Evidently picks at these sizes).
    drifted = [
        m["config"]["column"]
        for m in metrics[1:]
        if "threshold" in m["config"] and m["value"] >= m["config"]["threshold"]
    ]
    return {
        "load_s": loaded - began,
        "report_s": done - loaded,
        "seconds": done - began,
        "check": f"{metrics[0]['value']}; drifted: {', '.join(drifted)}",
    }


def child_versions(packages: list[str]) -> Json:
    from importlib import metadata

    found: Json = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def run_child(name: str, args: list[str]) -> None:
    """Entry point of a child: do the work, print one ``RESULT {json}`` line with the peak."""
    try:
        if name == "prepare":
            result = child_prepare(Path(args[0]), int(args[1]), int(args[2]))
        elif name == "client":
            work, index, clients, url, token, batch = args
            result = child_client(Path(work), int(index), int(clients), url, token, int(batch))
        elif name == "settle":
            result = child_settle(Path(args[0]), int(args[1]), int(args[2]))
        elif name == "parquet":
            result = child_parquet(Path(args[0]))
        elif name == "versions":
            result = child_versions(args)
        elif name == "medops-e2e":
            result = child_medops_e2e(Path(args[0]), int(args[1]))
        elif name == "medops-read":
            result = child_medops_read(Path(args[0]), int(args[1]), Path(args[2]))
        elif name == "medops-stats":
            result = child_medops_stats(Path(args[0]))
        else:
            result = child_evidently(Path(args[0]))
        result["peak_mib"] = peak_mib()
    except MemoryError:
        result = {"error": "OOM"}
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


def start_child(
    python: Path, name: str, args: list[str], log: Path, *, pythonpath: Path | None = None
) -> subprocess.Popen[bytes]:
    command = [str(python), str(Path(__file__).resolve()), "--child", name, *args]
    env = dict(os.environ) | QUIET_ENV
    if pythonpath is not None:  # this source tree's medops before the venv's own
        env["PYTHONPATH"] = str(pythonpath)
    with log.open("ab") as sink:
        return subprocess.Popen(  # noqa: S603 - fixed commands from this file
            command,
            cwd=HERE.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
        )


def finish_child(
    process: subprocess.Popen[bytes], *, timeout: float, log: Path
) -> tuple[Json | str, float]:
    """(the child's RESULT or an error word, seconds it ran as seen from here)."""
    began = time.perf_counter()
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout", time.perf_counter() - began
    wall = time.perf_counter() - began
    line = next((x for x in stdout.decode().splitlines() if x.startswith("RESULT ")), None)
    if process.returncode == -signal.SIGKILL:
        return "OOM", wall
    if process.returncode != 0 or line is None:
        return f"failed (exit {process.returncode}, see {log})", wall
    result: Json = json.loads(line.removeprefix("RESULT "))
    return result.get("error", result), wall


def spawn(
    python: Path,
    name: str,
    args: list[str],
    *,
    timeout: float,
    log: Path,
    pythonpath: Path | None = None,
) -> tuple[Json | str, float]:
    began = time.perf_counter()
    child = start_child(python, name, args, log, pythonpath=pythonpath)
    found, _ = finish_child(child, timeout=timeout, log=log)
    return found, time.perf_counter() - began


def must(found: Json | str, what: str) -> Json:
    if isinstance(found, str):
        raise RuntimeError(f"{what}: {found}")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_predictions(work: Path, args: argparse.Namespace, token: str, log: Path) -> Json:
    """Start ``medops server``, let the clients POST every current row, stop the server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ) | QUIET_ENV
    env |= {
        "MEDOPS_HOME": str(work / "home"),
        "MEDOPS_MFA_REQUIRED_ROLES": "",
        "MEDOPS_MONITOR_INTERVAL_SECONDS": "0",  # no scheduled run during the load
    }
    with (work / "server.log").open("ab") as sink:
        server = subprocess.Popen(  # noqa: S603 - fixed command
            [str(PROJECT_BIN / "medops"), "server", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {work / 'server.log'}") from None
                time.sleep(0.2)
        began = time.perf_counter()
        clients = [
            start_child(
                PROJECT_PYTHON,
                "client",
                [str(work), str(i), str(args.clients), url, token, str(args.batch)],
                log,
            )
            for i in range(args.clients)
        ]
        results = [
            must(finish_child(c, timeout=args.timeout, log=log)[0], "client") for c in clients
        ]
        seconds = time.perf_counter() - began
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    rows = sum(r["rows"] for r in results)
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "seconds_per_1000_rows": seconds / rows * 1000,
        "shed_requests": sum(r["shed"] for r in results),
        "resent_after_disconnect": sum(r["resent"] for r in results),
        "clients": args.clients,
        "batch": args.batch,
    }


def prepare_and_log(work: Path, args: argparse.Namespace, log: Path) -> Json:
    """Everything before the measured phase; its record is ``work/logged.json``."""
    shutil.rmtree(work / "home", ignore_errors=True)
    print(f"preparing {args.rows:,} current and {args.reference_rows:,} reference rows ...")
    made = must(
        spawn(
            PROJECT_PYTHON,
            "prepare",
            [str(work), str(args.rows), str(args.reference_rows)],
            timeout=args.timeout,
            log=log,
        )[0],
        "prepare",
    )
    print(f"logging them through the API ({args.clients} clients, batches of {args.batch}) ...")
    logging = log_predictions(work, args, made["token"], log)
    print(
        f"logged {logging['rows']:,} rows in {logging['seconds']:.1f} s "
        f"({logging['rows_per_s']:,.0f} rows/s, {logging['seconds_per_1000_rows']:.3f} s per "
        f"1,000 rows, {logging['shed_requests']} shed requests sent again)"
    )
    settled = must(
        spawn(
            PROJECT_PYTHON,
            "settle",
            [str(work), str(args.rows), str(args.clients)],
            timeout=args.timeout,
            log=log,
        )[0],
        "settle",
    )
    logging["logged"] = settled["logged"]
    if settled["logged"] != args.rows:  # a batch resent after a disconnect was logged twice
        print(f"note: the log holds {settled['logged']:,} rows; the window takes the first")
    must(spawn(PEERS_PYTHON, "parquet", [str(work)], timeout=args.timeout, log=log)[0], "parquet")
    state = {"rows": args.rows, "reference_rows": args.reference_rows, "logging": logging}
    (work / "logged.json").write_text(json.dumps(state, indent=2))
    return state


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float
    process_s: float
    extra: Json


def measure(work: Path, name: str, rows: int, args: argparse.Namespace, log: Path) -> Run | str:
    """One round of one contender, in its own process."""
    if name == "medops-e2e":
        home = work / "round-home"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(work / "home", home)  # a run stores its window: start from the log
        try:
            found, wall = spawn(
                PROJECT_PYTHON, name, [str(home), str(rows)], timeout=args.timeout, log=log
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)
    elif name in {"medops-read", "read-before"}:
        if name == "read-before" and args.baseline is None:
            return "no --baseline"
        found, wall = spawn(
            PROJECT_PYTHON,
            "medops-read",
            [str(work / "home"), str(rows), str(work)],
            timeout=args.timeout,
            log=log,
            # The reader of an earlier checkout, in the same venv, on the same database.
            pythonpath=args.baseline / "src" if name == "read-before" else None,
        )
    else:
        python = PEERS_PYTHON if name == "evidently" else PROJECT_PYTHON
        found, wall = spawn(python, name, [str(work)], timeout=args.timeout, log=log)
    if isinstance(found, str):
        return found
    extra = {k: v for k, v in found.items() if k not in {"seconds", "peak_mib"}}
    return Run(seconds=found["seconds"], peak_mib=found["peak_mib"], process_s=wall, extra=extra)


def median_of(runs: list[Run], key: str) -> float | None:
    values = [getattr(r, key, None) or r.extra.get(key) for r in runs]
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def summarize(results: dict[str, list[Run | str]]) -> dict[str, Json]:
    out: dict[str, Json] = {}
    for name, outcomes in results.items():
        runs = [o for o in outcomes if isinstance(o, Run)]
        failures = sorted({o for o in outcomes if isinstance(o, str)})
        entry: Json = {"ok": len(runs), "failures": failures}
        if runs:
            seconds = [r.seconds for r in runs]
            peaks = [r.peak_mib for r in runs]
            entry |= {
                "seconds": statistics.median(seconds),
                "seconds_min": min(seconds),
                "seconds_max": max(seconds),
                "peak_mib": statistics.median(peaks),
                "peak_mib_min": min(peaks),
                "peak_mib_max": max(peaks),
                "process_s": median_of(runs, "process_s"),
                "check": runs[0].extra.get("check", ""),
            }
            for key in ("setup_s", "profile_s", "load_s", "report_s"):
                if (value := median_of(runs, key)) is not None:
                    entry[key] = value
        out[name] = entry
    e2e, evidently = out.get("medops-e2e", {}), out.get("evidently", {})
    if "seconds" in e2e and "seconds" in evidently:
        out["ratios"] = {
            "evidently_s_over_medops_e2e_s": evidently["seconds"] / e2e["seconds"],
            "medops_e2e_mib_over_evidently_mib": e2e["peak_mib"] / evidently["peak_mib"],
            "goal": "time ratio >= 20, memory ratio <= 0.33",
        }
    return out


def table(summary: dict[str, Json], names: list[str]) -> str:
    columns = ("contender", "seconds", "min-max s", "peak MiB", "min-max MiB", "apart", "runs")
    lines = ["| " + " | ".join(columns) + " |", "|---" + "|---:" * (len(columns) - 2) + "|---|"]
    for name in names:
        entry = summary.get(name, {})
        runs = f"{entry.get('ok', 0)} ok" + (
            f", {'/'.join(entry['failures'])}" if entry.get("failures") else ""
        )
        if "seconds" not in entry:
            lines.append(f"| {name} | - | - | - | - | - | {runs} |")
            continue
        apart = ", ".join(
            f"{label} {entry[key]:.2f} s"
            for key, label in (
                ("setup_s", "setup"),
                ("profile_s", "profile"),
                ("load_s", "load"),
                ("report_s", "report"),
            )
            if key in entry
        )
        lines.append(
            f"| {name} | {entry['seconds']:.3f} | {entry['seconds_min']:.3f}-"
            f"{entry['seconds_max']:.3f} | {entry['peak_mib']:.0f} | {entry['peak_mib_min']:.0f}-"
            f"{entry['peak_mib_max']:.0f} | {apart or '-'} | {runs} |"
        )
    return "\n".join(lines)


def versions(log: Path) -> str:
    parts = []
    for python, packages in ((PEERS_PYTHON, PEER_PACKAGES), (PROJECT_PYTHON, PROJECT_PACKAGES)):
        found, _ = spawn(python, "versions", list(packages), timeout=120, log=log)
        if isinstance(found, dict):
            found.pop("peak_mib", None)
            parts.append(
                f"{python.parent.parent.name}: " + ", ".join(f"{k} {v}" for k, v in found.items())
            )
    return "; ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged rows (1,000,000)")
    parser.add_argument("--reference-rows", type=int, default=50_000, help="(50,000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--clients", type=int, default=4, help="logging client processes (4)")
    parser.add_argument("--batch", type=int, default=100, help="records per request (100)")
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help=f"comma-separated ({','.join(CONTENDERS)})"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per child before it is killed"
    )
    parser.add_argument("--workdir", type=Path, help="keep the logged home and data here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an earlier medops (git worktree): read-before runs its log reader",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="skip the logging when --workdir holds it"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        args.child_args = rest
        return args
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.only = [c for c in args.only.split(",") if c]
    if args.baseline is None:  # read-before needs an earlier checkout to run
        args.only = [c for c in args.only if c != "read-before"]
    if unknown := sorted(set(args.only) - set(CONTENDERS)):
        parser.error(f"unknown contenders {unknown}; choose from {CONTENDERS}")
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir")
    if not 10 <= args.rows <= 10_000_000:  # a count window holds 10 to 10M
        parser.error("--rows must be 10 to 10,000,000 (a count window's size)")
    if not PEERS_PYTHON.exists():  # it writes the Parquet files, and runs Evidently
        parser.error(
            f"no venv at {PEERS_PYTHON.parent.parent}: bash {HERE}/monitoring-peers/setup.sh"
        )
    if not PROJECT_PYTHON.exists():
        parser.error(f"no project venv at {PROJECT_PYTHON.parent.parent}: make setup")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.child_args)
        return
    began = time.monotonic()
    with working_folder(args.workdir, "monitoring-e2e-") as work:
        log = work / "children.log"
        state_file = work / "logged.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else None
        if args.reuse and state is not None and state["rows"] == args.rows:
            print(f"reusing the logged home in {work} ({args.rows:,} rows)")
        else:
            state = prepare_and_log(work, args, log)
        results: dict[str, list[Run | str]] = {}
        for round_index in range(args.rounds):
            shift = round_index % len(args.only)
            for name in args.only[shift:] + args.only[:shift]:
                outcome = measure(work, name, args.rows, args, log)
                results.setdefault(name, []).append(outcome)
                shown = (
                    outcome
                    if isinstance(outcome, str)
                    else f"{outcome.seconds:8.3f} s  peak {outcome.peak_mib:6.0f} MiB  "
                    f"(process {outcome.process_s:.1f} s)"
                )
                print(f"round {round_index + 1} {name:12s} {shown}", flush=True)
        summary = summarize(results)
        record = {
            "when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "rows": args.rows,
            "reference_rows": state["reference_rows"],
            "features": N_FEATURES,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "versions": versions(log),
            "logging": state["logging"],
            "contenders": summary,
            "total_s": time.monotonic() - began,
        }
        (work / "results.json").write_text(json.dumps(record, indent=2))
    if args.json:
        print(json.dumps(record, indent=2))
        return
    logging = record["logging"]
    print(
        f"\n## Monitoring end to end, {record['when']}\n\n"
        f"{args.rows:,} logged predictions x {N_FEATURES} features (reference "
        f"{record['reference_rows']:,} rows); {args.rounds} round(s), medians; "
        f"{record['cpus']} CPU(s); total run {record['total_s']:.0f} s.\n"
        f"Logging phase: {logging['rows']:,} rows in {logging['seconds']:.1f} s "
        f"({logging['rows_per_s']:,.0f} rows/s; {logging['clients']} clients, batches of "
        f"{logging['batch']}; {logging['shed_requests']} shed requests sent again, "
        f"{logging.get('resent_after_disconnect', 0)} resent after a disconnect).\n"
        f"Versions: {record['versions']}\n"
    )
    print(table(summary, args.only))
    if ratios := summary.get("ratios"):
        print(
            f"\nevidently / medops-e2e time: {ratios['evidently_s_over_medops_e2e_s']:.1f}x "
            f"(goal >= 20x); medops-e2e / evidently memory: "
            f"{ratios['medops_e2e_mib_over_evidently_mib']:.2f} (goal <= 0.33)"
        )
    if "seconds" in summary.get("medops-read", {}):
        read = summary["medops-read"]["seconds"]
        print(f"reading the log: {read:.3f} s ({args.rows / read:,.0f} rows/s; goal: 10x today's)")
        before = summary.get("read-before", {}).get("seconds")
        if before:
            print(f"read-before / medops-read time: {before / read:.1f}x (goal >= 10x)")
    print("\nWhat each found (first run), as a sanity check:\n")
    for name in args.only:
        print(f"- {name}: {str(summary.get(name, {}).get('check', '-'))[:400]}")


if __name__ == "__main__":
    main()
