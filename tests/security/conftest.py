"""Fixtures of the attack stories: an installation with a model in production, served."""

from __future__ import annotations

import json

import httpx
import pytest

from medops.auth.permissions import Role
from medops.services import Services
from tests import model_data
from tests.api.conftest import app, bearer, http, tokens
from tests.conftest import PASSWORD, make_user

# The full-stack fixtures of tests/api, shared here (a conftest, not a test module).
__all__ = ["app", "http", "tokens"]

MODEL = "diabetes-risk"
DEPLOYMENT = "diabetes"


@pytest.fixture
def crew(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> dict[str, dict[str, str]]:
    """API-token headers (no idle timeout while a test moves the clock) of a data scientist,
    two ML engineers, a clinician, an auditor and an admin."""
    logins = {
        "ds": tokens[Role.DATA_SCIENTIST],
        "mle": tokens[Role.ML_ENGINEER],
        "mle2": make_user(services, "second-engineer", Role.ML_ENGINEER),
        "clin": tokens[Role.CLINICIAN],
        "aud": tokens[Role.AUDITOR],
        "admin": tokens[Role.ADMIN],
    }
    headers = {}
    for who, login in logins.items():
        issued = http.post("/api/v1/tokens", json={}, headers=bearer(login))
        assert issued.status_code == 201, issued.text
        headers[who] = bearer(issued.json()["token"])
    return headers


@pytest.fixture
def served(http: httpx.Client, crew: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``diabetes-risk`` v1 registered, validated, carded, signed by a clinician and a second
    ML engineer, in ``production``, and served by the deployment ``diabetes``."""
    models = "/api/v1/models"
    created = http.post(
        models, json={"name": MODEL, "policy": model_data.POLICY}, headers=crew["mle"]
    )
    assert created.status_code == 201, created.text
    pkg = model_data.package()
    registered = http.post(
        f"{models}/{MODEL}/versions",
        files={"artifact": ("model.onnx", pkg.onnx)},
        data={"metadata": json.dumps(model_data.metadata(pkg))},
        headers=crew["ds"],
    )
    assert registered.status_code == 201, registered.text
    version = f"{models}/{MODEL}/versions/1"
    validated = http.post(
        f"{version}/validate",
        content=model_data.eval_csv(),
        params={"label": model_data.LABEL, "bootstrap": 50},
        headers=crew["ds"] | {"content-type": "text/csv"},
    )
    assert validated.status_code == 201, validated.text
    carded = http.patch(f"{version}/card", json=model_data.CARD, headers=crew["clin"])
    assert carded.status_code == 200, carded.text
    for who in ("clin", "mle2"):
        signed = http.post(
            f"{version}/approvals",
            json={"password": PASSWORD, "meaning": "approval"},
            headers=crew[who],
        )
        assert signed.status_code == 201, signed.text
    promoted = http.put(
        f"{models}/{MODEL}/aliases/production",
        json={"version": 1, "reason": "first production version"},
        headers=crew["mle"],
    )
    assert promoted.status_code == 200, promoted.text
    deployed = http.post(
        "/api/v1/deployments",
        json={"name": DEPLOYMENT, "model": f"{MODEL}@production"},
        headers=crew["mle"],
    )
    assert deployed.status_code == 201, deployed.text
    return crew
