"""INT8 quantization over HTTP: an MLP becomes the next version, linked to its parent and
measured against it; models with nothing to quantize, and callers without models:write, are
refused and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from medops.core.onnx_model import OnnxModel, inspect_artifact
from medops.core.signature import ModelSignature
from medops.registry.tables import ModelVersion
from medops.services import Services
from medops.testing import capture_audit
from tests.helpers import model_data
from tests.helpers.http import problem
from tests.helpers.registry import NAME, counts, register

TOLERANCE = 0.02  # the default


def quantize(
    http: httpx.Client, headers: dict[str, str], version: int, **params: Any
) -> httpx.Response:
    return http.post(
        f"/api/v1/models/{NAME}/versions/{version}/quantize",
        content=model_data.eval_csv(),
        params={"label": model_data.LABEL, "dataset": "eval.csv"} | params,
        headers=headers | {"content-type": "text/csv"},
    )


def _register_mlp(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    pkg = model_data.mlp_package()
    created = register(http, headers, artifact=pkg.onnx, meta=model_data.metadata(pkg))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _version_id(services: Services, number: int) -> str:
    with services.db.session() as session:
        found: str = session.scalars(
            select(ModelVersion.id).where(ModelVersion.version == number)
        ).one()
    return found


@pytest.mark.usefixtures("model")
def test_an_mlp_quantizes_into_the_next_version_linked_to_its_parent(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
) -> None:
    """The INT8 MLP is version N+1 with its parent linked, the parent's signature, measured
    numbers within sane bounds, the measured difference as its parity (the parity gate
    passes), an artifact the server accepts, and a model.quantize audit record."""
    parent = _register_mlp(http, people["ds"])
    with capture_audit(services) as audit:
        answer = quantize(http, people["ds"], parent["version"])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    number = parent["version"] + 1
    assert body["version"] == number
    assert body["parent"] == parent["ref"]
    assert body["signature"] == parent["signature"]
    assert body["lineage"]["parent"] == parent["ref"]
    assert body["lineage"]["derivation"] == "int8-dynamic-quantization"
    assert body["lineage"]["quantization"] == body["quantization"]

    q = body["quantization"]
    rows = len(model_data.frames()[3])
    assert q["parent"] == parent["ref"]
    assert q["parent_digest"] == parent["artifact_digest"]
    assert q["quantized_ops"] == ["MatMul"]
    assert (q["rows"], q["dataset_name"], q["label_column"]) == (rows, "eval.csv", model_data.LABEL)
    assert q["size"] == body["artifact_size"] < q["parent_size"] == parent["artifact_size"]
    assert q["parent_us_per_row"] > 0
    assert q["us_per_row"] > 0
    assert q["speedup"] == pytest.approx(q["parent_us_per_row"] / q["us_per_row"])
    assert 0 < q["max_probability_diff"] <= q["tolerance"] == TOLERANCE
    assert q["label_agreement"] >= 0.97
    assert q["parent_auroc"] > 0.7
    assert q["accuracy_change"] == pytest.approx(q["accuracy"] - q["parent_accuracy"])
    assert q["auroc_change"] == pytest.approx(q["auroc"] - q["parent_auroc"])
    assert abs(q["accuracy_change"]) <= 0.03
    assert abs(q["auroc_change"]) <= 0.03
    assert body["parity"] == {
        "max_abs_diff": q["max_probability_diff"],
        "tolerance": TOLERANCE,
        "rows": rows,
        "label_agreement": q["label_agreement"],
        "client_max_abs_diff": None,
    }

    shown = http.get(f"/api/v1/models/{NAME}/versions/{number}", headers=people["aud"]).json()
    assert shown == {k: v for k, v in body.items() if k != "quantization"}
    gates = http.get(f"/api/v1/models/{NAME}/versions/{number}/gates", headers=people["aud"])
    assert gates.json()["checks"]["parity"] is True
    with services.db.session() as session:
        ids = dict(session.execute(select(ModelVersion.version, ModelVersion.parent_id)).all())
    assert ids == {parent["version"]: None, number: _version_id(services, parent["version"])}

    artifact = http.get(f"/api/v1/models/{NAME}/versions/{number}/artifact", headers=people["aud"])
    assert artifact.headers["x-medops-digest"] == body["artifact_digest"]
    assert "ai.onnx:MatMulInteger" in inspect_artifact(artifact.content).operators
    _, x_eval, _, _ = model_data.frames()
    signature = ModelSignature.model_validate(body["signature"])
    _, probabilities = OnnxModel(artifact.content, signature).predict(
        {c: x_eval[c].to_numpy() for c in x_eval.columns}
    )
    assert probabilities.shape == (rows, 2)

    (event,) = audit.find("model.quantize")
    assert event.outcome == "success"
    assert event.resource_id == f"{NAME}/{number}"
    assert event.actor_role == "data_scientist"
    assert event.details is not None
    assert event.details["after"]["artifact_digest"] == body["artifact_digest"]
    assert event.details["after"]["quantization"] == q

    again = quantize(http, people["ds"], number)
    assert "already an INT8 quantization" in problem(again, 422, "not-quantizable")["detail"]


@pytest.mark.usefixtures("model")
def test_a_logistic_regression_is_refused_naming_its_operators_and_nothing_is_stored(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
) -> None:
    """A logistic regression (LinearClassifier, Scaler) gains nothing from INT8: a 422
    not-quantizable problem says so in plain words; an MLP whose INT8 difference exceeds a
    tight tolerance is a parity-failed 422; neither stores a version or a blob."""
    assert register(http, people["ds"]).status_code == 201
    before = counts(services)
    refused = quantize(http, people["ds"], 1)
    body = problem(refused, 422, "not-quantizable")
    assert body["detail"] == (
        "nothing to quantize: this model's operators (LinearClassifier, Scaler) are ONNX-ML "
        "operators that ONNX Runtime does not quantize; INT8 would gain nothing"
    )
    assert counts(services) == before

    mlp = _register_mlp(http, people["ds"])
    before = counts(services)
    tight = quantize(http, people["ds"], mlp["version"], tolerance=1e-6)
    assert "nothing was stored" in problem(tight, 422, "parity-failed")["detail"]
    assert counts(services) == before


@pytest.mark.usefixtures("model")
def test_a_clinician_may_not_quantize(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
) -> None:
    """Quantizing needs models:write: a clinician gets a 403 and nothing is stored."""
    mlp = _register_mlp(http, people["ds"])
    before = counts(services)
    denied = quantize(http, people["clin"], mlp["version"])
    problem(denied, 403, "forbidden")
    assert counts(services) == before
