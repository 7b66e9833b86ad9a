"""The SDK's inference-service calls, mixed into ``medops.Client``.

A deployment is an endpoint bound to ``name@alias`` (it follows the alias) or ``name/N``
(pinned). ``predict`` sends one record (``features``) or several (``records``) and returns
the server's JSON answer as is: ``{"deployment", "predictions": [...], "timing_ms"}``, or a
FHIR R4 RiskAssessment (a Bundle for several records) with ``fhir=True``. Outcomes attach
the ground truth to earlier predictions, one at a time or from a CSV.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.errors import FieldError, InvalidInputError
from medops.serving.schemas import (
    LOOKBACK_DAYS_DEFAULT,
    CanaryRequest,
    ClassLabel,
    DeploymentCreate,
    DeploymentEventOut,
    DeploymentOut,
    DeploymentRollbackRequest,
    ExplainRequest,
    ExplanationOut,
    OutcomeIn,
    OutcomeMatchIn,
    OutcomeOut,
    OutcomeUploadOut,
    PredictLimits,
    RolloutLimits,
    ShadowRequest,
)

FHIR_JSON = "application/fhir+json"

_DEPLOYMENT = Shape(DeploymentOut)
_EXPLANATION = Shape(ExplanationOut)
_DEPLOYMENTS = Shape(list[DeploymentOut])
_EVENTS = Shape(list[DeploymentEventOut])
_OUTCOME = Shape(OutcomeOut)
_UPLOAD = Shape(OutcomeUploadOut)
_LIMITS = Shape(PredictLimits)
_ANY = Shape(dict[str, Any])

LimitsLike = RolloutLimits | Mapping[str, Any]


def _path(name: str) -> str:
    return f"/api/v1/deployments/{quote(name, safe='')}"


def _limits(limits: LimitsLike | None) -> RolloutLimits | None:
    return None if limits is None else RolloutLimits.model_validate(limits)


class ServingCalls(Transport):
    """Deployment, prediction and outcome methods of the SDK client."""

    # -- deployments ----------------------------------------------------------------------

    def list_deployments(self) -> list[DeploymentOut]:
        """Every deployment with what it serves. Needs deployments:read."""
        return self._call("GET", "/api/v1/deployments", _DEPLOYMENTS)

    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        cache_size: int = 0,
        limits: LimitsLike | None = None,
        explain: bool = False,
        reason: str = "created",
    ) -> DeploymentOut:
        """A new endpoint bound to ``model``: ``name@alias`` (followed) or ``name/N`` (pinned,
        which must pass the gates of ``production``). ``cache_size`` 0 turns the cache off."""
        body = DeploymentCreate(
            name=name,
            model=model,
            cache_size=cache_size,
            limits=_limits(limits) or RolloutLimits(),
            explain=explain,
            reason=reason,
        ).model_dump(mode="json")
        return self._call("POST", "/api/v1/deployments", _DEPLOYMENT, json=body)

    def deployment(self, name: str) -> DeploymentOut:
        """A deployment, the version it resolves to now, and the server's live figures."""
        return self._call("GET", _path(name), _DEPLOYMENT)

    def deployment_history(self, name: str) -> list[DeploymentEventOut]:
        """Every change of a deployment, oldest first."""
        return self._call("GET", _path(name) + "/history", _EVENTS)

    def set_canary(
        self,
        name: str,
        version: int | None,
        percent: int,
        reason: str,
        *,
        limits: LimitsLike | None = None,
    ) -> DeploymentOut:
        """Send ``percent`` of records (sticky per patient) to ``version``, which must pass
        the gates; ``percent`` 0 ends the canary. ``limits`` replaces all three limits."""
        body = CanaryRequest(
            version=version, percent=percent, limits=_limits(limits), reason=reason
        ).model_dump(mode="json")
        return self._call("PUT", _path(name) + "/canary", _DEPLOYMENT, json=body)

    def set_shadow(self, name: str, version: int | None, reason: str) -> DeploymentOut:
        """Score a copy of every record with ``version`` (logged, never returned); None stops."""
        body = ShadowRequest(version=version, reason=reason).model_dump(mode="json")
        return self._call("PUT", _path(name) + "/shadow", _DEPLOYMENT, json=body)

    def set_explain(self, name: str, always: bool, reason: str) -> DeploymentOut:
        """Explain every prediction of ``name`` (``always``) or only those asked for."""
        body = ExplainRequest(always=always, reason=reason).model_dump(mode="json")
        return self._call("PUT", _path(name) + "/explain", _DEPLOYMENT, json=body)

    def prediction_explanation(self, prediction_id: str) -> ExplanationOut:
        """The logged explanation of a prediction (every contribution, those shown, and
        whether it matches its audit record). Needs audit:read."""
        return self._call(
            "GET", f"/api/v1/predictions/{quote(prediction_id, safe='')}/explanation", _EXPLANATION
        )

    def rollback_deployment(self, name: str, reason: str) -> DeploymentOut:
        """End the canary at once; without one, move the deployment back (a followed alias
        is rolled back through the registry, which needs models:promote)."""
        body = DeploymentRollbackRequest(reason=reason).model_dump(mode="json")
        return self._call("POST", _path(name) + "/rollback", _DEPLOYMENT, json=body)

    # -- predictions ----------------------------------------------------------------------

    def predict(
        self,
        name: str,
        features: Mapping[str, Any] | None = None,
        *,
        records: Sequence[Mapping[str, Any]] | None = None,
        patient_ref: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        fhir: bool = False,
        explain: bool = False,
    ) -> dict[str, Any]:
        """Score one record (``features``) or several (``records``, each
        ``{"features": {...}, "patient_ref": ...}``). ``patient_ref`` applies to records
        without their own. Returns the JSON answer, or FHIR with ``fhir=True``; ``explain`` adds
        each prediction's feature contributions (``explanation``)."""
        if (features is None) == (records is None):
            reason = "pass either features (one record) or records"
            raise InvalidInputError(reason, errors=[FieldError("features", reason)])
        body: dict[str, Any] = (
            {"features": dict(features)}
            if features is not None
            else {"records": [dict(r) for r in records or ()]}
        )
        if patient_ref is not None:
            body["patient_ref"] = patient_ref
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if explain:
            body["explain"] = True
        headers = {"content-type": "application/json"}
        if fhir:
            headers["accept"] = FHIR_JSON
        # Encoded here, not by httpx: a NaN reaches the server, which names the field.
        content = json.dumps(body)
        return self._call("POST", _path(name) + "/predict", _ANY, content=content, headers=headers)

    def predict_limits(self, name: str) -> PredictLimits:
        """What one predict request to ``name`` may hold (records, bytes) and the features
        each record needs; ``medops.bulk_predict`` sends larger inputs in batches within it."""
        return self._call("GET", _path(name) + "/predict-limits", _LIMITS)

    # -- outcomes -------------------------------------------------------------------------

    def record_outcome(
        self, prediction_id: str, label: ClassLabel, observed_at: datetime | None = None
    ) -> OutcomeOut:
        """Attach the ground truth to a prediction; the same outcome again changes nothing."""
        body = OutcomeIn(label=label, observed_at=observed_at).model_dump(mode="json")
        path = f"/api/v1/predictions/{quote(prediction_id, safe='')}/outcome"
        return self._call("POST", path, _OUTCOME, json=body)

    def record_outcome_for_patient(
        self,
        deployment: str,
        patient_ref: str,
        label: ClassLabel,
        *,
        observed_at: datetime | None = None,
        predicted_from: datetime | None = None,
        predicted_to: datetime | None = None,
        lookback_days: float = LOOKBACK_DAYS_DEFAULT,
    ) -> OutcomeOut:
        """Attach the ground truth to a patient's prediction on ``deployment``, found by
        time: the latest (shadow ones excluded) at or before ``observed_at`` within
        ``lookback_days``, or the latest within ``predicted_from``..``predicted_to``. No
        prediction there, or two at the same time, raises InvalidInputError."""
        body = OutcomeMatchIn(
            patient_ref=patient_ref,
            label=label,
            observed_at=observed_at,
            predicted_from=predicted_from,
            predicted_to=predicted_to,
            lookback_days=lookback_days,
        ).model_dump(mode="json")
        return self._call("POST", _path(deployment) + "/outcomes", _OUTCOME, json=body)

    def upload_outcomes(
        self,
        csv: bytes | Path,
        *,
        deployment: str | None = None,
        lookback_days: float | None = None,
    ) -> OutcomeUploadOut:
        """Attach outcomes from a CSV: a ``label`` column, and per row a ``prediction_id``
        or a ``patient_ref`` matched by time (``observed_at`` or ``predicted_from``/
        ``predicted_to``) on its ``deployment`` (a column, else ``deployment``), looking
        back ``lookback_days`` (30). One bad row stores nothing; the error lists every one."""
        content = csv.read_bytes() if isinstance(csv, Path) else csv
        params: dict[str, Any] = {}
        if deployment is not None:
            params["deployment"] = deployment
        if lookback_days is not None:
            params["lookback_days"] = lookback_days
        return self._call(
            "POST",
            "/api/v1/outcomes",
            _UPLOAD,
            content=content,
            params=params,
            headers={"content-type": "text/csv"},
        )
