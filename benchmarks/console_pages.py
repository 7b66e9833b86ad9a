"""Server time of the console's deployment monitoring page over 90 days of hourly windows.

Builds a medops home (SQLite, then PostgreSQL when a server is given) holding one deployment
with 2,160 stored hourly windows of 20 features: documents made from the stored window in
``tests/data/results/window_stable_day.json`` (its 10 features twice, each statistic,
p-value and metric varied per window, a few windows drifted), each stored as the server
stores it (the document, its summary columns and its trend, ``monitoring/trend.py``). Then
asks for ``/deployments/{name}`` in-process (``EmbeddedTransport``, as the tests do), as an
ML engineer (the page with its actions panel), 3 warm-up requests and 20 timed ones, and prints
the median and p95 per view and database, with the largest response.

    python3 benchmarks/console_pages.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
    [--profile]   # cProfile of one request of the heaviest view (the SQLite home)
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from medops.api.app import create_app  # noqa: E402
from medops.audit.service import exempt_from_audit_guard  # noqa: E402
from medops.auth.schemas import UserCreate  # noqa: E402
from medops.client.embedded import EmbeddedTransport  # noqa: E402
from medops.config import Settings  # noqa: E402
from medops.context import SYSTEM_ACTOR, Context, Origin  # noqa: E402
from medops.core.permissions import Role  # noqa: E402
from medops.db import migrate  # noqa: E402
from medops.monitoring.results import WindowResult  # noqa: E402
from medops.monitoring.tables import MonitoringResult  # noqa: E402
from medops.monitoring.trend import trend_of  # noqa: E402
from medops.registry.tables import RegisteredModel  # noqa: E402
from medops.services import Services, build_services  # noqa: E402
from medops.serving.tables import Deployment  # noqa: E402
from medops.testing import FixedClock  # noqa: E402

NAME = "sepsis-risk"
WINDOWS = 24 * 90
REQUESTS = 20
WARMUP = 3
NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
PASSWORD = "a-long-benchmark-password"
TEMPLATE = ROOT / "tests" / "data" / "results" / "window_stable_day.json"
VIEWS = {
    "90 days (default statistic)": {"window": "hour", "range": "90"},
    "all, psi per feature": {"window": "hour", "range": "all", "test": "psi"},
    "30 days (page default)": {"window": "hour"},
}


def _vary(template: dict[str, Any], rng: np.random.Generator, index: int) -> dict[str, Any]:
    """The template with 20 features and every number moved a little; every 97th window
    drifts in a few features."""
    doc = copy.deepcopy(template)
    spike = index % 97 == 0
    features = {}
    for suffix in ("", "_b"):
        for name, tests in template["features"].items():
            varied = copy.deepcopy(tests)
            for test in varied:
                test["feature"] = name + suffix
                if isinstance(test.get("statistic"), float):
                    test["statistic"] *= float(rng.lognormal(0, 0.3)) * (4 if spike else 1)
                if isinstance(test.get("p_value"), float):
                    test["p_value"] = float(rng.uniform(0, 0.01 if spike else 1))
                test["drifted"] = bool(spike and name in ("age", "bmi"))
            features[name + suffix] = varied
    doc["features"] = features
    doc["dataset"]["share"] = 0.1 if spike else 0.0
    doc["dataset"]["drifted"] = spike
    doc["dataset"]["drifted_features"] = ["age", "bmi"] if spike else []
    doc["multivariate"]["statistic"] *= float(rng.lognormal(0, 0.02))
    for metric in doc["performance"]["metrics"].values():
        shift = float(rng.normal(0, 0.02))
        for key in ("value", "ci_low", "ci_high"):
            if isinstance(metric.get(key), float):
                metric[key] += shift
    for metric in (doc.get("estimated") or {}).get("metrics", {}).values():
        shift = float(rng.normal(0, 0.02))
        for key in ("value", "lower", "upper"):
            if isinstance(metric.get(key), float):
                metric[key] += shift
    for attribute in (doc.get("fairness") or {}).get("attributes", []):
        for group in attribute["groups"]:
            for measured in (group.get("metrics") or {}).values():
                if isinstance(measured.get("ratio"), float):
                    measured["ratio"] *= float(rng.lognormal(0, 0.05))
    doc["verdict"] = "covariate-shift" if spike else "stable"
    doc["alerts"] = ["input drift in age, bmi"] if spike else []
    return doc


def seed(services: Services, windows: int) -> float:
    """The deployment and its windows; returns the seconds it took."""
    began = time.perf_counter()
    template = json.loads(TEMPLATE.read_text())
    rng = np.random.default_rng(7)
    first = NOW - timedelta(hours=windows)
    rows = []
    for i in range(windows):
        doc = _vary(template, rng, i)
        typed = WindowResult.load(doc)
        keys, packed = trend_of(typed)
        start = first + timedelta(hours=i)
        rows.append(
            {
                "deployment": NAME, "model_name": NAME, "version": 1, "window_kind": "hour",
                "sequence": int(start.timestamp()) // 3600, "window_start": start,
                "window_end": start + timedelta(hours=1), "rows": typed.rows,
                "labelled": typed.labelled, "status": typed.status, "verdict": typed.verdict,
                "drifted": typed.input_drift, "alerts": json.dumps(list(typed.alerts)),
                "result": json.dumps(doc, sort_keys=True), "computed_at": NOW,
                "trend_keys": keys, "trend": packed,
            }
        )  # fmt: skip
    model_id = uuid.uuid4().hex
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # benchmark set-up, written as a run would
        session.add(
            RegisteredModel(id=model_id, name=NAME, description=None, policy="{}",
                            created_at=NOW, created_by="bench", next_version=2)
        )  # fmt: skip
        session.flush()
        session.add(
            Deployment(id=uuid.uuid4().hex, name=NAME, model_id=model_id, model_name=NAME,
                       alias="production", version=None, canary_version=None, canary_percent=0,
                       shadow_version=None, cache_size=0, max_error_rate=0.01,
                       max_p99_ms=500.0, min_requests=100, revision=1, created_at=NOW,
                       created_by="bench", updated_at=NOW, updated_by="bench")
        )  # fmt: skip
        for at in range(0, len(rows), 500):
            session.execute(insert(MonitoringResult), rows[at : at + 500])
    return time.perf_counter() - began


def login(services: Services) -> str:
    ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="127.0.0.1"))
    services.identity.create_user(
        ctx, UserCreate(username="bench-engineer", role=Role.ML_ENGINEER, password=PASSWORD,
                        full_name="Bench Engineer")
    )  # fmt: skip
    anonymous = Context(actor=None, origin=Origin(source_ip="127.0.0.1"))
    return services.logins.login(anonymous, "bench-engineer", PASSWORD, kind="login").secret


def measure(database_url: str, home: Path, windows: int, *, profile: bool) -> list[list[str]]:
    settings = Settings(home=home, database_url=database_url, mfa_required_roles=())
    services = build_services(settings, clock=FixedClock(NOW))
    migrate.upgrade(services.db)
    seeded = seed(services, windows)
    token = login(services)
    client = httpx.Client(transport=EmbeddedTransport(create_app(services=services)),
                          base_url="https://testserver",
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    kind = make_url(database_url).get_backend_name()
    print(f"{kind}: seeded {windows} windows in {seeded:.1f} s", flush=True)
    table = []
    try:
        for label, query in VIEWS.items():
            for _ in range(WARMUP):
                warm = client.get(f"/deployments/{NAME}", params=query)
                assert warm.status_code == 200, (warm.status_code, warm.text[-800:])
            times, size = [], 0
            for _ in range(REQUESTS):
                began = time.perf_counter()
                answer = client.get(f"/deployments/{NAME}", params=query)
                times.append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 200, answer.text[:500]
                size = len(answer.content)
            times.sort()
            p95 = times[int(0.95 * (len(times) - 1) + 0.5)]
            table.append([kind, label, f"{statistics.median(times):.1f}", f"{p95:.1f}",
                          f"{size / 1024:.0f}"])  # fmt: skip
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            client.get(f"/deployments/{NAME}", params=VIEWS["all, psi per feature"])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    finally:
        client.close()
        services.close()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="an admin URL of a PostgreSQL server to use too")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--windows", type=int, default=WINDOWS, help="a smaller home to try")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="medops-bench-pages-") as folder:
        home = Path(folder)
        results += measure(f"sqlite:///{home / 'medops.db'}", home / "sqlite", args.windows,
                           profile=args.profile)  # fmt: skip
        if args.postgres:
            admin = make_url(args.postgres)
            name = f"medops_bench_pages_{uuid.uuid4().hex[:8]}"
            conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            try:
                url = admin.set(drivername="postgresql+psycopg", database=name)
                results += measure(url.render_as_string(hide_password=False), home / "pg",
                                   args.windows, profile=False)  # fmt: skip
            finally:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"\n{args.windows} hourly windows x 20 features; {REQUESTS} requests per view after "
          f"{WARMUP} warm-up; server time in-process (EmbeddedTransport)\n")  # fmt: skip
    print("| database | view | median ms | p95 ms | page KiB |")
    print("|---|---|---:|---:|---:|")
    for row in results:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
