"""The model registry's use cases: models, immutable versions, validation reports, cards.

Approvals and alias moves live in lifecycle.py. Every change is audited in the transaction
that makes it, with before and after values.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core import datasets
from medops.core.permissions import Permission
from medops.db.engine import Database
from medops.errors import (
    ConflictError,
    DuplicateVersionError,
    FieldError,
    GovernedChangeError,
    InvalidInputError,
    NotFoundError,
    NotQuantizableError,
    ParityFailedError,
    PermissionDeniedError,
    ServiceUnavailableError,
    SignatureMismatchError,
)
from medops.registry import card as cards
from medops.registry import pins
from medops.registry.approvals import canonical_json, sha256_json
from medops.registry.explained import global_explanations
from medops.registry.policy import judge, loosenings
from medops.registry.refs import Ref
from medops.registry.schemas import (
    QUANTIZATION_METHOD,
    QUANTIZE_TOLERANCE,
    ApprovalOut,
    CardContent,
    DataReference,
    DatasetPin,
    ModelCreate,
    ModelOut,
    ParityOut,
    PinnedValidation,
    PromotionPolicy,
    QuantizationReport,
    QuantizedVersionOut,
    ReportOut,
    ReportSummary,
    VersionCreate,
    VersionOut,
)
from medops.registry.store import (
    aliases_of,
    card_content,
    latest_report,
    load_model,
    policy_of,
    report_summary,
    resolve,
    version_out,
)
from medops.registry.tables import ModelCard, ModelVersion, RegisteredModel, ValidationReport
from medops.registry.validation_report import ReportDocument
from medops.storage.base import DIGEST_PREFIX, BlobStore, digest_of

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from medops.core.onnx_artifact import ArtifactInfo
    from medops.core.onnx_model import OnnxModel
    from medops.core.signature import ModelSignature

# ONNX Runtime, onnx and the report modules are imported where they are used: every CLI
# command in embedded mode builds these services, and most never load a model.


def _refuse_loosening(name: str, before: PromotionPolicy, after: PromotionPolicy) -> None:
    """One person may only tighten a policy; a loosening goes through signatures."""
    found = loosenings(before, after)
    if not found:
        return
    raise GovernedChangeError(
        f"the policy for {name} loosens the current one ({'; '.join(found)}); propose it with "
        f"'medops models policy-change propose {name} FILE --reason ...': it applies once two "
        "people, one a clinician, have signed it",
        errors=[FieldError("policy", reason) for reason in found],
    )


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _binary_dataset(
    dataset: bytes, signature: ModelSignature, label_column: str, *, refusal: str
) -> tuple[datasets.LabeledData, np.ndarray]:
    """A labeled CSV checked against a binary classifier's signature, and its labels as 0/1
    (``refusal`` says why a model with more classes is refused)."""
    import numpy as np

    from medops.core.onnx_model import validate_columns

    if len(signature.outputs.class_labels) != 2:
        raise InvalidInputError(refusal, errors=[FieldError("signature.outputs", refusal)])
    parsed = datasets.parse_csv(dataset, signature, label_column=label_column)
    validate_columns(signature, parsed.columns)
    labels = datasets.binary_labels(parsed.labels, signature, label_column=label_column)
    return parsed, np.asarray(labels, dtype=np.int64)


def _refuse_unpinned_forms(data: VersionCreate) -> None:
    """A URI may not pretend to be a pin, nor the free-form lineage carry the pins' key."""
    if isinstance(data.training_data, DataReference) and data.training_data.uri.startswith(
        pins.DATASET_URI_PREFIX
    ):
        reason = "pin a dataset version as {'dataset': 'NAME@VERSION'}, not as a URI"
        raise InvalidInputError(reason, errors=[FieldError("training_data.uri", reason)])
    if "datasets" in data.lineage:
        reason = "'datasets' is kept by medops from training/validation/reference data"
        raise InvalidInputError(reason, errors=[FieldError("lineage.datasets", reason)])


def _with_pins(data: VersionCreate, pinned: list[pins.Pin]) -> VersionCreate:
    """What is stored: pinned training data as a reference to its dataset version (URI and
    Merkle root), and every pin under the lineage's ``datasets`` key."""
    if not pinned:
        return data
    update: dict[str, Any] = {
        "lineage": {
            **data.lineage,
            "datasets": {p.role: {"dataset": p.dataset, "root": p.root} for p in pinned},
        }
    }
    training = next((p for p in pinned if p.role == "training"), None)
    if training is not None:
        described = data.training_data
        update["training_data"] = DataReference(
            uri=pins.DATASET_URI_PREFIX + training.dataset,
            digest=training.root.removeprefix("sha256:"),
            description=described.description if isinstance(described, DatasetPin) else None,
        )
    return data.model_copy(update=update)


def _version_id(session: Session, model: RegisteredModel, number: int) -> str:
    return session.scalars(
        select(ModelVersion.id).where(
            ModelVersion.model_id == model.id, ModelVersion.version == number
        )
    ).one()


def _change(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


class RegistryService:
    """Registers models and versions, computes validation reports, keeps model cards."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, blobs: BlobStore) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._blobs = blobs
        # Called in the registration's transaction with the dataset versions it pins
        # (services.py appends lineage's recorder; see pins.py).
        self.pin_hooks: list[pins.PinHook] = []
        # Reads a file of a dataset version for validation re-runs (services.py sets the
        # dataset service's read_file; None: re-runs from dataset versions are unavailable).
        self.data_reader: pins.DataReader | None = None

    # -- models ---------------------------------------------------------------------------

    def create_model(self, ctx: Context, data: ModelCreate) -> ModelOut:
        """Register a model name with its promotion policy (the default unless the caller
        may set policies)."""
        actor = require_actor(ctx)
        if data.policy != PromotionPolicy() and not actor.can(Permission.MODELS_POLICY):
            raise PermissionDeniedError(
                "a non-default promotion policy needs permission "
                f"{Permission.MODELS_POLICY.value!r}"
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.scalars(
                select(RegisteredModel).where(RegisteredModel.name == data.name)
            ).first():
                raise ConflictError(
                    f"model {data.name!r} already exists",
                    errors=[FieldError("name", "already taken")],
                )
            policy = data.policy.model_dump(mode="json")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.create",
                    resource_type="model",
                    resource_id=data.name,
                    details={"after": {"description": data.description, "policy": policy}},
                ),
            )
            model = RegisteredModel(
                id=_new_id("mdl"),
                name=data.name,
                description=data.description,
                policy=canonical_json(policy),
                created_at=now,
                created_by=actor.username,
                next_version=1,
            )
            session.add(model)
            try:
                session.flush()
            except SQLAlchemyIntegrityError:  # created concurrently by another process
                raise ConflictError(
                    f"model {data.name!r} already exists",
                    errors=[FieldError("name", "already taken")],
                ) from None
            return self._model_out(session, model)

    def set_policy(self, ctx: Context, name: str, policy: PromotionPolicy) -> ModelOut:
        """Replace a model's promotion policy with one at least as strict (audited with before
        and after); a policy that loosens any rule is a governed change
        (``PolicyChangeService``)."""
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            _refuse_loosening(name, policy_of(model), policy)
            before = json.loads(model.policy)
            after = policy.model_dump(mode="json")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.policy",
                    resource_type="model",
                    resource_id=name,
                    details={"before": before, "after": after},
                ),
            )
            model.policy = canonical_json(after)
            return self._model_out(session, model)

    def list_models(self) -> list[ModelOut]:
        with self._db.session() as session:
            models = session.scalars(select(RegisteredModel).order_by(RegisteredModel.name))
            return [self._model_out(session, m) for m in models]

    def get_model(self, name: str) -> ModelOut:
        with self._db.session() as session:
            return self._model_out(session, load_model(session, name))

    @staticmethod
    def _model_out(session: Any, model: RegisteredModel) -> ModelOut:
        latest = session.scalar(
            select(ModelVersion.version)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
        return ModelOut(
            name=model.name,
            description=model.description,
            policy=policy_of(model),
            created_at=model.created_at,
            created_by=model.created_by,
            latest_version=latest,
            aliases=aliases_of(session, model.id),
        )

    # -- versions -------------------------------------------------------------------------

    def register_version(
        self, ctx: Context, name: str, artifact: bytes, data: VersionCreate
    ) -> VersionOut:
        """Check the ONNX artifact against its signature and the native model's outputs, then
        store it as the model's next immutable version; on any failure nothing is stored."""
        from medops.core.onnx_model import OnnxModel

        actor = require_actor(ctx)
        _refuse_unpinned_forms(data)
        with self._db.session() as session:
            load_model(session, name)
            for role, wanted in data.pins():  # fail fast, before the artifact is loaded
                pins.pin(session, role, wanted.dataset, field=f"{role}_data.dataset")
        loaded = OnnxModel(artifact, data.signature)  # refuses non-ONNX, checks the signature
        parity = self._parity(loaded, data) if data.parity is not None else None
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            # Resolved again in the transaction that records them: a version deleted in
            # between is refused, never pinned.
            pinned = [
                pins.pin(session, role, wanted.dataset, field=f"{role}_data.dataset")
                for role, wanted in data.pins()
            ]
            stored = _with_pins(data, pinned)
            after = {
                "artifact_digest": loaded.info.digest,
                "framework": data.framework,
                "parity": parity.model_dump() if parity else None,
                "training_data": stored.training_data.model_dump()
                if stored.training_data
                else None,
                "datasets": {p.role: p.dataset for p in pinned},
                "code": data.code.model_dump() if data.code else None,
            }
            version = self._add_version(
                session,
                ctx,
                model,
                artifact,
                loaded.info,
                stored,
                parity=parity,
                parent_id=None,
                action="model.version.register",
                after=after,
            )
            registered = pins.Registered(
                name, version.version, _version_id(session, model, version.version), actor.username
            )
            for hook in self.pin_hooks:
                hook(session, registered, pinned)
            require_parity = policy_of(model).require_parity
        return version.model_copy(
            update={"warnings": cards.registration_warnings(version, require_parity)}
        )

    def _add_version(
        self,
        session: Session,
        ctx: Context,
        model: RegisteredModel,
        artifact: bytes,
        info: ArtifactInfo,
        data: VersionCreate,
        *,
        parity: ParityOut | None,
        parent_id: str | None,
        action: str,
        after: dict[str, Any],
    ) -> VersionOut:
        """Store a checked artifact as ``model``'s next version in the caller's transaction
        (``model`` locked), audited as ``action``: the row is flushed before the blob is
        written, so the database's refusals leave nothing behind."""
        actor = require_actor(ctx)
        name, digest = model.name, info.digest
        taken = session.scalars(
            select(ModelVersion.version).where(
                ModelVersion.model_id == model.id, ModelVersion.artifact_digest == digest
            )
        ).first()
        if taken is not None:
            raise DuplicateVersionError(
                f"model {name!r} already has this artifact as version {taken} "
                f"(sha256 {digest[:12]})",
                errors=[FieldError("artifact", f"same digest as version {taken}")],
            )
        number = model.next_version
        row = ModelVersion(
            id=_new_id("mv"),
            model_id=model.id,
            version=number,
            artifact_digest=digest,
            artifact_size=info.size,
            artifact_info=canonical_json(dataclasses.asdict(info)),
            signature=canonical_json(data.signature.model_dump(mode="json")),
            framework=data.framework,
            parity=canonical_json(parity.model_dump()) if parity else None,
            training_data=canonical_json(data.training_data.model_dump())
            if data.training_data
            else None,
            code_ref=canonical_json(data.code.model_dump()) if data.code else None,
            hyperparameters=canonical_json(data.hyperparameters),
            training_metrics=canonical_json(data.training_metrics),
            lineage=canonical_json(data.lineage),
            tags=canonical_json(data.tags),
            description=data.description,
            parent_id=parent_id,
            created_at=self._clock.now(),
            created_by=actor.username,
        )
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=action,
                resource_type="model_version",
                resource_id=f"{name}/{number}",
                details={"after": after},
            ),
        )
        model.next_version = number + 1
        session.add(row)
        try:
            session.flush()  # the database's refusals come before any blob is written
        except SQLAlchemyIntegrityError:
            raise DuplicateVersionError(
                f"model {name!r} got this version or artifact concurrently; nothing stored"
            ) from None
        stored = self._blobs.put(artifact)
        assert stored == DIGEST_PREFIX + digest
        return version_out(session, model, row)

    @staticmethod
    def _parity(loaded: OnnxModel, data: VersionCreate) -> ParityOut:
        import numpy as np

        from medops.core.onnx_model import parity_diff, validate_columns

        evidence = data.parity
        assert evidence is not None
        validate_columns(data.signature, evidence.columns)
        try:
            native = np.asarray(evidence.native_probabilities, dtype=np.float64)
        except ValueError:  # rows of different lengths
            native = np.empty((0,))
        classes = len(data.signature.outputs.class_labels)
        rows = len(next(iter(evidence.columns.values()), []))
        if native.ndim != 2 or native.shape != (rows, classes):
            reason = f"must be {rows} rows of {classes} probabilities"
            raise SignatureMismatchError(
                f"parity.native_probabilities {reason}",
                errors=[FieldError("parity.native_probabilities", reason)],
            )
        diff = parity_diff(loaded, evidence.columns, native)
        _, probabilities = loaded.predict(evidence.columns)
        agreement = float(np.mean(np.argmax(probabilities, axis=1) == np.argmax(native, axis=1)))
        if not diff <= evidence.tolerance:
            raise ParityFailedError(
                f"ONNX outputs differ from the native model by up to {diff:.3g} "
                f"(tolerance {evidence.tolerance:g}) on {rows} rows; nothing was stored",
                errors=[
                    FieldError("parity", f"max abs difference {diff:.6g} > {evidence.tolerance:g}")
                ],
            )
        return ParityOut(
            max_abs_diff=diff,
            tolerance=evidence.tolerance,
            rows=rows,
            label_agreement=agreement,
            client_max_abs_diff=evidence.client_max_abs_diff,
        )

    def list_versions(self, name: str) -> list[VersionOut]:
        with self._db.session() as session:
            model = load_model(session, name)
            rows = session.scalars(
                select(ModelVersion)
                .where(ModelVersion.model_id == model.id)
                .order_by(ModelVersion.version)
            )
            return [version_out(session, model, row) for row in rows]

    def get_version(self, ref: Ref) -> VersionOut:
        with self._db.session() as session:
            model, row = resolve(session, ref)
            return version_out(session, model, row)

    def artifact(self, ref: Ref) -> tuple[VersionOut, bytes]:
        """A version and its ONNX bytes (verified against the digest on read)."""
        version = self.get_version(ref)
        return version, self._blobs.get(DIGEST_PREFIX + version.artifact_digest)

    # -- derived versions -----------------------------------------------------------------

    def explain_background(self, ref: Ref, limit: int) -> dict[str, list[Any]] | None:
        """Up to ``limit`` rows (a fixed-seed sample) of the data the version's latest
        validation report was computed on, as columns: the background its explanations are
        computed against (None when the version has no report)."""
        from medops.registry.explained import sample_rows

        with self._db.session() as session:
            model, row = resolve(session, ref)
            signature = version_out(session, model, row).signature
            record = latest_report(session, row.id)
            if record is None:
                return None
            digest, label_column = record.dataset_digest, record.label_column
        parsed = datasets.parse_csv(
            self._blobs.get(DIGEST_PREFIX + digest), signature, label_column=label_column
        )
        rows = sample_rows(parsed.columns, limit)
        return {name: [values[i] for i in rows] for name, values in parsed.columns.items()}

    def quantize(
        self,
        ctx: Context,
        ref: Ref,
        dataset: bytes,
        *,
        label_column: str,
        dataset_name: str,
        tolerance: float = QUANTIZE_TOLERANCE,
        description: str | None = None,
    ) -> QuantizedVersionOut:
        """Derive an INT8 version of ``ref`` (ONNX Runtime dynamic quantization), measure it
        against ``ref`` on a labeled CSV, and store it as the model's next version with ``ref``
        as its parent; on any refusal nothing is stored.

        The largest probability difference from the parent must be within ``tolerance``. It
        becomes the new version's parity when the parent has one: the parent's parity bounds
        the parent against the native model, this one the INT8 model against the parent."""
        import onnxruntime  # type: ignore[import-untyped]

        from medops.core.onnx_model import OnnxModel
        from medops.registry.quantize import check_quantizable, quantize_int8

        require_actor(ctx)
        with self._db.session() as session:
            model, row = resolve(session, ref)
            parent, parent_id = version_out(session, model, row), row.id
        if "quantization" in parent.lineage:
            reason = f"{parent.ref} is already an INT8 quantization; quantize its parent instead"
            raise NotQuantizableError(reason, errors=[FieldError("model", reason)])
        artifact = self._blobs.get(DIGEST_PREFIX + parent.artifact_digest)
        check_quantizable(artifact)  # before the data: a tree model is refused for what it is
        signature = parent.signature
        parsed, y_true = _binary_dataset(
            dataset, signature, label_column, refusal="quantization measures binary classifiers"
        )
        result = quantize_int8(artifact, signature, parsed.columns, labels=y_true)
        diff = result.max_probability_diff
        if not diff <= tolerance:
            raise ParityFailedError(
                f"the INT8 model's probabilities differ from {parent.ref}'s by up to {diff:.3g} "
                f"(tolerance {tolerance:g}) on {result.rows} rows; nothing was stored",
                errors=[FieldError("parity", f"max abs difference {diff:.6g} > {tolerance:g}")],
            )
        loaded = OnnxModel(result.data, signature)
        report = QuantizationReport(
            method=QUANTIZATION_METHOD,
            onnxruntime=onnxruntime.__version__,
            parent=parent.ref,
            parent_digest=parent.artifact_digest,
            dataset_name=dataset_name,
            dataset_digest=digest_of(parsed.canonical_csv).removeprefix(DIGEST_PREFIX),
            label_column=label_column,
            tolerance=tolerance,
            accuracy_change=_change(result.parent_accuracy, result.accuracy),
            auroc_change=_change(result.parent_auroc, result.auroc),
            **{k: v for k, v in result.to_dict().items() if k != "digest"},
        )
        parity = (
            ParityOut(
                max_abs_diff=diff,
                tolerance=tolerance,
                rows=result.rows,
                label_agreement=result.label_agreement,
                client_max_abs_diff=None,
            )
            if parent.parity is not None
            else None
        )
        data = VersionCreate(
            signature=signature,
            framework=parent.framework,
            description=description or f"INT8 quantization of {parent.ref}",
            training_data=parent.training_data,
            code=parent.code,
            hyperparameters=parent.hyperparameters,
            # training_metrics stay empty: they were measured on the parent's native model
            lineage={
                **parent.lineage,
                "parent": parent.ref,
                "derivation": "int8-dynamic-quantization",
                "quantization": report.model_dump(),
            },
            tags=parent.tags,
        )
        after = {
            "artifact_digest": loaded.info.digest,
            "parity": parity.model_dump() if parity else None,
            "quantization": report.model_dump(),
        }
        with self._db.transaction() as session:
            model = load_model(session, parent.model, for_update=True)
            version = self._add_version(
                session,
                ctx,
                model,
                result.data,
                loaded.info,
                data,
                parity=parity,
                parent_id=parent_id,
                action="model.quantize",
                after=after,
            )
            self._blobs.put(parsed.canonical_csv)  # the rows the numbers were measured on
        return QuantizedVersionOut(**version.model_dump(), quantization=report)

    # -- validation reports ---------------------------------------------------------------

    def validate(
        self,
        ctx: Context,
        ref: Ref,
        dataset: bytes,
        *,
        label_column: str,
        dataset_name: str,
        threshold: float = 0.5,
        n_bootstrap: int = 1000,
        seed: int = 0,
        source: str | None = None,
    ) -> ReportOut:
        """Run the version's ONNX artifact on a labeled CSV and store the validation report,
        judged under the model's promotion policy (``source``: the dataset version and path
        the CSV was read from, kept in the audit record)."""
        import numpy as np

        from medops.core.onnx_model import OnnxModel
        from medops.registry.report import compute_report

        actor = require_actor(ctx)
        with self._db.session() as session:
            model, row = resolve(session, ref)
            name, number, version_id = model.name, row.version, row.id
            signature = version_out(session, model, row).signature
        parsed, y_true = _binary_dataset(
            dataset, signature, label_column, refusal="validation reports cover binary classifiers"
        )
        loaded = OnnxModel(self._blobs.get(DIGEST_PREFIX + row.artifact_digest), signature)
        scores = loaded.positive_scores(parsed.columns)
        groups = {
            f.name: [f.band_of(float(v)) if f.bands else str(v) for v in parsed.columns[f.name]]
            for f in signature.demographics
        }
        report = compute_report(
            y_true=y_true,
            scores=np.asarray(scores, dtype=np.float64),
            groups=groups,
            threshold=threshold,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        report["explanations"] = global_explanations(
            self._blobs.get(DIGEST_PREFIX + row.artifact_digest), signature, parsed.columns
        )
        dataset_digest = digest_of(parsed.canonical_csv).removeprefix(DIGEST_PREFIX)
        report["dataset"] = {
            "name": dataset_name,
            "digest": dataset_digest,
            "rows": parsed.rows,
            "label_column": label_column,
            "ignored_columns": parsed.ignored_columns,
        }
        report["model"] = {"name": name, "version": number, "artifact_digest": row.artifact_digest}
        report_hash = sha256_json(report)
        typed = ReportDocument.load(report)
        now = self._clock.now()
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            policy = policy_of(model)
            failures = judge(typed, policy)
            previous = latest_report(session, version_id)
            record = ValidationReport(
                id=_new_id("vr"),
                version_id=version_id,
                number=previous.number + 1 if previous else 1,
                dataset_name=dataset_name,
                dataset_digest=dataset_digest,
                dataset_rows=parsed.rows,
                label_column=label_column,
                report=canonical_json(report),
                report_hash=report_hash,
                policy=canonical_json(policy.model_dump(mode="json")),
                passed=not failures,
                failures=json.dumps(failures),
                auroc=typed.value("auroc"),
                created_at=now,
                created_by=actor.username,
            )
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.validate",
                    resource_type="model_version",
                    resource_id=f"{name}/{number}",
                    details={
                        "after": {
                            "report": record.id,
                            "report_hash": report_hash,
                            "dataset_digest": dataset_digest,
                            "rows": parsed.rows,
                            "passed": not failures,
                            "failures": failures,
                        }
                    }
                    | ({"source": source} if source else {}),
                ),
            )
            session.add(record)
            session.flush()
            self._blobs.put(parsed.canonical_csv)
            summary = report_summary(model, row, record)
        return ReportOut(**summary.model_dump(), report=report)

    def validate_pinned(self, ctx: Context, ref: Ref, request: PinnedValidation) -> ReportOut:
        """Validation re-run from a CSV file of a dataset version (checked to exist and not
        to be deleted), read on the server: the report is the one an upload of the same file
        gives (named by the file's name, its digest that of the same rows); the dataset
        version it came from is kept in the audit record."""
        require_actor(ctx)
        if self.data_reader is None:
            raise ServiceUnavailableError(
                "this server cannot read dataset versions: validate with --data FILE.csv"
            )
        with self._db.session() as session:
            pinned = pins.pin(session, "validation", request.dataset, field="dataset")
            resolve(session, ref)  # an unknown version fails before the data is read
        data = self.data_reader(
            ctx, pinned.dataset, request.path, f"validation of {ref} (medops models validate)"
        )
        return self.validate(
            ctx,
            ref,
            data,
            label_column=request.label,
            dataset_name=PurePosixPath(request.path).name,
            threshold=request.threshold,
            n_bootstrap=request.bootstrap,
            seed=request.seed,
            source=f"{pinned.dataset}:{request.path}",
        )

    def report(self, ref: Ref, report_id: str | None = None) -> ReportOut:
        """The latest validation report of a version (or the one with ``report_id``)."""
        with self._db.session() as session:
            model, row = resolve(session, ref)
            if report_id is None:
                record = latest_report(session, row.id)
            else:
                record = session.get(ValidationReport, report_id)
                if record is not None and record.version_id != row.id:
                    record = None
            if record is None:
                raise NotFoundError(
                    f"{model.name}/{row.version} has no validation report; "
                    "run 'medops models validate'"
                )
            summary = report_summary(model, row, record)
            return ReportOut(**summary.model_dump(), report=json.loads(record.report))

    def report_html(self, ref: Ref, report_id: str | None = None) -> str:
        from medops.registry.report_html import render_report_html

        out = self.report(ref, report_id)
        return render_report_html(
            out.report, title=f"Validation report: {out.model}/{out.version}", meta=report_meta(out)
        )

    # -- model cards ----------------------------------------------------------------------

    def set_card(self, ctx: Context, ref: Ref, content: CardContent, *, merge: bool = True) -> int:
        """Write the team's card fields (merged into the current ones unless ``merge`` is
        False); returns the new revision. Signatures bound to the old card become invalid."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            model, row = resolve(session, ref)
            load_model(session, model.name, for_update=True)
            current, card_row = card_content(session, row.id)
            before = current.model_dump(exclude_none=True)
            update = content.model_dump(exclude_unset=True) if merge else content.model_dump()
            after_content = CardContent.model_validate({**current.model_dump(), **update})
            after = after_content.model_dump(exclude_none=True)
            if card_row is not None and after == before:
                return card_row.revision
            changed = {
                k: {"before": before.get(k), "after": after.get(k)}
                for k in sorted(set(before) | set(after))
                if before.get(k) != after.get(k)
            }
            revision = (card_row.revision if card_row else 0) + 1
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.card.update",
                    resource_type="model_version",
                    resource_id=f"{model.name}/{row.version}",
                    details={"revision": revision, "changes": changed},
                ),
            )
            text = canonical_json(after_content.model_dump(mode="json"))
            digest = sha256_json(after_content.model_dump(mode="json"))
            if card_row is None:
                session.add(
                    ModelCard(
                        version_id=row.id,
                        content=text,
                        content_hash=digest,
                        revision=revision,
                        updated_at=now,
                        updated_by=actor.username,
                    )
                )
            else:
                card_row.content = text
                card_row.content_hash = digest
                card_row.revision = revision
                card_row.updated_at = now
                card_row.updated_by = actor.username
            return revision

    def card(self, ref: Ref, approvals: list[ApprovalOut]) -> dict[str, Any]:
        """The whole card document: auto fields, team fields, signatures, completeness."""
        with self._db.session() as session:
            model, row = resolve(session, ref)
            version = version_out(session, model, row)
            content, card_row = card_content(session, row.id)
            record = latest_report(session, row.id)
            summary: ReportSummary | None = report_summary(model, row, record) if record else None
        return cards.build_card(
            version,
            content,
            report=summary,
            approvals=approvals,
            revision=card_row.revision if card_row else None,
            content_hash=card_row.content_hash if card_row else None,
        )


def report_meta(out: ReportOut) -> dict[str, str]:
    """The facts shown above a validation report: version, digests, data, who, verdict."""
    return {
        "model": f"{out.model} version {out.version}",
        "artifact digest": out.report.model.artifact_digest if out.report.model else "-",
        "dataset": f"{out.dataset_name} ({out.dataset_rows} rows, sha256 {out.dataset_digest})",
        "report": f"{out.id}, sha256 {out.report_hash}",
        "computed": f"{out.created_at.isoformat()} by {out.created_by}",
        "policy": "passed" if out.passed else "failed: " + "; ".join(out.failures),
    }
