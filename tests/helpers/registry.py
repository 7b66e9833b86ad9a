"""The governed path over HTTP: register, validate, card, sign, promote and deploy the demo's
diabetes model (``tests.model_data``), as the registry and serving tests need it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select

from medops.registry.tables import ModelVersion
from medops.services import Services
from tests.helpers import model_data
from tests.helpers.http import PASSWORD

NAME = "diabetes-risk"
DEPLOYMENT = "diabetes"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def register(
    http: httpx.Client,
    headers: dict[str, str],
    *,
    artifact: bytes | None = None,
    meta: dict[str, Any] | None = None,
    name: str = NAME,
    c: float = 1.0,
) -> httpx.Response:
    """Upload a version of the demo model (regularisation ``c``) with its metadata."""
    pkg = model_data.package(c)
    files = {"artifact": ("model.onnx", pkg.onnx if artifact is None else artifact)}
    data = {"metadata": json.dumps(meta if meta is not None else model_data.metadata(pkg))}
    return http.post(f"/api/v1/models/{name}/versions", files=files, data=data, headers=headers)


def validate(
    http: httpx.Client, headers: dict[str, str], version: int = 1, **params: Any
) -> httpx.Response:
    """Compute a validation report on the demo's evaluation data."""
    query: dict[str, str | int | float | bool] = {"label": model_data.LABEL, "bootstrap": 200}
    query |= params
    return http.post(
        f"/api/v1/models/{NAME}/versions/{version}/validate",
        content=model_data.eval_csv(),
        params=query,
        headers=headers | {"content-type": "text/csv"},
    )


def sign(
    http: httpx.Client, headers: dict[str, str], version: int = 1, **body: Any
) -> httpx.Response:
    """An approval signature on a version, re-authenticated with the test password."""
    return http.post(
        f"/api/v1/models/{NAME}/versions/{version}/approvals",
        json={"password": PASSWORD, "meaning": "approval"} | body,
        headers=headers,
    )


def promote(
    http: httpx.Client, headers: dict[str, str], version: int, alias: str = "production"
) -> httpx.Response:
    """Move an alias of the model to a version."""
    return http.put(
        f"/api/v1/models/{NAME}/aliases/{alias}",
        json={"version": version, "reason": f"promote version {version}"},
        headers=headers,
    )


def ready_version(http: httpx.Client, people: dict[str, dict[str, str]], c: float = 1.0) -> int:
    """Register, validate and card a version (by the data scientist); returns its number."""
    created = register(http, people["ds"], c=c)
    assert created.status_code == 201, created.text
    number = created.json()["version"]
    assert validate(http, people["ds"], number).status_code == 201
    card = http.patch(
        f"/api/v1/models/{NAME}/versions/{number}/card",
        json=model_data.CARD,
        headers=people["clin"],
    )
    assert card.status_code == 200, card.text
    return int(number)


def approved(http: httpx.Client, people: dict[str, dict[str, str]], c: float = 1.0) -> int:
    """A version that passes every gate (report, card, two approvals)."""
    number = ready_version(http, people, c)
    assert sign(http, people["clin"], number).status_code == 201
    assert sign(http, people["mle2"], number).status_code == 201
    return number


def deploy(
    http: httpx.Client, headers: dict[str, str], name: str = DEPLOYMENT, **extra: Any
) -> httpx.Response:
    """Create a deployment following the model's production alias (unless ``extra`` says)."""
    return http.post(
        "/api/v1/deployments",
        json={"name": name, "model": f"{NAME}@production"} | extra,
        headers=headers,
    )


def predict(
    http: httpx.Client, headers: dict[str, str], body: Any, name: str = DEPLOYMENT
) -> httpx.Response:
    """Send a prediction request to a deployment."""
    return http.post(f"/api/v1/deployments/{name}/predict", json=body, headers=headers)


def random_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Valid records drawn around the evaluation data (within the declared ranges)."""
    _, x_eval, _, _ = model_data.frames()
    rng = np.random.default_rng(seed)
    rows = x_eval.to_numpy()[rng.integers(0, len(x_eval), n)]
    noise = rng.normal(0, 0.05, rows.shape) * rows.std(axis=0)
    rows = rows + noise
    rows[:, 0] = np.clip(np.round(rows[:, 0]), 18, 110)  # age
    rows[:, 1] = rng.choice([1.0, 2.0], n)  # sex
    rows[:, 2] = np.clip(rows[:, 2], 10, 80)  # bmi
    return [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]


def counts(services: Services) -> tuple[int, int]:
    """How many versions the registry holds, and how many files its blob store."""
    with services.db.session() as session:
        versions = session.scalar(select(func.count()).select_from(ModelVersion)) or 0
    blobs = sum(1 for p in services.settings.blob_dir.rglob("*") if p.is_file())
    return versions, blobs
