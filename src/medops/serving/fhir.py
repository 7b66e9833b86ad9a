"""Predictions as FHIR R4 RiskAssessment resources (a Bundle of them for several records).

The subject is the pseudonymous patient reference (``Patient/<ref>``); a record sent without
one has no subject, which R4 requires, so FHIR answers need a patient reference. The model
version that produced the assessment is the ``method`` and a ``note`` with its artifact
digest; each class is one ``prediction`` with its probability. An explained prediction carries
its explanation as one extension (``serving/explain.py`` ``fhir_extension``: method, exactness,
scale, base value, output, and one ``feature-contribution`` per contribution shown).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from medops.errors import FieldError, InvalidInputError

PREDICTION_SYSTEM = "urn:medops:prediction"
MODEL_SYSTEM = "urn:medops:model"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def require_subjects(patient_refs: list[str | None], single: bool) -> None:
    """Refuse (422) a FHIR request with a record lacking its patient reference."""
    bad = [i for i, ref in enumerate(patient_refs) if ref and not FHIR_ID.fullmatch(ref)]
    if bad:
        where = "patient_ref" if single else f"records[{bad[0]}].patient_ref"
        raise InvalidInputError(
            "a FHIR subject reference needs a FHIR id: 1 to 64 of A-Z a-z 0-9 - .",
            errors=[FieldError(where, "not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)")],
        )
    missing = [i for i, ref in enumerate(patient_refs) if not ref]
    if missing:
        where = "patient_ref" if single else f"records[{missing[0]}].patient_ref"
        raise InvalidInputError(
            "a FHIR RiskAssessment needs its subject: send patient_ref with every record",
            errors=[FieldError(where, "required for application/fhir+json answers")],
        )


def risk_assessment(prediction: dict[str, Any], occurred: datetime) -> dict[str, Any]:
    """One prediction as a RiskAssessment (a plain dict, JSON-ready)."""
    model = f"{prediction['model']}/{prediction['version']}"
    resource = {
        "resourceType": "RiskAssessment",
        "id": prediction["id"],
        "identifier": [{"system": PREDICTION_SYSTEM, "value": prediction["id"]}],
        "status": "final",
        "method": {
            "coding": [{"system": MODEL_SYSTEM, "code": model}],
            "text": f"medops deployment {prediction['deployment']}, model {model}",
        },
        "subject": {"reference": f"Patient/{prediction['patient_ref']}"},
        "occurrenceDateTime": occurred.isoformat(),
        "prediction": [
            {"outcome": {"text": label}, "probabilityDecimal": probability}
            for label, probability in prediction["probabilities"].items()
        ],
        "note": [{"text": f"artifact sha256:{prediction['artifact_digest']}"}],
    }
    explanation = prediction.get("explanation")
    if explanation is not None:
        from medops.serving.explain import fhir_extension

        resource["extension"] = [fhir_extension(explanation)]
    return resource


def bundle(predictions: list[dict[str, Any]], occurred: datetime) -> dict[str, Any]:
    """Several predictions as a Bundle of type collection."""
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "collection",
        "timestamp": occurred.isoformat(),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.UUID(p['id'])}",
                "resource": risk_assessment(p, occurred),
            }
            for p in predictions
        ],
    }
