"""The ML bill of materials of a registered version is CycloneDX 1.6 that validates against
the specification's schema and names its real materials: the artifact's SHA-256, the data,
the framework, the converter and opset, the runtime, the report's hash and the signers."""

from __future__ import annotations

import json
from importlib import metadata

import httpx
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator

from medops.registry.sbom import summarize
from tests.helpers.registry import NAME, approved, register

SBOM = f"/api/v1/models/{NAME}/versions/{{}}/sbom"


def _valid(document: object) -> None:
    validator = make_schemabased_validator(OutputFormat.JSON, SchemaVersion.V1_6)
    error = validator.validate_str(json.dumps(document))
    assert error is None, error


def test_the_sbom_of_an_approved_version_names_its_materials(
    http: httpx.Client, people: dict[str, dict[str, str]], model: None
) -> None:
    """An approved version's ML-BOM validates as CycloneDX 1.6, its subject is a
    machine-learning-model hashed by the artifact's SHA-256, and it names the training and
    evaluation data, scikit-learn, skl2onnx with its opset, this server's ONNX Runtime, the
    validation report's hash and both signers."""
    number = approved(http, people)
    version = http.get(f"/api/v1/models/{NAME}/versions/{number}", headers=people["aud"]).json()
    report = http.get(f"/api/v1/models/{NAME}/versions/{number}/report", headers=people["aud"])
    answer = http.get(SBOM.format(number), headers=people["aud"])
    assert answer.status_code == 200, answer.text
    document = answer.json()
    _valid(document)
    subject = document["metadata"]["component"]
    assert subject["type"] == "machine-learning-model"
    assert "modelCard" in subject
    summary = summarize(document)
    assert summary.model == NAME
    assert summary.version == str(number)
    assert summary.artifact_sha256 == version["artifact_digest"]
    assert summary.framework is not None
    assert summary.framework.startswith("scikit-learn ")
    assert summary.converter is not None
    assert summary.converter.startswith("skl2onnx")
    assert summary.opset is not None
    assert "ai.onnx" in summary.opset
    assert summary.onnxruntime == metadata.version("onnxruntime")
    assert summary.report_sha256 == report.json()["report_hash"]
    assert any("file:///data/diabetes.csv (training)" in d for d in summary.datasets)
    assert any(d.endswith("(evaluation)") for d in summary.datasets)
    assert len(summary.signers) == 2


def test_a_fresh_version_has_a_valid_sbom_without_report_or_signers(
    http: httpx.Client, people: dict[str, dict[str, str]], model: None
) -> None:
    """A version just registered (no report, no card, no signature) still has a valid ML-BOM,
    which says so by leaving those materials out; an unknown version is a 404."""
    created = register(http, people["ds"])
    assert created.status_code == 201, created.text
    document = http.get(SBOM.format(1), headers=people["ds"]).json()
    _valid(document)
    summary = summarize(document)
    assert summary.report_sha256 is None
    assert summary.signers == []
    assert http.get(SBOM.format(9), headers=people["ds"]).status_code == 404
