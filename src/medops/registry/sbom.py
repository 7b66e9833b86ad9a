"""An ML bill of materials of one model version: CycloneDX 1.6 JSON (``medops models sbom``).

The version is the BOM's subject, a ``machine-learning-model`` component whose hash is the
SHA-256 of its ONNX artifact and whose ``modelCard`` carries what the registry knows: the
task, the datasets it was trained and validated on, the validation report's metrics with
their bootstrap intervals, and the card's intended use, users, limitations and ethical
considerations. Around it, as components it depends on: each dataset version it pins (Merkle
root as hash) or the training data it names by URI and digest, the evaluation data of its
validation report, the report itself (its hash), the training framework, the converter that
wrote the ONNX file (the artifact's producer, with its opset), and the ONNX Runtime that
serves it. Each electronic signature on the version is a CycloneDX annotation by its signer,
with the signature's meaning, manifest hash and whether it still verifies.

Pure: ``build`` takes what the registry returned; ``for_version`` reads it. The document is
checked against the CycloneDX 1.6 schema in the tests (cyclonedx-python-lib's validator).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from medops.registry.card import team_content
from medops.registry.pins import DATASET_URI_PREFIX

if TYPE_CHECKING:
    from medops.registry.lifecycle import LifecycleService
    from medops.registry.refs import Ref
    from medops.registry.schemas import ApprovalOut, ReportOut, VersionOut
    from medops.registry.service import RegistryService

SPEC_VERSION = "1.6"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _sha256(digest: str | None) -> list[dict[str, str]]:
    """A CycloneDX hash list from ``sha256:HEX`` or ``HEX`` (nothing when it is neither)."""
    text = (digest or "").removeprefix("sha256:").lower()
    return [{"alg": "SHA-256", "content": text}] if _HEX64.match(text) else []


def _properties(values: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"name": f"medops:{key}", "value": str(value)}
        for key, value in values.items()
        if value is not None and value != ""
    ]


def _split(text: str | None) -> tuple[str, str | None]:
    """``"scikit-learn 1.9.1"`` -> ("scikit-learn", "1.9.1")."""
    name, _, version = (text or "").strip().rpartition(" ")
    if not name:
        return (text or "").strip(), None
    return name, version


def _datasets(version: VersionOut, report: ReportOut | None) -> list[dict[str, Any]]:
    """The data components: pinned dataset versions by role, else the training data named by
    URI, and the validation report's evaluation data."""
    found: list[dict[str, Any]] = []
    pinned = version.lineage.get("datasets")
    roles: dict[str, Any] = pinned if isinstance(pinned, dict) else {}
    for role, pin in sorted(roles.items()):
        if not isinstance(pin, dict) or "dataset" not in pin:
            continue
        name, _, number = str(pin["dataset"]).rpartition("@")
        found.append(
            {
                "type": "data",
                "bom-ref": f"dataset:{role}:{pin['dataset']}",
                "name": name or str(pin["dataset"]),
                "version": number or None,
                "hashes": _sha256(str(pin.get("root", ""))),
                "data": [
                    {
                        "type": "dataset",
                        "name": str(pin["dataset"]),
                        "contents": {"url": DATASET_URI_PREFIX + str(pin["dataset"])},
                        "description": f"{role} data: a medops dataset version (Merkle root)",
                    }
                ],
                "properties": _properties({"role": role, "merkle_root": pin.get("root")}),
            }
        )
    training = version.training_data
    if training is not None and "training" not in roles:
        found.append(
            {
                "type": "data",
                "bom-ref": "dataset:training:uri",
                "name": training.uri,
                "hashes": _sha256(training.digest),
                "data": [
                    {
                        "type": "dataset",
                        "name": training.uri,
                        "contents": {"url": training.uri},
                        "description": training.description
                        or "training data named by URI (not checked by medops)",
                    }
                ],
                "properties": _properties({"role": "training", "checked": "no"}),
            }
        )
    if report is not None:
        found.append(
            {
                "type": "data",
                "bom-ref": f"dataset:evaluation:{report.id}",
                "name": report.dataset_name,
                "hashes": _sha256(report.dataset_digest),
                "data": [
                    {
                        "type": "dataset",
                        "name": report.dataset_name,
                        "description": f"evaluation data of validation report {report.id} "
                        f"({report.dataset_rows} rows, label {report.label_column})",
                    }
                ],
                "properties": _properties(
                    {"role": "evaluation", "rows": report.dataset_rows, "report": report.id}
                ),
            }
        )
    return [{k: v for k, v in c.items() if v not in (None, [])} for c in found]


def _software(version: VersionOut, onnxruntime: str | None) -> list[dict[str, Any]]:
    """The training framework, the converter (the artifact's producer) and the runtime."""
    found: list[dict[str, Any]] = []
    if version.framework:
        name, number = _split(version.framework)
        found.append({"type": "framework", "bom-ref": "framework", "name": name, "version": number})
    producer = str(version.artifact.get("producer") or "").strip()
    if producer:
        name, number = _split(producer)
        opset = version.artifact.get("opset") or {}
        found.append(
            {
                "type": "library",
                "bom-ref": "converter",
                "name": name,
                "version": number,
                "description": "the converter that wrote the ONNX artifact (its producer)",
                "properties": _properties(
                    {
                        **{f"onnx:opset:{domain}": v for domain, v in sorted(opset.items())},
                        "onnx:ir_version": version.artifact.get("ir_version"),
                    }
                ),
            }
        )
    found.append(
        {
            "type": "library",
            "bom-ref": "runtime",
            "name": "onnxruntime",
            "version": onnxruntime,
            "description": "the ONNX Runtime of the medops server that serves the model",
            "purl": f"pkg:pypi/onnxruntime@{onnxruntime}" if onnxruntime else None,
        }
    )
    return [{k: v for k, v in c.items() if v not in (None, [])} for c in found]


def _report(report: ReportOut | None) -> list[dict[str, Any]]:
    if report is None:
        return []
    return [
        {
            "type": "data",
            "bom-ref": f"report:{report.id}",
            "name": f"validation report {report.id}",
            "hashes": _sha256(report.report_hash),
            "data": [
                {
                    "type": "other",
                    "name": report.id,
                    "description": "the medops validation report (medops.validation-report/1)",
                }
            ],
            "properties": _properties(
                {
                    "passed": "yes" if report.passed else "no",
                    "failures": "; ".join(report.failures),
                    "computed_at": report.created_at.isoformat(),
                    "computed_by": report.created_by,
                }
            ),
        }
    ]


def _metrics(report: ReportOut | None) -> list[dict[str, Any]]:
    if report is None:
        return []
    found = []
    for name, metric in sorted(report.report.metrics.items()):
        if metric.value is None:
            continue
        entry: dict[str, Any] = {"type": name, "value": f"{metric.value:.6g}", "slice": "overall"}
        if metric.ci_low is not None and metric.ci_high is not None:
            entry["confidenceInterval"] = {
                "lowerBound": f"{metric.ci_low:.6g}",
                "upperBound": f"{metric.ci_high:.6g}",
            }
        found.append(entry)
    return found


def _considerations(card: dict[str, Any]) -> dict[str, Any]:
    team = team_content(card)
    out: dict[str, Any] = {}
    if team.get("intended_users"):
        out["users"] = [str(team["intended_users"])]
    if team.get("intended_use"):
        out["useCases"] = [str(team["intended_use"])]
    if team.get("limitations"):
        out["technicalLimitations"] = [str(team["limitations"])]
    if team.get("ethical_considerations"):
        out["ethicalConsiderations"] = [
            {
                "name": str(team["ethical_considerations"]),
                **(
                    {"mitigationStrategy": str(team["bias_mitigation"])}
                    if team.get("bias_mitigation")
                    else {}
                ),
            }
        ]
    if team.get("fairness_approach"):
        out["fairnessAssessments"] = [
            {
                "groupAtRisk": str(team.get("relevant_factors") or "subgroups of the report"),
                "benefits": str(team["fairness_approach"]),
            }
        ]
    return out


def _model_card(
    version: VersionOut,
    report: ReportOut | None,
    card: dict[str, Any],
    data_refs: list[str],
) -> dict[str, Any]:
    classes = version.signature.outputs.class_labels
    parameters: dict[str, Any] = {
        "approach": {"type": "supervised"},
        "task": "classification" if classes else "regression",
        "inputs": [{"format": "tabular record (medops signature)"}],
        "outputs": [{"format": f"class probabilities ({', '.join(map(str, classes))})"}],
    }
    if data_refs:
        parameters["datasets"] = [{"ref": ref} for ref in data_refs]
    model_card: dict[str, Any] = {"bom-ref": "model-card", "modelParameters": parameters}
    metrics = _metrics(report)
    if metrics:
        model_card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations = _considerations(card)
    if considerations:
        model_card["considerations"] = considerations
    completeness = card.get("completeness", {})
    model_card["properties"] = _properties(
        {
            "card_revision": card.get("revision"),
            "card_hash": card.get("content_hash"),
            "card_complete": "yes" if completeness.get("complete") else "no",
            "card_missing": ", ".join(completeness.get("missing", [])),
        }
    )
    return model_card


def _annotations(approvals: list[ApprovalOut], subject: str, now: datetime) -> list[dict[str, Any]]:
    """One annotation per electronic signature, by its signer."""
    return [
        {
            "bom-ref": f"signature:{a.id}",
            "subjects": [subject],
            "annotator": {"individual": {"name": f"{a.printed_name} ({a.username}, {a.role})"}},
            "timestamp": a.signed_at.isoformat(),
            "text": (
                f"electronic signature, meaning {a.meaning}; manifest sha256 {a.manifest_hash}, "
                f"key {a.key_id}; artifact {a.artifact_digest}, report {a.report_id}; "
                + ("verifies now" if a.valid else "INVALID now: " + "; ".join(a.invalid_reasons))
                + f" (checked {now.isoformat()})"
            ),
        }
        for a in approvals
    ]


def build(
    version: VersionOut,
    *,
    report: ReportOut | None,
    approvals: list[ApprovalOut],
    card: dict[str, Any],
    now: datetime,
    medops_version: str,
    onnxruntime: str | None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 document of a version, from what the registry returned."""
    subject = f"model:{version.model}/{version.version}"
    data = _datasets(version, report)
    software = _software(version, onnxruntime)
    reports = _report(report)
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": subject,
        "name": version.model,
        "version": str(version.version),
        "description": version.description or f"{version.model} version {version.version}",
        "hashes": _sha256(version.artifact_digest),
        "modelCard": _model_card(version, report, card, [c["bom-ref"] for c in data]),
        "properties": _properties(
            {
                "ref": version.ref,
                "artifact_size": version.artifact_size,
                "status": version.status,
                "aliases": ", ".join(version.aliases),
                "registered_at": version.created_at.isoformat(),
                "registered_by": version.created_by,
                "parity_max_abs_diff": version.parity.max_abs_diff if version.parity else None,
                "parity_tolerance": version.parity.tolerance if version.parity else None,
                "parent": version.parent,
                "code_commit": version.code.commit if version.code else None,
            }
        ),
    }
    if version.code is not None and version.code.repository:
        model["externalReferences"] = [
            {"type": "vcs", "url": version.code.repository, "comment": version.code.commit}
        ]
    components = [*data, *reports, *software]
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": now.isoformat(),
            "tools": {
                "components": [{"type": "application", "name": "medops", "version": medops_version}]
            },
            "component": model,
        },
        "components": components,
        "dependencies": [
            {"ref": subject, "dependsOn": [c["bom-ref"] for c in components]},
            *({"ref": c["bom-ref"]} for c in components),
        ],
    }
    annotations = _annotations(approvals, subject, now)
    if annotations:
        document["annotations"] = annotations
    return document


def for_version(
    registry: RegistryService, lifecycle: LifecycleService, ref: Ref, now: datetime
) -> dict[str, Any]:
    """The ML-BOM of the version ``ref`` names, as it stands now."""
    import medops
    from medops.errors import NotFoundError

    version = registry.get_version(ref)
    exact = type(ref)(version.model, version=version.version)
    try:
        report: ReportOut | None = registry.report(exact)
    except NotFoundError:
        report = None
    approvals = lifecycle.approvals(exact)
    return build(
        version,
        report=report,
        approvals=approvals,
        card=registry.card(exact, approvals),
        now=now,
        medops_version=medops.__version__,
        onnxruntime=_version_of("onnxruntime"),
    )


@dataclass(frozen=True)
class BomSummary:
    """What a person reads of an ML-BOM (the CLI's table; the tests' typed view)."""

    model: str
    version: str
    artifact_sha256: str | None
    framework: str | None
    converter: str | None
    opset: str | None
    onnxruntime: str | None
    datasets: list[str] = field(default_factory=list)
    report_sha256: str | None = None
    signers: list[str] = field(default_factory=list)


def _property(component: dict[str, Any], name: str) -> str | None:
    return next(
        (p["value"] for p in component.get("properties", []) if p["name"] == f"medops:{name}"),
        None,
    )


def summarize(document: dict[str, Any]) -> BomSummary:
    """The headline of a CycloneDX ML-BOM made by ``build``."""
    model = document["metadata"]["component"]
    components = {c["bom-ref"]: c for c in document.get("components", [])}

    def named(ref: str) -> str | None:
        found = components.get(ref)
        if found is None:
            return None
        return f"{found['name']} {found.get('version', '')}".strip()

    def first_hash(component: dict[str, Any] | None) -> str | None:
        hashes = (component or {}).get("hashes") or []
        return str(hashes[0]["content"]) if hashes else None

    converter = components.get("converter", {})
    opsets = [
        f"{p['name'].removeprefix('medops:onnx:opset:')} {p['value']}"
        for p in converter.get("properties", [])
        if p["name"].startswith("medops:onnx:opset:")
    ]
    report = next((c for ref, c in components.items() if ref.startswith("report:")), None)
    return BomSummary(
        model=model["name"],
        version=model["version"],
        artifact_sha256=first_hash(model),
        framework=named("framework"),
        converter=named("converter"),
        opset=", ".join(opsets) or None,
        onnxruntime=components.get("runtime", {}).get("version"),
        datasets=[
            f"{c['name']}{'@' + c['version'] if c.get('version') else ''} "
            f"({_property(c, 'role') or '-'})"
            for ref, c in components.items()
            if ref.startswith("dataset:")
        ],
        report_sha256=first_hash(report),
        signers=[a["annotator"]["individual"]["name"] for a in document.get("annotations", [])],
    )
