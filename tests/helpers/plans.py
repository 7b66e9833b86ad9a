"""Change-control plans over HTTP for the diabetes model (``tests.helpers.registry``): a plan
signed by the clinician and an ML engineer, and candidates registered with a model family."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import model_data
from tests.helpers.http import PASSWORD
from tests.helpers.registry import NAME, validate

FAMILY = "logistic_regression"
C_PARAMETER = "logisticregression__C"


def eval_file(folder: Path) -> dict[str, str]:
    """The evaluation split written to ``folder`` and pinned by its SHA-256 (a DataRef)."""
    data = model_data.eval_csv()
    path = folder / "evaluation.csv"
    path.write_bytes(data)
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}


def spec(folder: Path, **changes: Any) -> dict[str, Any]:
    """A plan for the diabetes model: C in [0.05, 5], threshold 0.5, logistic regression
    only, AUROC at least 0.6 and no worse than the champion by 0.1, a sex AUROC gap of at
    most 0.3; shadow 4 predictions, then 50% for 4 canary predictions."""
    plan: dict[str, Any] = {
        "description": "Quarterly retraining of the diabetes progression risk model",
        "allowed": {
            "hyperparameters": {C_PARAMETER: {"low": 0.05, "high": 5.0}},
            "families": [FAMILY],
        },
        "fixed": {
            "intended_use": "Flag adults at risk of diabetes progression within a year",
            "population": "Adults 18-110 in the outpatient diabetes clinic",
        },
        "floors": {"minimum": {"auroc": 0.6}, "auroc_non_inferiority_margin": 0.1},
        "subgroup_limits": [{"attribute": "sex", "metric": "auroc", "max_gap": 0.3}],
        "evaluation": {
            "fixed_set": eval_file(folder),
            "label_column": model_data.LABEL,
            "recent_min_rows": 20,
        },
        "rollout": {
            "shadow_predictions": 4,
            "canary_steps": [{"percent": 50, "minutes": 0, "min_predictions": 4}],
        },
    }
    return plan | changes


def active_plan(
    http: httpx.Client, people: dict[str, dict[str, str]], plan: dict[str, Any]
) -> dict[str, Any]:
    """Create a plan (ML engineer) and sign it (clinician, second ML engineer)."""
    created = http.post(f"/api/v1/models/{NAME}/plans", json=plan, headers=people["mle"])
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    for who in ("clin", "mle2"):
        signed = http.post(
            f"/api/v1/models/{NAME}/plans/{number}/signatures",
            json={"password": PASSWORD, "comment": "reviewed"},
            headers=people[who],
        )
        assert signed.status_code == 201, signed.text
    out: dict[str, Any] = signed.json()
    assert out["status"] == "active", out
    return out


def candidate(http: httpx.Client, people: dict[str, dict[str, str]], c: float, **tags: str) -> int:
    """Register (data scientist), validate and card a version trained with ``c``, tagged with
    its model family; no approvals."""
    pkg = model_data.package(c)
    meta = model_data.metadata(pkg, tags={"model_family": FAMILY} | tags)
    files = {"artifact": ("model.onnx", pkg.onnx)}
    created = http.post(
        f"/api/v1/models/{NAME}/versions",
        files=files,
        data={"metadata": json.dumps(meta)},
        headers=people["ds"],
    )
    assert created.status_code == 201, created.text
    number = int(created.json()["version"])
    assert validate(http, people["ds"], number).status_code == 201
    card = http.patch(
        f"/api/v1/models/{NAME}/versions/{number}/card",
        json=model_data.CARD,
        headers=people["clin"],
    )
    assert card.status_code == 200, card.text
    return number


def evaluate(
    http: httpx.Client, headers: dict[str, str], version: int, recent: dict[str, str] | None
) -> httpx.Response:
    """Ask for a candidate report of ``version``."""
    return http.post(
        f"/api/v1/models/{NAME}/versions/{version}/candidate-reports",
        json={"recent": recent},
        headers=headers,
    )
