"""The point-in-time join of medops' feature store beside Feast 0.67.0 (local provider, file
offline store), on the same files, in one run.

Shape (the issue's, by default): ENTITIES entity rows (patient id, event time) against VIEWS
feature views of ROWS rows and FEATURES float features each, TTL 30 days, one year of event
times, a tenth as many patients as entity rows (so most rows find a value in most views), 2% of
each view's rows late corrections (the same patient and event time, a later created time, other
values) shuffled through the file.

Each side runs in its own process (medops in this venv, Feast in benchmarks/.feast-venv made by
``bash benchmarks/feast-peers/setup.sh``) and reports the join's wall time and its process's
peak resident set (VmHWM). medops runs RUNS times (median reported), Feast FEAST_RUNS times.
Correctness: medops' answer is compared cell by cell with an independent DuckDB ASOF JOIN
(corrections resolved by ROW_NUMBER over created time), and Feast's answer with medops' for the
rows Feast kept; rows kept by each are counted.

Usage: .venv/bin/python benchmarks/feature_store.py [--entities N] [--views V] [--rows R]
       [--features F] [--runs K] [--feast-runs K] [--no-feast] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

import benchlib

HERE = Path(__file__).resolve().parent
FEAST_PYTHON = HERE / ".feast-venv" / "bin" / "python"
YEAR_US = 365 * 86400 * 1_000_000
START = np.datetime64("2026-01-01T00:00:00", "us")


def make_data(work: Path, entities: int, views: int, rows: int, features: int, seed: int) -> None:
    """Write entities.parquet and viewN.parquet (UTC timestamps)."""
    rng = np.random.default_rng(seed)
    patients = max(entities // 10, 10)
    for v in range(views):
        corrections = rows // 50
        base = rows - corrections
        pid = rng.integers(0, patients, base)
        ts = START + rng.integers(0, YEAR_US, base).astype("timedelta64[us]")
        created = ts + rng.integers(0, 3_600_000_000, base).astype("timedelta64[us]")
        pick = rng.integers(0, base, corrections)
        later = rng.integers(3_600_000_000, 48 * 3_600_000_000, corrections)
        all_pid = np.concatenate([pid, pid[pick]])
        all_ts = np.concatenate([ts, ts[pick]])
        all_created = np.concatenate([created, created[pick] + later.astype("timedelta64[us]")])
        order = rng.permutation(rows)
        columns: dict[str, object] = {
            "patient_id": all_pid[order],
            "event_time": all_ts[order],
            "created": all_created[order],
        }
        for i in range(features):
            columns[f"v{v}_f{i}"] = rng.normal(size=rows).round(6)
        pl.DataFrame(columns).with_columns(
            pl.col("event_time", "created").dt.replace_time_zone("UTC")
        ).write_parquet(work / f"view{v}.parquet")
    pl.DataFrame(
        {
            "row_id": np.arange(entities),
            "patient_id": rng.integers(0, patients, entities),
            "event_time": START + rng.integers(0, YEAR_US, entities).astype("timedelta64[us]"),
        }
    ).with_columns(pl.col("event_time").dt.replace_time_zone("UTC")).write_parquet(
        work / "entities.parquet"
    )


def medops_worker(work: Path, views: int, features: int, ttl_days: int) -> None:
    """The medops side, in its own process: the join, timed, and this process's peak."""
    from medops.features.offline import point_in_time_join
    from medops.features.schemas import FeatureRepo, parse_refs

    repo = FeatureRepo.model_validate(
        {
            "entities": [
                {"name": "patient", "join_keys": [{"name": "patient_id", "dtype": "int64"}]}
            ],
            "feature_views": [
                {
                    "name": f"view{v}",
                    "entities": ["patient"],
                    "features": [{"name": f"v{v}_f{i}"} for i in range(features)],
                    "source": {"path": str(work / f"view{v}.parquet")},
                    "event_time": "event_time",
                    "created_time": "created",
                    "ttl": f"{ttl_days}d",
                }
                for v in range(views)
            ],
        }
    )
    refs = parse_refs([f"view{v}:v{v}_f{i}" for v in range(views) for i in range(features)])
    entities = pl.read_parquet(work / "entities.parquet")
    started = time.perf_counter()
    out, summary = point_in_time_join(repo, entities, refs)
    seconds = time.perf_counter() - started
    out.write_parquet(work / "medops-result.parquet")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": out.height,
                "rows_with_all_values": summary.rows_with_all_values,
                "peak_kib": benchlib.peak_kib(),
            }
        )
    )


def _run(cmd: list[str]) -> dict[str, float]:
    env = {**os.environ, **benchlib.QUIET_ENV, "PYTHONPATH": str(HERE)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{cmd[1]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def duckdb_reference(work: Path, views: int, features: int, ttl_days: int) -> pl.DataFrame:
    """An independent answer: DuckDB's ASOF JOIN per view after keeping the latest correction
    (ROW_NUMBER over created time, then file position), TTL applied after the join."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    query = f"SELECT e.row_id FROM read_parquet('{work / 'entities.parquet'}') e ORDER BY row_id"
    frame = pl.from_arrow(con.sql(query).to_arrow_table())
    for v in range(views):
        cols = ", ".join(f"v{v}_f{i}" for i in range(features))
        picked = ", ".join(
            f"CASE WHEN e.event_time - f.event_time <= INTERVAL {ttl_days} DAY THEN f.v{v}_f{i} END "
            f"AS v{v}_f{i}"
            for i in range(features)
        )
        sql = f"""
        WITH src AS (SELECT *, row_number() OVER () AS pos
                     FROM read_parquet('{work / f"view{v}.parquet"}')),
        latest AS (SELECT patient_id, event_time, {cols} FROM src
                   QUALIFY row_number() OVER (PARTITION BY patient_id, event_time
                                              ORDER BY created DESC, pos DESC) = 1)
        SELECT e.row_id, {picked}
        FROM read_parquet('{work / "entities.parquet"}') e
        ASOF LEFT JOIN latest f ON e.patient_id = f.patient_id AND e.event_time >= f.event_time
        ORDER BY e.row_id
        """  # noqa: S608 -- the benchmark's own file names
        frame = frame.join(pl.from_arrow(con.sql(sql).to_arrow_table()), on="row_id", how="left")
    return frame


def _cells_differing(a: pl.DataFrame, b: pl.DataFrame, columns: list[str]) -> int:
    joined = a.select("row_id", *columns).join(
        b.select("row_id", *columns), on="row_id", how="inner", suffix="__b"
    )
    total = 0
    for c in columns:
        x, y = joined[c], joined[f"{c}__b"]
        same = (x == y).fill_null(False) | (x.is_null() & y.is_null())
        total += int((~same).sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--ttl-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--feast-runs", type=int, default=1)
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--worker", choices=["medops"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "medops":
        medops_worker(args.work, args.views, args.features, args.ttl_days)
        return
    with benchlib.working_folder(args.work, "medops-fs-bench-") as work:
        started = time.perf_counter()
        make_data(work, args.entities, args.views, args.rows, args.features, seed=22)
        print(f"data written in {time.perf_counter() - started:.1f} s to {work}", flush=True)
        shape = [str(args.views), str(args.features), str(args.ttl_days)]
        medops = [
            _run([sys.executable, __file__, "--worker", "medops", "--work", str(work),
                  "--views", shape[0], "--features", shape[1], "--ttl-days", shape[2]])
            for _ in range(args.runs)
        ]  # fmt: skip
        for r in medops:
            print(f"medops: {r['seconds']:.2f} s, peak {r['peak_kib'] / 1024:.0f} MiB", flush=True)
        columns = [f"v{v}_f{i}" for v in range(args.views) for i in range(args.features)]
        ours = pl.read_parquet(work / "medops-result.parquet")
        report: dict[str, object] = {
            "shape": vars(args) | {"work": str(work)},
            "medops": {
                "seconds_median": statistics.median(r["seconds"] for r in medops),
                "seconds": [round(r["seconds"], 2) for r in medops],
                "peak_mib_median": statistics.median(r["peak_kib"] / 1024 for r in medops),
                "rows": medops[0]["rows"],
                "rows_with_all_values": medops[0]["rows_with_all_values"],
            },
        }
        if not args.no_reference:
            started = time.perf_counter()
            reference = duckdb_reference(work, args.views, args.features, args.ttl_days)
            report["duckdb_reference"] = {
                "seconds": round(time.perf_counter() - started, 2),
                "cells_differing_from_medops": _cells_differing(ours, reference, columns),
                "cells": ours.height * len(columns),
            }
            print(f"reference: {report['duckdb_reference']}", flush=True)
        if not args.no_feast:
            feast = [
                _run([str(FEAST_PYTHON), str(HERE / "feast-peers" / "feast_join.py"), str(work),
                      *shape])
                for _ in range(args.feast_runs)
            ]  # fmt: skip
            theirs = pl.read_parquet(work / "feast-result.parquet")
            report["feast"] = {
                "seconds_median": statistics.median(r["seconds"] for r in feast),
                "seconds": [round(r["seconds"], 2) for r in feast],
                "peak_mib_median": statistics.median(r["peak_kib"] / 1024 for r in feast),
                "rows": feast[0]["rows"],
                "cells_differing_from_medops_in_kept_rows": _cells_differing(ours, theirs, columns),
            }
            m, f = report["medops"], report["feast"]
            assert isinstance(m, dict)
            assert isinstance(f, dict)
            report["speedup"] = round(f["seconds_median"] / m["seconds_median"], 1)
            report["memory_ratio"] = round(m["peak_mib_median"] / f["peak_mib_median"], 3)
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
