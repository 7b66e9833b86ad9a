"""Online feature lookup: medops' online stores beside Feast's SQLite online store, one run.

The issue's shape: 10 features of one entity, read at prediction time. One feature view of
ENTITIES patients x 10 float features (with older rows and corrections in the source), written
to each store by its own materialization, then LOOKUPS reads of one random entity each, timed
per call (after a warm-up); medians over RUNS runs of p50 and p99.

- medops ``store.read``: the online store's read of one entity's row (SQLite embedded, Redis on
  127.0.0.1:6379, PostgreSQL when ``MEDOPS_TEST_POSTGRES_URL`` is set).
- medops serving path: ``BoundFeatures.resolve`` on a one-record request (the SQLite store):
  the read plus freshness, an on-demand feature and building the model's record; what a
  prediction of a bound deployment adds before validation.
- Feast 0.67.0 ``get_online_features(...).to_dict()`` from its SQLite store (local provider),
  in ``benchmarks/.feast-venv`` (``bash benchmarks/feast-peers/setup.sh``); skipped with a note
  when the venv is missing.

Usage: .venv/bin/python benchmarks/feature_online.py [--entities 10000] [--lookups 2000]
[--runs 3] [--feast-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import working_folder

from medops.features.materialize import materialize_view
from medops.features.online import OnlineStore, open_online_store
from medops.features.online.schemas import FeatureBindingSpec
from medops.features.schemas import FeatureRepo
from medops.serving.features import BoundFeatures
from medops.serving.predict import Parsed

FEATURES = 10
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def make_source(folder: Path, entities: int, seed: int) -> Path:
    """ENTITIES patients, 3 rows each (two older, and a correction of the newest)."""
    rng = np.random.default_rng(seed)
    n = entities * 3
    ids = np.repeat(np.arange(entities, dtype=np.int64), 3)
    base = NOW.replace(tzinfo=None) - timedelta(days=1)
    offsets = np.tile(np.array([-48, -24, -24], dtype="timedelta64[h]"), entities)
    event = np.datetime64(base) + offsets
    created = event + np.tile(np.array([0, 0, 1], dtype="timedelta64[h]"), entities)
    frame = pl.DataFrame(
        {"patient_id": ids, "event_time": event, "created": created}
        | {f"f{i}": rng.normal(0, 1, n) for i in range(FEATURES)}
    )
    path = folder / "online.parquet"
    frame.write_parquet(path)
    return path


def repo_for(path: Path) -> FeatureRepo:
    return FeatureRepo.model_validate(
        {
            "entities": [
                {"name": "patient", "join_keys": [{"name": "patient_id", "dtype": "int64"}]}
            ],
            "feature_views": [
                {
                    "name": "vitals",
                    "entities": ["patient"],
                    "features": [{"name": f"f{i}"} for i in range(FEATURES)],
                    "source": {"path": str(path)},
                    "created_time": "created",
                    "ttl": "3650d",
                }
            ],
            "on_demand_features": [
                {
                    "name": "f_sum",
                    "features": {"a": "vitals:f0", "b": "vitals:f1"},
                    "expression": "a + b",
                }
            ],
        }
    )


def timed(call: Callable[[int], object], entities: int, lookups: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    for _ in range(200):
        call(0)
    out = []
    for _ in range(lookups):
        key = rng.randrange(entities)
        t0 = time.perf_counter()
        call(key)
        out.append(time.perf_counter() - t0)
    return out


def pcts(times: list[float]) -> tuple[float, float]:
    ordered = np.array(times) * 1e6
    return float(np.percentile(ordered, 50)), float(np.percentile(ordered, 99))


def medops_runs(
    store: OnlineStore, entities: int, lookups: int, runs: int
) -> list[tuple[float, float]]:
    def read(key: int) -> object:
        row = store.read("vitals", [str(key)])[0]
        assert row is not None
        return row.values

    return [pcts(timed(read, entities, lookups, seed)) for seed in range(runs)]


def serving_runs(
    repo: FeatureRepo, store: OnlineStore, entities: int, lookups: int, runs: int
) -> list[tuple[float, float]]:
    inputs = {f"f{i}": f"vitals:f{i}" for i in range(FEATURES)} | {"f_sum": "on_demand:f_sum"}
    bound = BoundFeatures("bench", FeatureBindingSpec(repo=repo, inputs=inputs), 1)

    def resolve(key: int) -> object:
        parsed = Parsed([{"patient_id": key}], [None], None, single=True)
        uses, problems = bound.resolve(store, parsed, NOW)
        assert not problems
        return uses

    return [pcts(timed(resolve, entities, lookups, seed)) for seed in range(runs)]


def median_pair(results: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--folder", type=Path)
    default_feast = Path(__file__).resolve().parent / ".feast-venv" / "bin" / "python"
    parser.add_argument("--feast-python", type=Path, default=default_feast)
    args = parser.parse_args()
    rows: dict[str, tuple[float, float] | str] = {}
    with working_folder(args.folder, "feature-online-") as folder:
        source = make_source(folder, args.entities, 0)
        repo = repo_for(source)
        view = repo.feature_views[0]
        stores: dict[str, str] = {"sqlite": f"sqlite:///{folder / 'online.db'}"}
        stores["redis"] = "redis://127.0.0.1:6379/14"
        if os.environ.get("MEDOPS_TEST_POSTGRES_URL"):
            stores["postgresql"] = os.environ["MEDOPS_TEST_POSTGRES_URL"]
        namespace = f"bench_{uuid.uuid4().hex[:8]}"
        for kind, url in stores.items():
            try:
                store = open_online_store(url, namespace=namespace)
            except Exception as exc:  # noqa: BLE001 - a backend not running: say so
                rows[f"medops read ({kind})"] = f"skipped: {type(exc).__name__}"
                continue
            try:
                t0 = time.perf_counter()
                done = materialize_view(repo, view, store, None, NOW)
                print(
                    f"materialized {done.entities} entities into {kind} in "
                    f"{time.perf_counter() - t0:.2f} s",
                    file=sys.stderr,
                )
                rows[f"medops read ({kind})"] = median_pair(
                    medops_runs(store, args.entities, args.lookups, args.runs)
                )
                if kind == "sqlite":
                    rows["medops serving lookup (sqlite, + on-demand)"] = median_pair(
                        serving_runs(repo, store, args.entities, args.lookups, args.runs)
                    )
                if kind == "redis":
                    rows["medops serving lookup (redis, + on-demand)"] = median_pair(
                        serving_runs(repo, store, args.entities, args.lookups, args.runs)
                    )
            finally:
                store.delete_view("vitals")
                store.close()
        if args.feast_python.exists():
            feast = []
            for seed in range(args.runs):
                out = subprocess.run(  # noqa: S603 - our own script, our arguments
                    [
                        str(args.feast_python),
                        str(Path(__file__).resolve().parent / "feast-peers" / "feast_online.py"),
                        str(folder),
                        str(FEATURES),
                        str(args.lookups),
                        str(seed),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                feast.append(pcts(json.loads(out.stdout.strip().splitlines()[-1])["times"]))
            rows["Feast 0.67.0 get_online_features (sqlite)"] = median_pair(feast)
        else:
            rows["Feast 0.67.0 get_online_features (sqlite)"] = "skipped: no Feast venv"
    print(
        f"\n{args.entities} entities, {FEATURES} features, {args.lookups} lookups, "
        f"median of {args.runs} runs"
    )
    print(f"| lookup of {FEATURES} features of one entity | p50 (us) | p99 (us) |")
    print("|---|---|---|")
    for name, value in rows.items():
        if isinstance(value, str):
            print(f"| {name} | {value} | |")
        else:
            print(f"| {name} | {value[0]:.1f} | {value[1]:.1f} |")


if __name__ == "__main__":
    main()
