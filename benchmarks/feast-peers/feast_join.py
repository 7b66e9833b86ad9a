"""Feast's side of benchmarks/feature_store.py, run in benchmarks/.feast-venv (Feast 0.67.0):
a local-provider repository over the benchmark's Parquet files (file offline store), the
point-in-time join of the entity rows, timed, with the peak resident set of this process.

Usage: feast_join.py WORKDIR VIEWS FEATURES TTL_DAYS   (prints one JSON line)
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib  # noqa: E402


def main() -> None:
    work, views, features, ttl_days = (
        Path(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    repo = work / "feast-repo"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": "file"},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    patient = Entity(name="patient", join_keys=["patient_id"], value_type=ValueType.INT64)
    fvs = []
    for v in range(views):
        source = FileSource(
            path=str(work / f"view{v}.parquet"),
            timestamp_field="event_time",
            created_timestamp_column="created",
        )
        fvs.append(
            FeatureView(
                name=f"view{v}",
                entities=[patient],
                ttl=timedelta(days=ttl_days),
                schema=[Field(name=f"v{v}_f{i}", dtype=Float64) for i in range(features)],
                source=source,
            )
        )
    store.apply([patient, *fvs])
    entity_df = pd.read_parquet(work / "entities.parquet").rename(
        columns={"event_time": "event_timestamp"}
    )
    refs = [f"view{v}:v{v}_f{i}" for v in range(views) for i in range(features)]
    started = time.perf_counter()
    result = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    seconds = time.perf_counter() - started
    result.to_parquet(work / "feast-result.parquet")
    print(json.dumps({"seconds": seconds, "rows": len(result), "peak_kib": benchlib.peak_kib()}))


if __name__ == "__main__":
    main()
