"""The feature store part of the demo: a deployment that serves from feature views.

The ML engineer registers the definitions (a patient entity, lab results and vital signs as
feature views over a Parquet and a CSV file, BMI and mean arterial pressure as on-demand
features), binds a second deployment of diabetes-risk to them and materializes the views into
the embedded online store (SQLite in the home). A clinician's request then carries the patient's
id and what is measured at the bedside (age, sex, weight, height) only; medops looks the rest
up and scores exactly what the full record scores on the plain deployment. A patient whose vital
signs are older than the view's TTL is refused, naming the field; a late lab correction is
materialized incrementally and the online/offline skew check agrees. Runs after the serving
demo (the deployment ``diabetes`` follows diabetes-risk@production).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from rich.console import Console

from medops import examples
from medops.client import Client
from medops.config import Settings
from medops.errors import InvalidInputError
from medops.features.online.schemas import FeatureBindingSpec
from medops.features.schemas import FeatureRepo

console = Console(width=160)
NAME = "diabetes-risk"
PLAIN = "diabetes"
DEPLOYMENT = "diabetes-features"
LABS = ["s1", "s2", "s3", "s4", "s5", "s6"]
HEIGHTS = [1.58, 1.64, 1.71, 1.77, 1.83]


def _repo(folder: Path) -> FeatureRepo:
    return FeatureRepo.model_validate(
        {
            "entities": [{"name": "patient", "join_keys": ["patient_id"], "owner": "ml-engineer"}],
            "feature_views": [
                {
                    "name": "labs",
                    "entities": ["patient"],
                    "features": [{"name": n, "unit": "mg/dL"} for n in LABS],
                    "source": {"path": str(folder / "labs.parquet")},
                    "event_time": "drawn_at",
                    "created_time": "recorded_at",
                    "ttl": "30d",
                    "description": "Blood panel, corrected results keep the draw time",
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
                    "unit": "kg/m2",
                },
                {
                    "name": "mean_bp",
                    "features": {"sbp": "vitals:sbp", "dbp": "vitals:dbp"},
                    "expression": "(sbp + 2 * dbp) / 3",
                    "unit": "mmHg",
                },
            ],
        }
    )


def _sources(
    folder: Path, patients: list[dict[str, float]], now: datetime
) -> list[dict[str, object]]:
    """The labs (an older draw, then the current one) and vital signs (pt-2004's 4 days old)."""
    labs: list[dict[str, object]] = []
    vitals: list[dict[str, object]] = []
    for i, p in enumerate(patients):
        pid = f"pt-{2000 + i}"
        old = now - timedelta(days=9)
        labs.append({"patient_id": pid, "drawn_at": old, "recorded_at": old})
        labs[-1] |= {n: p[n] * 1.5 for n in LABS}
        drawn = now - timedelta(days=1)
        labs.append({"patient_id": pid, "drawn_at": drawn, "recorded_at": drawn})
        labs[-1] |= {n: p[n] for n in LABS}
        taken = now - timedelta(days=4 if i == 4 else 0, hours=3)
        vitals.append({"patient_id": pid, "taken_at": taken, "sbp": p["bp"], "dbp": p["bp"]})
    pl.DataFrame(labs).write_parquet(folder / "labs.parquet")
    pl.DataFrame(vitals).write_csv(folder / "vitals.csv")
    return labs


def _request(p: dict[str, float], i: int) -> dict[str, object]:
    weight = p["bmi"] * HEIGHTS[i] ** 2
    return {"patient_id": f"pt-{2000 + i}", "age": p["age"], "sex": p["sex"]} | {
        "weight_kg": weight,
        "height_m": HEIGHTS[i],
    }


def _serve(clinician: Client, patients: list[dict[str, float]], problems: list[str]) -> None:
    for i, p in enumerate(patients[:4]):
        served = clinician.predict(DEPLOYMENT, _request(p, i))["predictions"][0]
        full = clinician.predict(PLAIN, p)["predictions"][0]
        same = abs(served["score"] - full["score"]) < 1e-6
        console.print(
            f"  pt-{2000 + i}: risk {served['score']:.4f} from the feature store, "
            f"{full['score']:.4f} from the full record -> {'same' if same else 'DIFFERENT'}"
        )
        if not same:
            problems.append(f"feature store: pt-{2000 + i} scored differently")
    try:
        clinician.predict(DEPLOYMENT, _request(patients[4], 4))
        problems.append("feature store: stale vital signs were not refused")
    except InvalidInputError as exc:
        error = exc.errors[0]
        console.print(
            f"  pt-2004 (vitals 4 days old, TTL 2 days) -> 422 {error.field}: {error.reason}"
        )


def features_demo(
    settings: Settings, login: Callable[[Client, str], None], folder: Path
) -> list[str]:
    """Run the feature store story; returns the outcomes that differ from what must happen."""
    problems: list[str] = []
    console.rule("feature store")
    sources = folder / "feature-sources"
    sources.mkdir(exist_ok=True)
    _, x_eval, _, _ = examples.diabetes_frames()
    patients = x_eval.head(5).to_dict(orient="records")
    now = datetime.now(UTC).replace(tzinfo=None)
    labs = _sources(sources, patients, now)
    repo = _repo(sources)
    inputs = {n: f"labs:{n}" for n in LABS} | {"bmi": "on_demand:bmi", "bp": "on_demand:mean_bp"}
    with Client(settings=settings) as engineer:
        login(engineer, "ml-engineer")
        applied = engineer.apply_features(repo)
        console.print(f"ml-engineer applies the definitions: {len(applied.created)} registered")
        engineer.create_deployment(DEPLOYMENT, f"{NAME}@production", reason="feature views")
        bound = engineer.bind_features(DEPLOYMENT, FeatureBindingSpec(repo=repo, inputs=inputs))
        console.print(
            f"binds [bold]{DEPLOYMENT}[/]: requests carry {', '.join(bound.request_fields)} "
            f"(+ age, sex); policy {bound.spec.policy}"
        )
        for run in engineer.materialize().runs:
            console.print(f"  materialized {run.view}: {run.rows_read} rows, {run.entities} ids")
        # One login per person: each MFA login spends one of the demo's recovery codes.
        with Client(settings=settings) as clinician:
            login(clinician, "clinician")
            _serve(clinician, patients, problems)
        drawn = now - timedelta(days=1)
        fix = {"patient_id": "pt-2000", "drawn_at": drawn}
        fix |= {"recorded_at": now - timedelta(minutes=5)}
        fix |= {n: patients[0][n] + 1.0 for n in LABS}
        pl.DataFrame([*labs, fix]).write_parquet(sources / "labs.parquet")
        before = engineer.online_skew("labs")
        console.print(f"a lab result is corrected; online = offline before: {before.consistent}")
        run = engineer.materialize(["labs"]).runs[0]
        console.print(f"  incremental run: {run.rows_read} rows read, {run.rows_written} written")
        after = engineer.online_skew("labs")
        console.print(f"  online = offline after: {after.consistent} ({after.sampled} patients)")
        if before.consistent or not after.consistent or run.rows_written != 1:
            problems.append("feature store: the correction was not caught and materialized")
    return problems
