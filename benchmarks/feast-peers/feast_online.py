"""Feast's side of benchmarks/feature_online.py, run in benchmarks/.feast-venv (Feast 0.67.0):
a local-provider repository over the benchmark's Parquet file, materialized to Feast's SQLite
online store, then ``get_online_features`` of 10 features for one entity, timed per call.

Usage: feast_online.py WORKDIR FEATURES LOOKUPS SEED   (prints one JSON line: per-call seconds)
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> None:
    work, features, lookups, seed = (
        Path(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    repo = work / "feast-online-repo"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(
        project="bench_online",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": "file"},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    patient = Entity(name="patient", join_keys=["patient_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="vitals",
        entities=[patient],
        ttl=timedelta(days=3650),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(features)],
        source=FileSource(
            path=str(work / "online.parquet"),
            timestamp_field="event_time",
            created_timestamp_column="created",
        ),
    )
    store.apply([patient, view])
    started = time.perf_counter()
    store.materialize(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    materialize_s = time.perf_counter() - started
    ids = pd.read_parquet(work / "online.parquet", columns=["patient_id"])["patient_id"].unique()
    rng = random.Random(seed)
    refs = [f"vitals:f{i}" for i in range(features)]
    for _ in range(200):  # warm-up
        store.get_online_features(features=refs, entity_rows=[{"patient_id": int(ids[0])}])
    times = []
    for _ in range(lookups):
        key = int(ids[rng.randrange(len(ids))])
        t0 = time.perf_counter()
        store.get_online_features(features=refs, entity_rows=[{"patient_id": key}]).to_dict()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "materialize_s": materialize_s}))


if __name__ == "__main__":
    main()
