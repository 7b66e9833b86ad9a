"""A deployment serving from feature views, end to end over HTTP: the request carries entity
keys and request values; medops looks the stored features up in the online store (SQLite
embedded on the SQLite backend, Redis on the PostgreSQL backend), applies the on-demand
features, predicts, and logs the values the model saw; missing and stale values follow the
declared policy; materialization is incremental and keeps the latest correction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import psycopg
import pytest
from sqlalchemy import select

from medops.audit.tables import AuditEvent
from medops.config import Settings
from medops.core.onnx_model import OnnxModel
from medops.features.online.schemas import FeatureBindingSpec
from medops.features.schemas import FeatureRepo
from medops.services import Services
from medops.serving.tables import Prediction
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.online import drop_namespace, redis_url
from tests.helpers.postgres import PgServer
from tests.helpers.registry import DEPLOYMENT, FEATURES, predict, random_records
from tests.helpers.training import sdk

LABS = ["s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.fixture
def settings(tmp_path: Path, db_url: str, backend: str) -> Iterator[Settings]:
    """The tests' settings, with the online store: SQLite in the home on the SQLite backend,
    Redis (a private namespace, removed after) on the PostgreSQL backend."""
    online: dict[str, Any] = {}
    namespace = f"medops_test_{uuid.uuid4().hex[:10]}"
    url = None
    if backend == "postgresql":
        url = redis_url()
        if url is None:
            pytest.skip("PostgreSQL + Redis case: no Redis answers")
        online = {"feature_online_url": url, "feature_online_namespace": namespace}
    yield Settings(
        home=tmp_path / "home",
        database_url=db_url,
        mfa_required_roles=(),
        alert_evaluate_seconds=0,
        alert_dispatch_seconds=0,
        **online,
    )
    if url is not None:
        drop_namespace(url, namespace)


def repo_for(folder: Path) -> FeatureRepo:
    return FeatureRepo.model_validate(
        {
            "entities": [{"name": "patient", "join_keys": ["patient_id"]}],
            "feature_views": [
                {
                    "name": "labs",
                    "entities": ["patient"],
                    "features": [{"name": n, "unit": "mmol/L"} for n in LABS],
                    "source": {"path": str(folder / "labs.parquet")},
                    "event_time": "drawn_at",
                    "created_time": "recorded_at",
                    "ttl": "30d",
                },
                {
                    "name": "vitals",
                    "entities": ["patient"],
                    "features": [{"name": "sbp", "unit": "mmHg"}, {"name": "dbp", "unit": "mmHg"}],
                    "source": {"path": str(folder / "vitals.csv")},
                    "event_time": "taken_at",
                    "ttl": "2d",
                },
            ],
            "on_demand_features": [
                {
                    "name": "bmi",
                    "request": [{"name": "weight_kg"}, {"name": "height_m"}],
                    "expression": "weight_kg / height_m ** 2",
                },
                {
                    "name": "mean_bp",
                    "features": {"sbp": "vitals:sbp", "dbp": "vitals:dbp"},
                    "expression": "(sbp + 2 * dbp) / 3",
                },
            ],
        }
    )


def spec_for(repo: FeatureRepo, **extra: Any) -> dict[str, Any]:
    inputs = {n: f"labs:{n}" for n in LABS} | {"bmi": "on_demand:bmi", "bp": "on_demand:mean_bp"}
    spec = FeatureBindingSpec.model_validate({"repo": repo, "inputs": inputs} | extra)
    return {"spec": spec.model_dump(mode="json")}


class World:
    """Three patients' true inputs, and the sources that hold them (with decoys)."""

    def __init__(self, folder: Path, clock: FixedClock) -> None:
        self.folder = folder
        self.now = clock.now()
        self.records = random_records(3, seed=7)
        self.ids = ["p1", "p2", "p3"]
        self.heights = [1.62, 1.80, 1.75]
        naive = self.now.replace(tzinfo=None)
        labs: list[dict[str, Any]] = []
        for pid, record in zip(self.ids, self.records, strict=True):
            # An older row, the true row, and a correction of an older draw: all superseded
            # except the true row, which is itself corrected (same drawn_at, later recorded).
            wrong = {n: record[n] + 1.0 for n in LABS}
            labs.append({"patient_id": pid, "drawn_at": naive - timedelta(days=3), **wrong})
            labs.append(
                {"patient_id": pid, "drawn_at": naive - timedelta(days=1), **wrong}
                | {"recorded_at": naive - timedelta(days=1)}
            )
            labs.append(
                {"patient_id": pid, "drawn_at": naive - timedelta(days=1), **record}
                | {"recorded_at": naive - timedelta(hours=20)}
            )
        for row in labs:
            row.setdefault("recorded_at", row["drawn_at"])
        self.labs = pl.DataFrame(labs).select("patient_id", "drawn_at", "recorded_at", *LABS)
        self.labs.write_parquet(folder / "labs.parquet")
        vitals = [
            {
                "patient_id": pid,
                "taken_at": naive - timedelta(hours=5),
                "sbp": r["bp"],
                "dbp": r["bp"],
            }
            for pid, r in zip(self.ids, self.records, strict=True)
        ]
        # p3's vitals are stale: taken 3 days ago, the view's TTL is 2 days.
        vitals[2]["taken_at"] = naive - timedelta(days=3)
        pl.DataFrame(vitals).write_csv(folder / "vitals.csv")

    def request(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        weight = r["bmi"] * self.heights[i] ** 2
        return {
            "patient_id": self.ids[i],
            "age": r["age"],
            "sex": r["sex"],
            "weight_kg": weight,
            "height_m": self.heights[i],
        }

    def expected(self, i: int) -> dict[str, float]:
        """What the model must see for patient i (computed here, by hand)."""
        sent = self.request(i)
        r = self.records[i]
        out = {n: r[n] for n in LABS} | {"age": r["age"], "sex": r["sex"]}
        out["bmi"] = sent["weight_kg"] / sent["height_m"] ** 2
        out["bp"] = (r["bp"] + 2 * r["bp"]) / 3
        return out


def onnx_score(record: dict[str, float]) -> float:
    pkg = model_data.package(1.0)
    model = OnnxModel(pkg.onnx, pkg.signature)
    return float(model.positive_scores({f: [record[f]] for f in FEATURES})[0])


@pytest.fixture
def world(tmp_path: Path, clock: FixedClock) -> World:
    folder = tmp_path / "sources"
    folder.mkdir()
    return World(folder, clock)


def test_serving_from_feature_views_end_to_end(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
    world: World,
) -> None:
    """Entity keys + request values in, the model's inputs looked up and computed, the same
    probability as ONNX Runtime on the hand-computed inputs, those inputs logged; the latest
    correction is served; a stale view is refused naming the field (reject policy)."""
    mle, clin = deployed["mle"], deployed["clin"]
    repo = repo_for(world.folder)
    bound = http.put(f"/api/v1/deployments/{DEPLOYMENT}/features", json=spec_for(repo), headers=mle)
    assert bound.status_code == 200, bound.text
    assert set(bound.json()["request_fields"]) == {"patient_id", "weight_kg", "height_m"}
    done = http.post("/api/v1/features/materialize", json={}, headers=mle)
    assert done.status_code == 200, done.text
    runs = {r["view"]: r for r in done.json()["runs"]}
    assert runs["labs"]["rows_read"] == 9
    assert runs["labs"]["entities"] == 3
    assert runs["vitals"]["entities"] == 3

    for i in (0, 1):
        answer = predict(http, clin, {"features": world.request(i), "patient_ref": world.ids[i]})
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["predictions"][0]
        assert prediction["score"] == pytest.approx(onnx_score(world.expected(i)), abs=1e-6)
        assert prediction["feature_store"]["imputed"] == []
        assert "features" in answer.json()["timing_ms"]
        with services.db.session() as session:
            row = session.get(Prediction, prediction["id"])
            assert row is not None
            logged = json.loads(row.inputs)
            meta = json.loads(row.metadata_json or "{}")
        expected = world.expected(i)
        assert set(logged) == set(FEATURES)
        for name in FEATURES:
            assert logged[name] == pytest.approx(expected[name], rel=1e-12), name
        assert meta["feature_store"]["as_of"]["labs"].startswith(
            (world.now - timedelta(days=1)).date().isoformat()
        )

    stale = predict(http, clin, {"features": world.request(2)})
    assert stale.status_code == 422
    fields = {e["field"]: e["reason"] for e in stale.json()["errors"]}
    assert set(fields) == {"features.bp"}
    assert "stale" in fields["features.bp"]
    unknown = predict(http, clin, {"features": world.request(0) | {"patient_id": "nobody"}})
    assert unknown.status_code == 422
    assert {e["field"] for e in unknown.json()["errors"]} == {
        f"features.{n}" for n in [*LABS, "bp"]
    }
    no_key = predict(http, clin, {"features": {"age": 50.0}})
    assert no_key.status_code == 422
    assert "features.patient_id" in {e["field"] for e in no_key.json()["errors"]}
    with services.db.session() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert "features.bind" in actions
    assert actions.count("features.materialize") == 2


def test_a_binding_that_does_not_fit_the_model_is_refused_and_changes_nothing(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
    world: World,
) -> None:
    """A binding whose input is not in the served version's signature, or whose feature's
    type cannot be that input's, would fail every request: it is refused at bind time with a
    422 naming each input, and the deployment keeps serving as before."""
    mle, clin = deployed["mle"], deployed["clin"]
    url = f"/api/v1/deployments/{DEPLOYMENT}/features"
    raw = repo_for(world.folder).model_dump(mode="json")
    raw["feature_views"][0]["features"].append({"name": "clinic", "dtype": "string"})
    repo = FeatureRepo.model_validate(raw)
    inputs = {n: f"labs:{n}" for n in LABS} | {"glucose": "labs:s1", "bmi": "labs:clinic"}
    body = {"spec": {"repo": repo.model_dump(mode="json"), "inputs": inputs}}
    refused = http.put(url, json=body, headers=mle)
    assert refused.status_code == 422, refused.text
    problems = {e["field"]: e["reason"] for e in refused.json()["errors"]}
    assert set(problems) == {"spec.inputs.glucose", "spec.inputs.bmi"}
    assert "not an input" in problems["spec.inputs.glucose"]
    assert "labs:clinic is string" in problems["spec.inputs.bmi"]
    assert http.get(url, headers=mle).status_code == 404
    answer = predict(http, clin, {"features": random_records(1)[0]})
    assert answer.status_code == 200, answer.text
    with services.db.session() as session:
        binds = session.scalars(
            select(AuditEvent.outcome).where(AuditEvent.action == "features.bind")
        ).all()
    assert binds == ["failure"]  # the refusal is on record; no binding was made


def test_views_read_from_a_dataset_version_and_a_postgresql_table(
    http: httpx.Client,
    services: Services,
    settings: Settings,
    deployed: dict[str, dict[str, str]],
    world: World,
    pg_server: PgServer | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The labs view reads a file of a dataset version (through the datasets service, as the
    caller, audited ``data.read``; never written to disk), the vitals view a PostgreSQL table
    (its URL from the environment): the server materializes both and serves the same inputs
    as from files; the online store agrees with the offline join."""
    if pg_server is None:
        pytest.skip("the PostgreSQL source needs MEDOPS_TEST_POSTGRES_URL")
    mle, clin = deployed["mle"], deployed["clin"]
    committed = sdk(http, settings, mle).add_dataset(
        "labs-source", [world.folder / "labs.parquet"], message="lab results"
    )
    source_url = pg_server.new_database(migrated=False).replace("+psycopg", "")
    vitals = pl.read_csv(world.folder / "vitals.csv", try_parse_dates=True)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE vitals (patient_id text, taken_at timestamp, sbp float8, dbp float8)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vitals VALUES (%s, %s, %s, %s)",
                vitals.select("patient_id", "taken_at", "sbp", "dbp").rows(),
            )
    monkeypatch.setenv("MEDOPS_TEST_VITALS_URL", source_url)
    raw = repo_for(world.folder).model_dump(mode="json")
    raw["feature_views"][0]["source"] = {
        "kind": "dataset",
        "dataset": f"labs-source@{committed.version.number}",
        "file": "labs.parquet",
    }
    raw["feature_views"][1]["source"] = {
        "kind": "postgres",
        "url_env": "MEDOPS_TEST_VITALS_URL",
        "table": "vitals",
    }
    body = spec_for(FeatureRepo.model_validate(raw))
    bound = http.put(f"/api/v1/deployments/{DEPLOYMENT}/features", json=body, headers=mle)
    assert bound.status_code == 200, bound.text
    done = http.post("/api/v1/features/materialize", json={}, headers=mle)
    assert done.status_code == 200, done.text
    runs = {r["view"]: r for r in done.json()["runs"]}
    assert (runs["labs"]["rows_read"], runs["labs"]["entities"]) == (9, 3)
    assert (runs["vitals"]["rows_read"], runs["vitals"]["entities"]) == (3, 3)
    for i in (0, 1):
        answer = predict(http, clin, {"features": world.request(i)})
        assert answer.status_code == 200, answer.text
        score = answer.json()["predictions"][0]["score"]
        assert score == pytest.approx(onnx_score(world.expected(i)), abs=1e-6)
    skew = http.post(
        "/api/v1/features/skew/online", json={"view": "labs", "sample": 3}, headers=mle
    )
    assert skew.status_code == 200, skew.text
    with services.db.session() as session:
        reads = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "data.read")
        ).all()
    assert len(reads) == 2  # materialization and the skew check, each as the engineer
    assert all("feature view source" in (d or "") for d in reads)


def test_impute_policy_flags_and_batch_requests(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
    world: World,
) -> None:
    """With the impute policy a stale or missing value is replaced by the declared one and
    flagged in the answer and the log; records of one request are looked up together."""
    mle, clin = deployed["mle"], deployed["clin"]
    repo = repo_for(world.folder)
    impute = dict.fromkeys(LABS, 0.0) | {"bmi": 25.0, "bp": 90.0}
    body = spec_for(repo, policy="impute", impute=impute)
    assert http.put(f"/api/v1/deployments/{DEPLOYMENT}/features", json=body, headers=mle).is_success
    assert http.post("/api/v1/features/materialize", json={}, headers=mle).is_success
    records = [{"features": world.request(i)} for i in range(3)]
    answer = predict(http, clin, {"records": records})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["feature_store"]["imputed"] for p in predictions] == [[], [], ["bp"]]
    imputed = world.expected(2) | {"bp": 90.0}
    assert predictions[2]["score"] == pytest.approx(onnx_score(imputed), abs=1e-6)
    assert predictions[0]["score"] == pytest.approx(onnx_score(world.expected(0)), abs=1e-6)
    with services.db.session() as session:
        row = session.get(Prediction, predictions[2]["id"])
        assert row is not None
        assert json.loads(row.metadata_json or "{}")["feature_store"]["imputed"] == ["bp"]
        assert json.loads(row.inputs)["bp"] == 90.0


def test_materialization_is_incremental_and_keeps_the_latest_correction(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
    world: World,
    clock: FixedClock,
) -> None:
    """A second run reads only rows arrived since the watermark; a late correction (same
    event time, later created time) replaces the value; an older row arriving late does not;
    a row dated after now waits for a later run."""
    mle = deployed["mle"]
    repo = repo_for(world.folder)
    assert http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/features", json=spec_for(repo), headers=mle
    ).is_success
    first = http.post("/api/v1/features/materialize", json={"views": ["labs"]}, headers=mle)
    assert first.json()["runs"][0]["rows_read"] == 9
    naive = world.now.replace(tzinfo=None)
    p1 = world.records[0]
    late = pl.DataFrame(
        [
            # p1's true draw corrected again: must win.
            {"patient_id": "p1", "drawn_at": naive - timedelta(days=1)}
            | {"recorded_at": naive - timedelta(hours=1)}
            | {n: p1[n] * 0.5 for n in LABS},
            # p2: an old draw recorded late: must not replace the newer draw.
            {"patient_id": "p2", "drawn_at": naive - timedelta(days=5)}
            | {"recorded_at": naive - timedelta(hours=1)}
            | dict.fromkeys(LABS, -1.0),
            # p3: a draw dated in the future (a clock error at the source): waits.
            {"patient_id": "p3", "drawn_at": naive + timedelta(hours=2)}
            | {"recorded_at": naive - timedelta(minutes=30)}
            | dict.fromkeys(LABS, 3.0),
        ],
        schema=world.labs.schema,
    )
    pl.concat([world.labs, late]).write_parquet(world.folder / "labs.parquet")
    second = http.post("/api/v1/features/materialize", json={"views": ["labs"]}, headers=mle)
    run = second.json()["runs"][0]
    # From the watermark (the last run's newest recorded_at) on: the 3 rows at the watermark
    # are read again (unchanged, so not written) beside the 3 new ones.
    assert run["rows_read"] == 6
    assert run["rows_written"] == 1  # p1 only: p2's row is older, p3's is in the future
    got = http.post(
        "/api/v1/features/online",
        json={"entity": {"patient_id": "p1"}, "features": ["labs"]},
        headers=mle,
    )
    assert got.status_code == 200, got.text
    values = {v["feature"]: v["value"] for v in got.json()["values"]}
    assert values == {n: p1[n] * 0.5 for n in LABS}
    p2 = http.post(
        "/api/v1/features/online",
        json={"entity": {"patient_id": "p2"}, "features": ["labs:s1"]},
        headers=mle,
    ).json()["values"][0]
    assert p2["value"] == world.records[1]["s1"]
    assert p2["fresh"] is True
    clock.advance(timedelta(hours=3))
    third = http.post("/api/v1/features/materialize", json={"views": ["labs"]}, headers=mle)
    assert third.json()["runs"][0]["rows_written"] == 1  # p3's draw is now in the past
    p3 = http.post(
        "/api/v1/features/online",
        json={"entity": {"patient_id": "p3"}, "features": ["labs:s2"]},
        headers=mle,
    ).json()["values"][0]
    assert p3["value"] == 3.0
    states = http.get("/api/v1/features/materializations", headers=mle).json()
    assert [s["runs"] for s in states if s["view"] == "labs"] == [3]
    assert np.isfinite(run["seconds"])


def test_skew_checks_online_against_offline_and_served_against_training(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    world: World,
) -> None:
    """After materialization the online store agrees with the offline join at the same time;
    a correction not yet materialized shows as a difference for that entity and feature set;
    the served inputs are compared with the training set's values per feature."""
    mle, clin = deployed["mle"], deployed["clin"]
    repo = repo_for(world.folder)
    url = f"/api/v1/deployments/{DEPLOYMENT}/features"
    assert http.put(url, json=spec_for(repo), headers=mle).is_success
    assert http.post("/api/v1/features/materialize", json={}, headers=mle).is_success
    check = http.post("/api/v1/features/skew/online", json={"view": "labs"}, headers=mle)
    assert check.status_code == 200, check.text
    assert check.json()["consistent"] is True
    assert check.json()["sampled"] == 3
    naive = world.now.replace(tzinfo=None)
    fix = {"patient_id": "p2", "drawn_at": naive - timedelta(days=1)}
    fix |= {"recorded_at": naive - timedelta(hours=2)} | dict.fromkeys(LABS, 9.0)
    both = pl.concat([world.labs, pl.DataFrame([fix], schema=world.labs.schema)])
    both.write_parquet(world.folder / "labs.parquet")
    check = http.post("/api/v1/features/skew/online", json={"view": "labs"}, headers=mle).json()
    assert check["consistent"] is False
    assert {f["feature"]: f["equal"] for f in check["features"]} == dict.fromkeys(LABS, 2)
    assert all(f["max_abs_difference"] > 0 for f in check["features"])

    for i in (0, 1):
        assert predict(http, clin, {"features": world.request(i)}).status_code == 200
    training = {name: [r[name] for r in random_records(200, seed=1)] for name in FEATURES}
    served = http.post(
        "/api/v1/features/skew/served",
        json={"deployment": DEPLOYMENT, "training": training},
        headers=mle,
    )
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["served_rows"] == 2
    assert {f["feature"] for f in body["features"]} == set(FEATURES)
    assert all(f["served_rows"] == 2 for f in body["features"])
