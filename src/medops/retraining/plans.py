"""Change-control plans: proposed, signed by a clinician and an ML engineer, then active.

A plan version is frozen when proposed (canonical JSON, SHA-256). It becomes the model's
active plan once two different people, one a clinician and one an ML engineer, have signed it
electronically (re-authenticated; the manifest binding signer, meaning, time, model, plan
number and plan hash is countersigned with the server's Ed25519 key, as a version's
approvals are). The signature that completes a plan supersedes the plan active before it.

A version a within-plan ``CandidateReport`` covers (under the plan active now, whose
signatures still verify) passes the approvals gate of the production alias with the plan's
signatures: the lifecycle asks ``PlanService.cover`` (registered in ``services.py``). No new
signature is made; the promotion's evidence names the plan and its signatures.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit import signing
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.auth.login import LoginService
from medops.auth.schemas import Signature
from medops.auth.tables import User
from medops.clock import Clock
from medops.context import Context
from medops.core.permissions import Role
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError, NotFoundError
from medops.registry import approvals as sig
from medops.registry.refs import Ref
from medops.registry.schemas import PRODUCTION
from medops.registry.store import load_model, load_version
from medops.registry.tables import ModelAlias, ModelVersion, RegisteredModel
from medops.retraining.plan_schemas import (
    PlanOut,
    PlanSignatureOut,
    PlanSignRequest,
    PlanSpec,
    PlanStatus,
)
from medops.retraining.plan_tables import CandidateEvaluation, ChangeControlPlan, PlanSignature

MANIFEST_SCHEMA = "medops.plan-signature/1"
MEANING = "approval"
# The two roles a plan needs, one person each (a clinician and an ML engineer).
REQUIRED_ROLES = (Role.CLINICIAN, Role.ML_ENGINEER)


def manifest(row: PlanSignature, plan: ChangeControlPlan, model: str) -> dict[str, object]:
    """What a plan signature says was signed."""
    return {
        "schema": MANIFEST_SCHEMA,
        "model": model,
        "plan": plan.number,
        "plan_hash": plan.plan_hash,
        **sig.signed_by(row),
    }


def still_needed(valid: list[PlanSignatureOut]) -> list[str]:
    """What a plan's valid signatures still lack (pure): one clinician and one ML engineer,
    two different people."""
    needs = []
    by_role: dict[str, set[str]] = {}
    for s in valid:
        by_role.setdefault(s.role, set()).add(s.username)
    for role in REQUIRED_ROLES:
        if not by_role.get(role.value):
            needs.append(f"a signature by a {role.value}")
    people = {s.username for s in valid if s.role in {r.value for r in REQUIRED_ROLES}}
    if not needs and len(people) < len(REQUIRED_ROLES):
        needs.append("signatures by two different people")
    return needs


def production_version(session: Session, model: RegisteredModel) -> ModelVersion | None:
    """The version ``production`` points at now (the champion), or None."""
    alias = session.get(ModelAlias, (model.id, PRODUCTION))
    return None if alias is None else session.get(ModelVersion, alias.version_id)


class PlanService:
    """Propose, sign and read change-control plans."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        logins: LoginService,
        key: Callable[[], Ed25519PrivateKey],
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._logins = logins
        self._key = key

    # -- reading --------------------------------------------------------------------------

    def all(self, name: str) -> list[PlanOut]:
        """Every plan version of a model, newest first."""
        with self._db.session() as session:
            model = load_model(session, name)
            rows = session.scalars(
                select(ChangeControlPlan)
                .where(ChangeControlPlan.model_id == model.id)
                .order_by(ChangeControlPlan.number.desc())
            ).all()
            return [self._out(session, model, row) for row in rows]

    def get(self, name: str, number: int | None = None) -> PlanOut:
        """One plan version; without a number the active plan."""
        with self._db.session() as session:
            model = load_model(session, name)
            if number is None:
                row = active_plan(session, model)
                if row is None:
                    raise NotFoundError(f"{name} has no active change-control plan")
            else:
                row = self._load(session, model, number)
            return self._out(session, model, row)

    def active(self, name: str) -> PlanOut | None:
        with self._db.session() as session:
            model = load_model(session, name)
            row = active_plan(session, model)
            return None if row is None else self._out(session, model, row)

    # -- changes --------------------------------------------------------------------------

    def create(self, ctx: Context, name: str, spec: PlanSpec) -> PlanOut:
        """Propose a new plan version (pending until signed). Without listed features the
        plan fixes the champion's; a listed feature the champion lacks is refused."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            champion = production_version(session, model)
            spec = _fix_features(name, spec, champion)
            document = spec.model_dump(mode="json")
            number = (
                session.scalar(
                    select(func.max(ChangeControlPlan.number)).where(
                        ChangeControlPlan.model_id == model.id
                    )
                )
                or 0
            ) + 1
            row = ChangeControlPlan(
                id="plan_" + secrets.token_hex(8),
                model_id=model.id,
                number=number,
                status="pending",
                spec=sig.canonical_json(document),
                plan_hash=sig.sha256_json(document),
                champion=champion.version if champion else None,
                created_at=self._clock.now(),
                created_by=actor.username,
                activated_at=None,
            )
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="retraining.plan.create",
                    resource_type="model",
                    resource_id=name,
                    details={"plan": number, "plan_hash": row.plan_hash, "after": document},
                ),
            )
            session.add(row)
            session.flush()
            return self._out(session, model, row)

    def sign(self, ctx: Context, name: str, number: int, request: PlanSignRequest) -> PlanOut:
        """Sign a pending plan (re-authenticated); the signature that completes it makes it
        the active plan in the same transaction."""
        actor = require_actor(ctx)
        if actor.role not in {r.value for r in REQUIRED_ROLES}:
            reason = "a plan is signed by a clinician and an ML engineer"
            raise ConflictError(
                f"{reason}; your role is {actor.role}", errors=[FieldError("role", reason)]
            )
        with self._db.session() as session:
            model = load_model(session, name)
            row = self._load(session, model, number)
            self._check_open(session, model, row, actor.user_id)
            user = session.get(User, uuid.UUID(actor.user_id))
            printed_name = (user.full_name or "").strip() if user else ""
        sig.require_printed_name(printed_name)
        record = self._logins.reauthenticate(
            ctx, Signature(password=request.password, otp=request.otp, meaning=MEANING)
        )
        key = self._key()
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = self._load(session, model, number)
            self._check_open(session, model, row, actor.user_id)
            signature = PlanSignature(
                id="plsig_" + secrets.token_hex(8),
                plan_id=row.id,
                **sig.signer_columns(record, printed_name, request.comment, key),
            )
            sig.seal_manifest(signature, manifest(signature, row, model.name), key)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="retraining.plan.sign",
                    resource_type="model",
                    resource_id=name,
                    details={
                        "plan": row.number,
                        "plan_hash": row.plan_hash,
                        "signature": signature.id,
                        "printed_name": printed_name,
                        "meaning": MEANING,
                        "manifest_hash": signature.manifest_hash,
                    },
                ),
            )
            session.add(signature)
            session.flush()
            valid = [s for s in self._signatures(session, model, row) if s.valid]
            if not still_needed(valid):
                self._activate(session, ctx, model, row, valid)
            return self._out(session, model, row)

    def _activate(
        self,
        session: Session,
        ctx: Context,
        model: RegisteredModel,
        row: ChangeControlPlan,
        valid: list[PlanSignatureOut],
    ) -> None:
        previous = active_plan(session, model)
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action="retraining.plan.activate",
                resource_type="model",
                resource_id=model.name,
                details={
                    "plan": row.number,
                    "plan_hash": row.plan_hash,
                    "superseded": previous.number if previous else None,
                    "signatures": [
                        {"signature": s.id, "username": s.username, "role": s.role} for s in valid
                    ],
                },
            ),
        )
        if previous is not None:
            previous.status = "superseded"
        row.status = "active"
        row.activated_at = self._clock.now()

    def _check_open(
        self, session: Session, model: RegisteredModel, row: ChangeControlPlan, user_id: str
    ) -> None:
        """A plan is signed while pending, newer than the active one, once per person."""
        if row.status != "pending":
            raise ConflictError(f"plan {row.number} of {model.name} is {row.status}, not pending")
        current = active_plan(session, model)
        if current is not None and current.number > row.number:
            raise ConflictError(
                f"plan {row.number} of {model.name} is older than the active plan "
                f"{current.number}; propose it again"
            )
        valid = {s.id for s in self._signatures(session, model, row) if s.valid}
        mine = session.scalars(
            select(PlanSignature.id).where(
                PlanSignature.plan_id == row.id, PlanSignature.user_id == user_id
            )
        ).all()
        if valid & set(mine):
            raise ConflictError(f"you have signed plan {row.number} of {model.name} already")

    # -- the plan's cover of a candidate ------------------------------------------------------

    def cover(
        self, session: Session, model: RegisteredModel, version: ModelVersion
    ) -> tuple[list[tuple[str, str]], dict[str, object]] | None:
        """The signers (role, username) of the active plan and the evidence, when the newest
        candidate report of ``version`` says it is within that plan and the plan's signatures
        all still verify; None otherwise (the lifecycle's approval source)."""
        plan = active_plan(session, model)
        if plan is None:
            return None
        report = session.scalars(
            select(CandidateEvaluation)
            .where(CandidateEvaluation.version_id == version.id)
            .order_by(CandidateEvaluation.created_at.desc(), CandidateEvaluation.id.desc())
            .limit(1)
        ).first()
        if report is None or not report.within_plan or report.plan_id != plan.id:
            return None
        signatures = self._signatures(session, model, plan)
        valid = [s for s in signatures if s.valid]
        if len(valid) != len(signatures) or still_needed(valid):
            return None
        evidence: dict[str, object] = {
            "plan": plan.number,
            "plan_hash": plan.plan_hash,
            "candidate_report": report.id,
            "candidate_report_hash": report.report_hash,
            "signatures": [
                {"signature": s.id, "username": s.username, "role": s.role} for s in valid
            ],
        }
        return [(s.role, s.username) for s in valid], evidence

    # -- rows -----------------------------------------------------------------------------------

    @staticmethod
    def _load(session: Session, model: RegisteredModel, number: int) -> ChangeControlPlan:
        row = session.scalars(
            select(ChangeControlPlan).where(
                ChangeControlPlan.model_id == model.id, ChangeControlPlan.number == number
            )
        ).first()
        if row is None:
            raise NotFoundError(f"{model.name} has no plan {number}")
        return row

    def _signatures(
        self, session: Session, model: RegisteredModel, row: ChangeControlPlan
    ) -> list[PlanSignatureOut]:
        public = self._key().public_key()
        key_id = signing.key_id(public)
        rows = session.scalars(
            select(PlanSignature)
            .where(PlanSignature.plan_id == row.id)
            .order_by(PlanSignature.signed_at, PlanSignature.id)
        ).all()
        out = []
        for s in rows:
            found = sig.seal_problems(
                sig.sha256_json(manifest(s, row, model.name)),
                s.manifest_hash,
                s.key_id,
                s.server_signature,
                public,
                key_id,
            )
            if sig.sha256_json(PlanSpec.model_validate_json(row.spec).model_dump(mode="json")) != (
                row.plan_hash
            ):
                found.append("the plan was altered after it was proposed (hash differs)")
            out.append(
                PlanSignatureOut(
                    id=s.id,
                    username=s.username,
                    printed_name=s.printed_name,
                    role=s.role,
                    meaning=s.meaning,
                    comment=s.comment,
                    signed_at=s.signed_at,
                    method=s.method,
                    manifest_hash=s.manifest_hash,
                    key_id=s.key_id,
                    valid=not found,
                    invalid_reasons=found,
                )
            )
        return out

    def _out(self, session: Session, model: RegisteredModel, row: ChangeControlPlan) -> PlanOut:
        signatures = self._signatures(session, model, row)
        needs = still_needed([s for s in signatures if s.valid]) if row.status == "pending" else []
        return PlanOut(
            model=model.name,
            number=row.number,
            status=cast(PlanStatus, row.status),
            spec=PlanSpec.model_validate_json(row.spec),
            plan_hash=row.plan_hash,
            champion=row.champion,
            created_at=row.created_at,
            created_by=row.created_by,
            activated_at=row.activated_at,
            signatures=signatures,
            needs=needs,
        )


def active_plan(session: Session, model: RegisteredModel) -> ChangeControlPlan | None:
    """The model's active plan row, or None."""
    return session.scalars(
        select(ChangeControlPlan).where(
            ChangeControlPlan.model_id == model.id, ChangeControlPlan.status == "active"
        )
    ).first()


def load_plan_version(session: Session, model: RegisteredModel, version: int) -> ModelVersion:
    """A version of the model (NotFoundError naming it)."""
    return load_version(session, model, Ref(model.name, version=version))


def _fix_features(name: str, spec: PlanSpec, champion: ModelVersion | None) -> PlanSpec:
    """The plan with its fixed features filled from the champion's signature; a plan
    without a champion must list them."""
    if champion is None:
        if not spec.fixed.features:
            reason = f"{name} has no production version to take the features from; list them"
            raise InvalidInputError(reason, errors=[FieldError("fixed.features", reason)])
        return spec
    names = ModelSignature.model_validate_json(champion.signature).feature_names
    if not spec.fixed.features:
        fixed = spec.fixed.model_copy(update={"features": list(names)})
        return spec.model_copy(update={"fixed": fixed})
    if sorted(spec.fixed.features) != sorted(names):
        reason = (
            f"the plan fixes features {sorted(spec.fixed.features)} but the production "
            f"version {champion.version} has {sorted(names)}"
        )
        raise InvalidInputError(reason, errors=[FieldError("fixed.features", reason)])
    return spec
