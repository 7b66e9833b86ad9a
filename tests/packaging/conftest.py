"""Fixtures for serving packaged models end to end: the real app over HTTP on each database
kind, and a governed path from registration to a deployment answering predictions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd  # type: ignore[import-untyped]
import pytest

from medops import examples
from medops.core.permissions import Role
from medops.packaging import Package
from medops.services import Services
from tests.helpers import model_data
from tests.helpers.packaging import Serve
from tests.helpers.people import PASSWORD, make_user

# Every gate but the signatures off: these tests are about what the deployment answers.
LENIENT_POLICY = {
    "min_auroc": None,
    "max_ece": None,
    "max_subgroup_gap": None,
    "require_complete_card": False,
}


@pytest.fixture
def serve(http: httpx.Client, services: Services) -> Serve:
    """``serve(name, package, x_eval, y_eval)`` registers the package as ``name`` v1 (data
    scientist), validates it on the evaluation rows, writes its card, has a clinician and an
    ML engineer sign it, promotes it to production and deploys it; returns ``predict(records)``, the
    deployment's JSON answers for a list of feature dicts."""
    people = {
        role: {"Authorization": f"Bearer {make_user(services, f'user-{role.value}', role)}"}
        for role in (Role.DATA_SCIENTIST, Role.ML_ENGINEER, Role.CLINICIAN)
    }
    ds, mle, clin = (people[r] for r in (Role.DATA_SCIENTIST, Role.ML_ENGINEER, Role.CLINICIAN))

    def ok(response: httpx.Response, status: int) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def run(
        name: str, package: Package, x_eval: pd.DataFrame, y_eval: pd.Series
    ) -> Callable[[list[dict[str, Any]]], Any]:
        ok(
            http.post("/api/v1/models", json={"name": name, "policy": LENIENT_POLICY}, headers=mle),
            201,
        )
        files = {"artifact": ("model.onnx", package.onnx)}
        data = {"metadata": json.dumps(model_data.metadata(package))}
        version = ok(
            http.post(f"/api/v1/models/{name}/versions", files=files, data=data, headers=ds), 201
        )
        assert version["version"] == 1
        ok(
            http.post(
                f"/api/v1/models/{name}/versions/1/validate",
                content=examples.labeled_csv(x_eval, y_eval),
                params={"label": examples.LABEL, "bootstrap": 20},
                headers=ds | {"content-type": "text/csv"},
            ),
            201,
        )
        card = http.patch(
            f"/api/v1/models/{name}/versions/1/card", json=model_data.CARD, headers=clin
        )
        ok(card, 200)
        for signer in (clin, mle):
            body = {"password": PASSWORD, "meaning": "approval"}
            ok(
                http.post(f"/api/v1/models/{name}/versions/1/approvals", json=body, headers=signer),
                201,
            )
        move = {"version": 1, "reason": "serve the packaged model"}
        ok(http.put(f"/api/v1/models/{name}/aliases/production", json=move, headers=mle), 200)
        deployment = {"name": name, "model": f"{name}@production"}
        ok(http.post("/api/v1/deployments", json=deployment, headers=mle), 201)

        def predict(records: list[dict[str, Any]]) -> Any:
            body = {"records": [{"features": r} for r in records]}
            return ok(
                http.post(f"/api/v1/deployments/{name}/predict", json=body, headers=clin), 200
            )

        return predict

    return run
