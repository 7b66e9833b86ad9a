"""The point-in-time join against a hand-written reference: values after the event time, equal
timestamps, TTL edges, late corrections, missing values, several views and on-demand features."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from medops.errors import InvalidInputError
from medops.features.offline import point_in_time_join
from medops.features.schemas import FeatureRepo, parse_refs

T0 = datetime(2026, 1, 1)


def _repo(path_vitals: Path, path_labs: Path, ttl_minutes: int | None = 10) -> FeatureRepo:
    ttl = {"ttl": f"{ttl_minutes}m"} if ttl_minutes else {}
    return FeatureRepo.model_validate(
        {
            "entities": [{"name": "patient", "join_keys": ["patient_id"]}],
            "feature_views": [
                {
                    "name": "vitals",
                    "entities": ["patient"],
                    "features": [{"name": "hr"}, {"name": "sbp"}],
                    "source": {"path": str(path_vitals)},
                    "event_time": "ts",
                    "created_time": "created",
                    **ttl,
                },
                {
                    "name": "labs",
                    "entities": ["patient"],
                    "features": [{"name": "creat"}],
                    "source": {"path": str(path_labs), "format": "csv"},
                    "event_time": "taken_at",
                },
            ],
            "on_demand_features": [
                {
                    "name": "shock",
                    "request": [{"name": "age"}],
                    "features": {"h": "vitals:hr", "s": "vitals:sbp"},
                    "expression": "h / s if age >= 18 else None",
                }
            ],
        }
    )


@dataclass(frozen=True)
class Row:
    pid: str
    ts: datetime
    created: datetime | None
    value: float


def reference(
    pid: str, at: datetime, rows: list[Row], ttl: timedelta | None
) -> tuple[float, ...] | None:
    """The latest row at or before ``at`` within ``ttl``; ties by created time (missing is
    oldest), then by position in the source. Written as plainly as possible."""
    best: tuple[tuple[datetime, int, datetime, int], Row] | None = None
    for index, row in enumerate(rows):
        if row.pid != pid or row.ts > at:
            continue
        if ttl is not None and at - row.ts > ttl:
            continue
        rank = (row.ts, row.created is not None, row.created or T0, index)
        if best is None or rank > best[0]:
            best = (rank, row)
    return None if best is None else (best[1].value,)


def _write_vitals(path: Path, rows: list[Row]) -> None:
    pl.DataFrame(
        {
            "patient_id": [r.pid for r in rows],
            "ts": [r.ts for r in rows],
            "created": [r.created for r in rows],
            "hr": [r.value for r in rows],
            "sbp": [r.value * 2 for r in rows],
        },
        schema_overrides={"ts": pl.Datetime("us"), "created": pl.Datetime("us")},
    ).write_parquet(path)


def _write_labs(path: Path, pids: list[str], times: list[datetime], values: list[float]) -> None:
    pl.DataFrame({"patient_id": pids, "taken_at": times, "creat": values}).write_csv(path)


def test_adversarial_cases_match_the_reference(tmp_path: Path) -> None:
    """Each crafted case (a value one microsecond after, an equal timestamp, the TTL edge and
    one past it, a correction created later but listed first, no row at all) gives exactly the
    reference value."""
    m = timedelta(minutes=1)
    rows = [
        Row("a", T0, T0, 1.0),
        Row("a", T0 + 5 * m, T0 + 9 * m, 2.5),  # a late correction listed before the original
        Row("a", T0 + 5 * m, T0 + 5 * m, 2.0),
        Row("a", T0 + 5 * m, T0 + 9 * m, 2.7),  # same created time: the later source row wins
        Row("a", T0 + 20 * m + timedelta(microseconds=1), T0, 9.0),  # just after an entity row
        Row("b", T0, None, 3.0),
        Row("b", T0, T0, 4.0),  # a created time beats none
        Row("c", T0, T0, 5.0),
    ]
    entities = [
        ("a", T0 - m),  # before any value
        ("a", T0),  # equal timestamp: included
        ("a", T0 + 5 * m),  # the corrections tie: latest created, then later row
        ("a", T0 + 15 * m),  # exactly the TTL after 5m: included
        ("a", T0 + 15 * m + timedelta(microseconds=1)),  # one past the TTL: null
        ("a", T0 + 20 * m),  # the 9.0 row is one microsecond later: never used
        ("b", T0 + 3 * m),
        ("c", T0 + 10 * m + timedelta(seconds=1)),  # TTL passed
        ("z", T0),  # unknown patient
    ]
    _write_vitals(tmp_path / "v.parquet", rows)
    _write_labs(tmp_path / "l.csv", ["a"], [T0], [1.1])
    repo = _repo(tmp_path / "v.parquet", tmp_path / "l.csv")
    frame = pl.DataFrame(
        {"patient_id": [e[0] for e in entities], "event_time": [e[1] for e in entities]}
    )
    out, summary = point_in_time_join(repo, frame, parse_refs("vitals:hr,vitals:sbp"))
    ttl = timedelta(minutes=10)
    expected = [reference(pid, at, rows, ttl) for pid, at in entities]
    assert out["hr"].to_list() == [None if e is None else e[0] for e in expected]
    assert out["sbp"].to_list() == [None if e is None else e[0] * 2 for e in expected]
    assert out["hr"].to_list() == [None, 1.0, 2.7, 2.7, None, None, 4.0, None, None]
    assert out["patient_id"].to_list() == [e[0] for e in entities]
    assert summary.rows == len(entities)
    assert summary.missing == {"hr": 5, "sbp": 5}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_timelines_match_the_reference(tmp_path: Path, seed: int) -> None:
    """Hundreds of entity rows against a dense random timeline with many tied timestamps,
    corrections and TTL edges: every value equals the reference, none is from the future."""
    rng = random.Random(seed)
    m = timedelta(minutes=1)
    pids = [f"p{i}" for i in range(12)]
    rows = [
        Row(
            rng.choice(pids),
            T0 + rng.randrange(60) * m,
            None if rng.random() < 0.1 else T0 + rng.randrange(5) * m,
            float(i),
        )
        for i in range(600)
    ]
    entities = [(rng.choice([*pids, "nobody"]), T0 + rng.randrange(-5, 75) * m) for _ in range(400)]
    _write_vitals(tmp_path / "v.parquet", rows)
    lab_times = [T0 + rng.randrange(60) * m for _ in range(100)]
    lab_pids = [rng.choice(pids) for _ in range(100)]
    _write_labs(tmp_path / "l.csv", lab_pids, lab_times, [float(i) for i in range(100)])
    repo = _repo(tmp_path / "v.parquet", tmp_path / "l.csv")
    frame = pl.DataFrame(
        {
            "patient_id": [e[0] for e in entities],
            "event_time": [e[1] for e in entities],
            "age": [rng.choice([None, 10.0, 40.0]) for _ in entities],
        }
    )
    out, _ = point_in_time_join(repo, frame, parse_refs("vitals:hr,labs:creat,shock"))
    lab_rows = [Row(p, t, None, v) for p, t, v in zip(lab_pids, lab_times, range(100), strict=True)]
    for i, (pid, at) in enumerate(entities):
        hr = reference(pid, at, rows, timedelta(minutes=10))
        creat = reference(pid, at, lab_rows, None)
        assert out["hr"][i] == (None if hr is None else hr[0]), (pid, at)
        assert out["creat"][i] == (None if creat is None else creat[0]), (pid, at)
        age = frame["age"][i]
        want = None if hr is None or hr[0] == 0 or age is None or age < 18 else 0.5
        assert out["shock"][i] == want
    assert out.height == len(entities)


def test_time_zones_are_compared_as_utc(tmp_path: Path) -> None:
    """An aware entity time in another zone is compared with the source's naive UTC times."""
    _write_vitals(
        tmp_path / "v.parquet", [Row("a", T0, T0, 1.0), Row("a", T0 + timedelta(hours=1), T0, 2.0)]
    )
    _write_labs(tmp_path / "l.csv", ["a"], [T0], [1.0])
    repo = _repo(tmp_path / "v.parquet", tmp_path / "l.csv", ttl_minutes=None)
    at = datetime(2026, 1, 1, 0, 30, tzinfo=UTC).astimezone()  # the local zone, same instant
    frame = pl.DataFrame({"patient_id": ["a"], "event_time": [at]})
    out, _ = point_in_time_join(repo, frame, parse_refs("vitals:hr"))
    assert out["hr"].to_list() == [1.0]


def test_bad_requests_name_the_problem(tmp_path: Path) -> None:
    """An unknown feature, a missing join key and a duplicate column are refused clearly."""
    _write_vitals(tmp_path / "v.parquet", [Row("a", T0, T0, 1.0)])
    _write_labs(tmp_path / "l.csv", ["a"], [T0], [1.0])
    repo = _repo(tmp_path / "v.parquet", tmp_path / "l.csv")
    frame = pl.DataFrame({"patient_id": ["a"], "event_time": [T0]})
    with pytest.raises(InvalidInputError, match="no feature vitals:nope"):
        point_in_time_join(repo, frame, parse_refs("vitals:nope"))
    with pytest.raises(InvalidInputError, match="join key patient_id"):
        point_in_time_join(repo, frame.drop("patient_id"), parse_refs("vitals:hr"))
    with pytest.raises(InvalidInputError, match="already have a column"):
        point_in_time_join(repo, frame.with_columns(hr=1), parse_refs("vitals:hr"))
    with pytest.raises(InvalidInputError, match="request value age"):
        point_in_time_join(repo, frame, parse_refs("shock"))
