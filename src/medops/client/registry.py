"""The SDK's model-registry calls, mixed into ``medops.Client``.

References are ``name@alias``, ``name/3`` or ``name`` (its latest version). ``register_model``
packages a native model (scikit-learn, LightGBM, XGBoost, PyTorch) on this machine, checks
ONNX parity, and uploads only the ONNX file: the server never receives a pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.registry.refs import Ref, parse_ref
from medops.registry.schemas import (
    QUANTIZE_TOLERANCE,
    AliasEventOut,
    ApprovalOut,
    CardContent,
    GateResult,
    ModelCreate,
    ModelOut,
    ParityEvidenceIn,
    PinnedValidation,
    PolicyChangeOut,
    PolicyChangeRequest,
    PromotionPolicy,
    QuantizedVersionOut,
    ReportOut,
    VersionCreate,
    VersionOut,
)
from medops.validation import checked

if TYPE_CHECKING:
    from medops.packaging import Package


_MODEL = Shape(ModelOut)
_MODELS = Shape(list[ModelOut])
_VERSION = Shape(VersionOut)
_VERSIONS = Shape(list[VersionOut])
_REPORT = Shape(ReportOut)
_QUANTIZED = Shape(QuantizedVersionOut)
_APPROVAL = Shape(ApprovalOut)
_APPROVALS = Shape(list[ApprovalOut])
_GATES = Shape(GateResult)
_EVENT = Shape(AliasEventOut)
_EVENTS = Shape(list[AliasEventOut])
_ANY = Shape(dict[str, Any])
_POLICY_CHANGE = Shape(PolicyChangeOut)
_POLICY_CHANGES = Shape(list[PolicyChangeOut])


class RegistryCalls(Transport):
    """Model registry methods of the SDK client."""

    # -- models ---------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        policy: PromotionPolicy | Mapping[str, Any] | None = None,
    ) -> ModelOut:
        """Register a model name; a non-default policy needs models:policy."""
        body = ModelCreate(
            name=name,
            description=description,
            policy=checked(PromotionPolicy, policy or {}, "policy"),
        ).model_dump(mode="json")
        return self._call("POST", "/api/v1/models", _MODEL, json=body)

    def list_models(self) -> list[ModelOut]:
        """Every registered model. Needs models:read."""
        return self._call("GET", "/api/v1/models", _MODELS)

    def get_model(self, name: str) -> ModelOut:
        """A registered model: its policy, aliases and latest version. Needs models:read;
        raises NotFoundError for an unknown name."""
        return self._call("GET", f"/api/v1/models/{name}", _MODEL)

    def set_policy(self, name: str, policy: PromotionPolicy | Mapping[str, Any]) -> ModelOut:
        """Replace a model's policy with one at least as strict (``GovernedChangeError`` when
        it loosens a rule: propose it with ``propose_policy_change``)."""
        body = checked(PromotionPolicy, policy, "policy").model_dump(mode="json")
        return self._call("PUT", f"/api/v1/models/{name}/policy", _MODEL, json=body)

    def propose_policy_change(
        self, name: str, policy: PromotionPolicy | Mapping[str, Any], reason: str
    ) -> PolicyChangeOut:
        """Propose a policy that loosens the current one; it applies once two people, one of
        them a clinician, have signed it (``sign_policy_change``)."""
        body = PolicyChangeRequest(
            policy=checked(PromotionPolicy, policy, "policy"), reason=reason
        ).model_dump(mode="json")
        path = f"/api/v1/models/{name}/policy-changes"
        return self._call("POST", path, _POLICY_CHANGE, json=body)

    def policy_changes(self, name: str) -> list[PolicyChangeOut]:
        """Every policy change of a model, newest first."""
        return self._call("GET", f"/api/v1/models/{name}/policy-changes", _POLICY_CHANGES)

    def policy_change(self, name: str, change_id: str) -> PolicyChangeOut:
        """One policy change, its signatures and what it still needs."""
        path = f"/api/v1/models/{name}/policy-changes/{change_id}"
        return self._call("GET", path, _POLICY_CHANGE)

    def sign_policy_change(
        self,
        name: str,
        change_id: str,
        password: str,
        *,
        otp: str | None = None,
        comment: str | None = None,
    ) -> PolicyChangeOut:
        """Sign a pending policy change (re-authenticates); the completing signature applies
        it."""
        body = {"password": password, "otp": otp, "comment": comment}
        path = f"/api/v1/models/{name}/policy-changes/{change_id}/approvals"
        return self._call("POST", path, _POLICY_CHANGE, json=body)

    def withdraw_policy_change(self, name: str, change_id: str, reason: str) -> PolicyChangeOut:
        """Withdraw a pending policy change."""
        path = f"/api/v1/models/{name}/policy-changes/{change_id}/withdraw"
        return self._call("POST", path, _POLICY_CHANGE, json={"reason": reason})

    # -- versions -------------------------------------------------------------------------

    def _version_path(self, ref: str | Ref) -> str:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.alias is not None:
            selector = parsed.alias
        elif parsed.version is not None:
            selector = str(parsed.version)
        else:
            latest = self.get_model(parsed.name).latest_version
            selector = str(latest or 1)
        return f"/api/v1/models/{parsed.name}/versions/{selector}"

    def register_version(self, name: str, onnx: bytes, metadata: VersionCreate) -> VersionOut:
        """Upload an ONNX file with its signature, lineage and (optionally) parity sample."""
        files = {"artifact": (f"{name}.onnx", onnx, "application/octet-stream")}
        data = {"metadata": metadata.model_dump_json()}
        return self._call(
            "POST", f"/api/v1/models/{name}/versions", _VERSION, files=files, data=data
        )

    def register_package(
        self,
        name: str,
        package: Package,
        *,
        description: str | None = None,
        training_data: Mapping[str, Any] | None = None,
        code: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        validation_data: Mapping[str, Any] | None = None,
        reference_data: Mapping[str, Any] | None = None,
    ) -> VersionOut:
        """Register a packaged model (see ``medops.packaging.package_model``). Data pinned
        to dataset versions: ``training_data={"dataset": "NAME@VERSION"}`` (likewise
        ``validation_data`` and ``reference_data``); ``{"uri": ..., "digest": ...}`` is the
        older unchecked form of the training data."""
        parity = None
        if package.parity is not None:
            parity = ParityEvidenceIn(
                columns=package.parity.columns,
                native_probabilities=package.parity.native_probabilities,
                tolerance=package.parity.tolerance,
                client_max_abs_diff=package.parity.max_abs_diff,
            )
        metadata = VersionCreate.model_validate(
            {
                "signature": package.signature,
                "framework": package.framework,
                "description": description,
                "training_data": training_data,
                "validation_data": validation_data,
                "reference_data": reference_data,
                "code": code,
                "hyperparameters": package.hyperparameters,
                "training_metrics": package.training_metrics,
                "lineage": package.lineage,
                "tags": dict(tags or {}),
                "parity": parity,
            }
        )
        return self.register_version(name, package.onnx, metadata)

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        sample: Any,
        demographic: Sequence[str] = (),
        bands: Mapping[str, Sequence[float]] | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        tolerance: float = 1e-4,
        description: str | None = None,
        training_data: Mapping[str, Any] | None = None,
        code: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        validation_data: Mapping[str, Any] | None = None,
        reference_data: Mapping[str, Any] | None = None,
    ) -> VersionOut:
        """Convert a native model to ONNX here, check parity on ``sample``, and register it
        (the data arguments as in ``register_package``)."""
        from medops.packaging import package_model

        package = package_model(
            model,
            sample=sample,
            demographic=demographic,
            bands=bands,
            ranges=ranges,
            tolerance=tolerance,
        )
        return self.register_package(
            name,
            package,
            description=description,
            training_data=training_data,
            code=code,
            tags=tags,
            validation_data=validation_data,
            reference_data=reference_data,
        )

    def list_versions(self, name: str) -> list[VersionOut]:
        """Every version of a model, newest first. Needs models:read."""
        return self._call("GET", f"/api/v1/models/{name}/versions", _VERSIONS)

    def get_version(self, ref: str | Ref) -> VersionOut:
        """One version (``name@alias``, ``name/3`` or ``name`` for the latest): signature,
        lineage, parity and status. Needs models:read; raises NotFoundError."""
        return self._call("GET", self._version_path(ref), _VERSION)

    def download_artifact(self, ref: str | Ref) -> bytes:
        """The version's ONNX bytes."""
        return self._raw("GET", self._version_path(ref) + "/artifact")

    # -- reports and cards ----------------------------------------------------------------

    def validate(
        self,
        ref: str | Ref,
        dataset: bytes | Path,
        *,
        label: str,
        dataset_name: str | None = None,
        threshold: float = 0.5,
        bootstrap: int = 1000,
        seed: int = 0,
    ) -> ReportOut:
        """Compute a validation report on the server from a labeled CSV."""
        if isinstance(dataset, Path):
            dataset_name = dataset_name or dataset.name
            dataset = dataset.read_bytes()
        params = {
            "label": label,
            "dataset": dataset_name or "evaluation.csv",
            "threshold": threshold,
            "bootstrap": bootstrap,
            "seed": seed,
        }
        return self._call(
            "POST",
            self._version_path(ref) + "/validate",
            _REPORT,
            content=dataset,
            params=params,
            headers={"content-type": "text/csv"},
        )

    def validate_from_dataset(
        self,
        ref: str | Ref,
        dataset: str,
        path: str,
        *,
        label: str,
        threshold: float = 0.5,
        bootstrap: int = 1000,
        seed: int = 0,
    ) -> ReportOut:
        """Re-run a validation report from the CSV file ``path`` of the dataset version
        ``dataset`` (NAME@VERSION), read on the server."""
        body = PinnedValidation(
            dataset=dataset, path=path, label=label, threshold=threshold, bootstrap=bootstrap,
            seed=seed,
        )  # fmt: skip
        return self._call(
            "POST",
            self._version_path(ref) + "/validate-dataset",
            _REPORT,
            json=body.model_dump(),
        )

    def quantize(
        self,
        ref: str | Ref,
        dataset: bytes | Path,
        *,
        label: str,
        dataset_name: str | None = None,
        tolerance: float = QUANTIZE_TOLERANCE,
        description: str | None = None,
    ) -> QuantizedVersionOut:
        """Derive an INT8 version of ``ref`` on the server, measured against it on a labeled
        CSV (latency, size, probability difference, label agreement, accuracy, AUROC)."""
        if isinstance(dataset, Path):
            dataset_name = dataset_name or dataset.name
            dataset = dataset.read_bytes()
        params: dict[str, Any] = {
            "label": label,
            "dataset": dataset_name or "evaluation.csv",
            "tolerance": tolerance,
        }
        if description is not None:
            params["description"] = description
        return self._call(
            "POST",
            self._version_path(ref) + "/quantize",
            _QUANTIZED,
            content=dataset,
            params=params,
            headers={"content-type": "text/csv"},
        )

    def report(self, ref: str | Ref, *, report_id: str | None = None) -> ReportOut:
        """A version's validation report (the newest, or ``report_id``): metrics with
        intervals, calibration and subgroups. Needs models:read; raises NotFoundError when
        the version has none."""
        params = {"id": report_id} if report_id else {}
        return self._call("GET", self._version_path(ref) + "/report", _REPORT, params=params)

    def report_html(self, ref: str | Ref, *, report_id: str | None = None) -> str:
        """The validation report as a self-contained HTML page (charts inline). Needs
        models:read."""
        params = {"format": "html"} | ({"id": report_id} if report_id else {})
        return self._raw("GET", self._version_path(ref) + "/report", params=params).decode()

    def update_card(
        self, ref: str | Ref, content: CardContent | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Set team-written card fields (others keep their values); returns the card."""
        card = checked(CardContent, content, "card fields")
        body = card.model_dump(mode="json", exclude_unset=True)
        return self._call("PATCH", self._version_path(ref) + "/card", _ANY, json=body)

    def copy_card(self, source: str | Ref, target: str | Ref) -> dict[str, Any]:
        """Copy the team-written card fields of ``source`` onto ``target`` (fields ``source``
        leaves empty keep ``target``'s values); returns ``target``'s card."""
        from medops.registry.card import team_content

        return self.update_card(target, team_content(self.card(source)))

    def card(self, ref: str | Ref) -> dict[str, Any]:
        """A version's model card as stored (intended use, data, limitations...). Needs
        models:read."""
        return self._call("GET", self._version_path(ref) + "/card", _ANY)

    def card_text(self, ref: str | Ref, fmt: str) -> str:
        """The card as Markdown (``md``) or HTML (``html``)."""
        return self._raw("GET", self._version_path(ref) + "/card", params={"format": fmt}).decode()

    # -- signatures and aliases -----------------------------------------------------------

    def approve(
        self,
        ref: str | Ref,
        password: str,
        *,
        otp: str | None = None,
        meaning: str = "approval",
        comment: str | None = None,
    ) -> ApprovalOut:
        """Sign a version electronically (re-authenticates with password and one-time code)."""
        body = {"password": password, "otp": otp, "meaning": meaning, "comment": comment}
        return self._call("POST", self._version_path(ref) + "/approvals", _APPROVAL, json=body)

    def approvals(self, ref: str | Ref) -> list[ApprovalOut]:
        """The electronic signatures on a version, oldest first. Needs models:read."""
        return self._call("GET", self._version_path(ref) + "/approvals", _APPROVALS)

    def gates(self, ref: str | Ref, alias: str = "production") -> GateResult:
        """Whether a version may be promoted to ``alias`` now: each gate of the model's policy
        (report, thresholds, card, parity, signatures) with its verdict. Needs models:read."""
        path = self._version_path(ref) + "/gates"
        return self._call("GET", path, _GATES, params={"alias": alias})

    def sbom(self, ref: str | Ref) -> dict[str, Any]:
        """A version's ML bill of materials: CycloneDX 1.6 JSON (``medops.registry.sbom``
        reads its headline with ``summarize``). Needs models:read."""
        return self._call("GET", self._version_path(ref) + "/sbom", _ANY)

    def promote(self, name: str, alias: str, version: int, reason: str) -> AliasEventOut:
        """Point ``name@alias`` at ``version``; protected aliases check every gate first."""
        body = {"version": version, "reason": reason}
        return self._call("PUT", f"/api/v1/models/{name}/aliases/{alias}", _EVENT, json=body)

    def rollback(self, name: str, reason: str, alias: str = "production") -> AliasEventOut:
        """Move ``name@alias`` back to its previous version."""
        path = f"/api/v1/models/{name}/aliases/{alias}/rollback"
        return self._call("POST", path, _EVENT, json={"reason": reason})

    def history(self, name: str, alias: str | None = None) -> list[AliasEventOut]:
        """Every alias move of a model (promotion, rollback), newest first; only ``alias``
        when given. Needs models:read."""
        params = {"alias": alias} if alias else {}
        return self._call("GET", f"/api/v1/models/{name}/history", _EVENTS, params=params)

    def alias_version(self, name: str, alias: str, at: datetime | None = None) -> int:
        """The version ``name@alias`` points at now (or pointed at at time ``at``)."""
        params = {"at": at.isoformat()} if at else {}
        answer = self._call("GET", f"/api/v1/models/{name}/aliases/{alias}", _ANY, params=params)
        return int(answer["version"])
