"""The governed path with pinned data: a model version registered on a dataset version,
approved, promoted and deployed, as the lineage tests need it."""

from __future__ import annotations

import httpx

from tests.helpers import model_data
from tests.helpers.registry import NAME, deploy, promote, register, sign, validate


def create_model(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """The model ``diabetes-risk`` with the tests' policy."""
    answer = http.post(
        "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=people["mle"]
    )
    assert answer.status_code == 201, answer.text


def register_pinned(
    http: httpx.Client,
    headers: dict[str, str],
    *,
    training: str | None,
    validation: str | None = None,
    reference: str | None = None,
    c: float = 1.0,
) -> httpx.Response:
    """Register a version whose data are pinned dataset versions."""
    meta = model_data.metadata(model_data.package(c))
    meta.pop("training_data")
    if training is not None:
        meta["training_data"] = {"dataset": training}
    if validation is not None:
        meta["validation_data"] = {"dataset": validation}
    if reference is not None:
        meta["reference_data"] = {"dataset": reference}
    return register(http, headers, meta=meta, c=c)


def deployed_on(http: httpx.Client, people: dict[str, dict[str, str]], training: str) -> int:
    """A version trained on ``training``, through every gate, in production and served by
    the deployment ``diabetes``; returns its number."""
    created = register_pinned(http, people["ds"], training=training)
    assert created.status_code == 201, created.text
    number = int(created.json()["version"])
    assert validate(http, people["ds"], number).status_code == 201
    card = http.patch(
        f"/api/v1/models/{NAME}/versions/{number}/card",
        json=model_data.CARD,
        headers=people["clin"],
    )
    assert card.status_code == 200, card.text
    assert sign(http, people["clin"], number).status_code == 201
    assert sign(http, people["mle2"], number).status_code == 201
    assert promote(http, people["mle"], number).status_code == 200
    answer = deploy(http, people["mle"])
    assert answer.status_code == 201, answer.text
    return number
