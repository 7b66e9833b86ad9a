"""The governed lifecycle: electronic signatures, promotion gates, alias moves, rollback and
history.

Moving a *protected* alias (by policy; default ``production``) needs a validation report that
passes the model's policy, a complete model card, parity evidence, an intact artifact, and the
required valid approvals by people other than the registrant. Every attempt is audited, the
refused ones with the list of unmet conditions. Alias moves happen in one transaction under the
model's row lock, so readers see the old target or the new one, never a mixture.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.audit import signing
from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.auth.login import LoginService
from medops.auth.schemas import Signature
from medops.auth.tables import User
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import (
    ConflictError,
    FieldError,
    IntegrityError,
    NotFoundError,
    PromotionBlockedError,
    SeparationOfDutiesError,
)
from medops.registry import approvals as sig
from medops.registry import card as cards
from medops.registry.approvals import sha256_json
from medops.registry.followers import Followers, no_followers
from medops.registry.policy import judge
from medops.registry.refs import Ref
from medops.registry.schemas import (
    AliasEventOut,
    ApprovalOut,
    ApprovalRequest,
    GateResult,
    PromoteRequest,
    RollbackRequest,
)
from medops.registry.store import (
    card_content,
    latest_report,
    load_model,
    load_version,
    policy_of,
    report_summary,
    resolve,
    version_out,
)
from medops.registry.tables import AliasEvent, Approval, ModelAlias, ModelVersion, RegisteredModel
from medops.registry.validation_report import ReportDocument
from medops.storage.base import DIGEST_PREFIX, BlobStore

# (session, model, version) -> (signers as (role, username), evidence) or None.
ApprovalSource = Callable[
    [Session, RegisteredModel, ModelVersion],
    tuple[list[tuple[str, str]], dict[str, object]] | None,
]


class LifecycleService:
    """Signatures, gates, promotion, rollback and the alias history."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        blobs: BlobStore,
        logins: LoginService,
        key: Callable[[], Ed25519PrivateKey],
        followers: Followers = no_followers,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._blobs = blobs
        self._logins = logins
        self._key = key
        self._followers = followers
        self.listeners: list[Callable[[], None]] = []
        # Called inside a rollback's transaction (session, ctx, model id, alias, reason):
        # serving ends the canaries and shadows of the deployments that follow the alias.
        self.rollback_hooks: list[Callable[[Session, Context, str, str, str], None]] = []
        # Asked when a version's own approvals fall short: a signed change-control plan that
        # covers the version (retraining.plans) answers its signers (role, username) and the
        # evidence to record; its signatures stand in for new ones.
        self.approval_sources: list[ApprovalSource] = []

    # -- signatures -----------------------------------------------------------------------

    def _changed(self) -> None:
        """Tell listeners (the serving runtime) that an alias moved, after the commit."""
        for listener in self.listeners:
            listener()

    def approve(self, ctx: Context, ref: Ref, request: ApprovalRequest) -> ApprovalOut:
        """Sign a version: re-authenticate, bind the signature to the artifact digest, the
        latest report and the current card, and countersign the manifest."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            model, row = resolve(session, ref)
            user = session.get(User, uuid.UUID(actor.user_id))
            printed_name = (user.full_name or "").strip() if user else ""
            report = latest_report(session, row.id)
            _, card_row = card_content(session, row.id)
            if row.created_by == actor.username:
                raise SeparationOfDutiesError(
                    f"{actor.username} registered {model.name}/{row.version} and cannot sign it"
                )
            if report is None:
                raise ConflictError(
                    f"{model.name}/{row.version} has no validation report to sign; "
                    "validate it first"
                )
            if card_row is None:
                raise ConflictError(
                    f"{model.name}/{row.version} has no model card to sign; write it first"
                )
            current = self._current(session, row)
            self._refuse_second_signature(session, row, actor.user_id, request.meaning, current)
            number, report_id = row.version, report.id
            report_hash, card_hash = report.report_hash, card_row.content_hash
            policy_hash = current.policy_hash
        sig.require_printed_name(printed_name)
        record = self._logins.reauthenticate(
            ctx, Signature(password=request.password, otp=request.otp, meaning=request.meaning)
        )
        key = self._key()
        key_id = signing.key_id(key.public_key())
        with self._db.transaction() as session:
            model = load_model(session, ref.name, for_update=True)
            row = load_version(session, model, Ref(model.name, version=number))
            current = self._current(session, row)
            if (current.report_hash, current.card_hash, current.policy_hash) != (
                report_hash,
                card_hash,
                policy_hash,
            ):
                raise ConflictError(
                    "the report, card or policy changed while signing; review and sign again"
                )
            self._refuse_second_signature(session, row, actor.user_id, request.meaning, current)
            approval = Approval(
                id="sig_" + secrets.token_hex(8),
                version_id=row.id,
                user_id=actor.user_id,
                username=actor.username,
                printed_name=printed_name,
                role=actor.role,
                meaning=request.meaning,
                comment=request.comment,
                method=record.method,
                signed_at=record.signed_at,
                artifact_digest=row.artifact_digest,
                report_id=report_id,
                report_hash=report_hash,
                card_hash=card_hash,
                policy_hash=policy_hash,
            )
            sig.seal(approval, key, key_id, model=model.name, version=row.version)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.approve",
                    resource_type="model_version",
                    resource_id=f"{model.name}/{row.version}",
                    details={
                        "after": {
                            "signature": approval.id,
                            "printed_name": printed_name,
                            "meaning": request.meaning,
                            "manifest_hash": approval.manifest_hash,
                            "artifact_digest": approval.artifact_digest,
                            "report_hash": approval.report_hash,
                            "card_hash": approval.card_hash,
                        }
                    },
                ),
            )
            session.add(approval)
            return self._out(approval, current, model.name, row.version)

    def _refuse_second_signature(
        self, session: Session, row: ModelVersion, user_id: str, meaning: str, current: sig.Current
    ) -> None:
        """One valid signature of each meaning per person and version (checked again under
        the model's lock, so two concurrent requests cannot both pass)."""
        model = session.get(RegisteredModel, row.model_id)
        assert model is not None
        mine = session.scalars(
            select(Approval).where(
                Approval.version_id == row.id,
                Approval.user_id == user_id,
                Approval.meaning == meaning,
            )
        ).all()
        if any(not self._problems(r, current, model.name, row.version) for r in mine):
            raise ConflictError(
                f"you already hold a valid {meaning!r} signature on {model.name}/{row.version}"
            )

    def approvals(self, ref: Ref) -> list[ApprovalOut]:
        """Every signature on a version, each with whether it still verifies."""
        with self._db.session() as session:
            model, row = resolve(session, ref)
            return self._approvals(session, model.name, row)

    def _approvals(self, session: Session, name: str, row: ModelVersion) -> list[ApprovalOut]:
        current = self._current(session, row)
        rows = session.scalars(
            select(Approval)
            .where(Approval.version_id == row.id)
            .order_by(Approval.signed_at, Approval.id)
        )
        return [self._out(r, current, name, row.version) for r in rows]

    def _current(self, session: Session, row: ModelVersion) -> sig.Current:
        model = session.get(RegisteredModel, row.model_id)
        assert model is not None
        report = latest_report(session, row.id)
        _, card_row = card_content(session, row.id)
        report_hash = None
        if report is not None:
            # A report edited in the database no longer hashes to its recorded hash.
            stored = sha256_json(json.loads(report.report))
            report_hash = report.report_hash if stored == report.report_hash else stored
        card_hash = None
        if card_row is not None:
            stored = sha256_json(json.loads(card_row.content))
            card_hash = card_row.content_hash if stored == card_row.content_hash else stored
        return sig.Current(
            artifact_digest=row.artifact_digest,
            report_id=report.id if report else None,
            report_hash=report_hash,
            card_hash=card_hash,
            card_revision=card_row.revision if card_row else None,
            policy_hash=sha256_json(json.loads(model.policy)),
        )

    def _problems(self, row: Approval, current: sig.Current, name: str, version: int) -> list[str]:
        public = self._key().public_key()
        return sig.problems(
            row, current, public, signing.key_id(public), model=name, version=version
        )

    def _out(self, row: Approval, current: sig.Current, name: str, version: int) -> ApprovalOut:
        found = self._problems(row, current, name, version)
        return ApprovalOut(
            id=row.id,
            model=name,
            version=version,
            username=row.username,
            printed_name=row.printed_name,
            role=row.role,
            meaning=row.meaning,
            comment=row.comment,
            signed_at=row.signed_at,
            method=row.method,
            artifact_digest=row.artifact_digest,
            report_id=row.report_id,
            report_hash=row.report_hash,
            card_hash=row.card_hash,
            manifest_hash=row.manifest_hash,
            key_id=row.key_id,
            valid=not found,
            invalid_reasons=found,
        )

    # -- gates and alias moves ------------------------------------------------------------

    def gates(self, ref: Ref, alias: str) -> GateResult:
        """What a move of ``alias`` to the version ``ref`` names would need, checked now."""
        with self._db.session() as session:
            model, row = resolve(session, ref)
            return self._gates(session, model, row, alias)

    def _gates(
        self, session: Session, model: RegisteredModel, row: ModelVersion, alias: str
    ) -> GateResult:
        policy = policy_of(model)
        # An alias a deployment follows serves patients: it is gated whatever the policy says
        # (a policy edited around the API, or one signed since, cannot open it).
        protected = alias in policy.protected_aliases or bool(
            self._followers(session, model.id, alias)
        )
        unmet: list[str] = []
        checks: dict[str, bool] = {}
        if protected:
            version = version_out(session, model, row)
            report = latest_report(session, row.id)
            if report is None:
                unmet.append(f"validation report: {model.name}/{row.version} has none")
                checks["validation_report"] = False
            else:
                failures = judge(ReportDocument.load(json.loads(report.report)), policy)
                checks["validation_report"] = not failures
                unmet.extend(f"validation report {report.id}: {f}" for f in failures)
            content, _card_row = card_content(session, row.id)
            summary = report_summary(model, row, report) if report else None
            card = cards.build_card(
                version, content, report=summary, approvals=[], revision=None, content_hash=None
            )
            missing = card["completeness"]["missing"]
            checks["model_card"] = not missing or not policy.require_complete_card
            if missing and policy.require_complete_card:
                unmet.append("model card incomplete: missing " + ", ".join(missing))
            checks["parity"] = version.parity is not None or not policy.require_parity
            if not checks["parity"]:
                unmet.append("parity: the version has no parity check against its native model")
            checks["artifact"] = self.artifact_intact(row.artifact_digest)
            if not checks["artifact"]:
                unmet.append("artifact: the stored ONNX file is missing or fails its SHA-256 check")
            valid = [
                a
                for a in self._approvals(session, model.name, row)
                if a.valid and a.meaning == "approval" and a.username != row.created_by
            ]
            # Distinct people per role: one person's two signatures count once.
            signers = {(a.role, a.username) for a in valid}
            have = Counter(role for role, _user in signers)
            if any(have[r.value] < n for r, n in policy.required_approvals.items()):
                for source in self.approval_sources:
                    found = source(session, model, row)
                    if found is not None:
                        signers |= {(r, u) for r, u in found[0] if u != row.created_by}
                        checks["approvals.plan"] = True
                have = Counter(role for role, _user in signers)
            for role, need in sorted(policy.required_approvals.items()):
                ok = have[role.value] >= need
                checks[f"approvals.{role.value}"] = ok
                if not ok:
                    unmet.append(
                        f"approvals: {have[role.value]} of {need} valid {role.value} approval(s)"
                    )
        return GateResult(
            model=model.name,
            version=row.version,
            alias=alias,
            protected=protected,
            passed=not unmet,
            unmet=unmet,
            checks=checks,
        )

    def artifact_intact(self, digest: str) -> bool:
        """The artifact is stored and matches its digest (a missing one is not intact)."""
        try:
            self._blobs.get(DIGEST_PREFIX + digest)
        except (IntegrityError, NotFoundError, FileNotFoundError, OSError):
            return False
        return True

    def promote(
        self, ctx: Context, name: str, alias: str, request: PromoteRequest
    ) -> AliasEventOut:
        """Point ``alias`` at ``request.version`` if every gate passes; audited either way."""
        actor = require_actor(ctx)
        refused: GateResult | None = None
        moved: AliasEventOut | None = None
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = load_version(session, model, Ref(name, version=request.version))
            current = session.get(ModelAlias, (model.id, alias))
            if current is not None and current.version == row.version:
                raise ConflictError(f"{name}@{alias} already points at version {row.version}")
            result = self._gates(session, model, row, alias)
            if result.passed:
                moved = self._move(
                    session,
                    ctx,
                    model,
                    alias,
                    row,
                    kind="promote",
                    reason=request.reason,
                    evidence={
                        "gates": result.checks,
                        "approvals": self._evidence(session, model.name, row),
                        **self._plan_evidence(session, model, row, result),
                    },
                    actor=actor.username,
                )
            else:
                refused = result
        return self._settle(ctx, moved, refused, "model.promote", request.reason, "move to")

    def _plan_evidence(
        self, session: Session, model: RegisteredModel, row: ModelVersion, result: GateResult
    ) -> dict[str, object]:
        """The plan whose signatures stood in for approvals (its number, hash, signatures and
        the candidate report), when one did."""
        if not result.checks.get("approvals.plan"):
            return {}
        for source in self.approval_sources:
            found = source(session, model, row)
            if found is not None:
                return {"plan": found[1]}
        return {}

    def _evidence(self, session: Session, name: str, row: ModelVersion) -> list[dict[str, str]]:
        return [
            {"signature": a.id, "username": a.username, "role": a.role, "meaning": a.meaning}
            for a in self._approvals(session, name, row)
            if a.valid
        ]

    def _move(
        self,
        session: Session,
        ctx: Context,
        model: RegisteredModel,
        alias: str,
        row: ModelVersion,
        *,
        kind: str,
        reason: str,
        evidence: dict[str, object],
        actor: str,
    ) -> AliasEventOut:
        now = self._clock.now()
        current = session.get(ModelAlias, (model.id, alias))
        before = current.version if current else None
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=f"model.{kind}",
                resource_type="model_alias",
                resource_id=f"{model.name}@{alias}",
                reason=reason,
                details={
                    "before": {"version": before},
                    "after": {"version": row.version},
                    "evidence": evidence,
                },
            ),
        )
        if current is None:
            session.add(
                ModelAlias(
                    model_id=model.id,
                    alias=alias,
                    version_id=row.id,
                    version=row.version,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        else:
            current.version_id = row.id
            current.version = row.version
            current.updated_at = now
            current.updated_by = actor
        event = AliasEvent(
            model_id=model.id,
            alias=alias,
            kind=kind,
            from_version=before,
            to_version=row.version,
            occurred_at=now,
            actor=actor,
            reason=reason,
            evidence=json.dumps(evidence, sort_keys=True),
        )
        session.add(event)
        return _event_out(model.name, event)

    def rollback(
        self, ctx: Context, name: str, alias: str, request: RollbackRequest
    ) -> AliasEventOut:
        """Move ``alias`` back to the version it pointed at before the current one. For a
        protected alias the target must pass every gate now (its signatures still valid, its
        report passing the current policy, its artifact intact); refusals are audited."""
        actor = require_actor(ctx)
        refused: GateResult | None = None
        moved: AliasEventOut | None = None
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            stack = _replay(self._events(session, model.id, alias))
            if len(stack) < 2:
                raise ConflictError(f"{name}@{alias} has no earlier version to roll back to")
            target = load_version(session, model, Ref(name, version=stack[-2]))
            result = self._gates(session, model, target, alias)
            if result.passed:
                moved = self._move(
                    session,
                    ctx,
                    model,
                    alias,
                    target,
                    kind="rollback",
                    reason=request.reason,
                    evidence={"rolled_back": stack[-1], "gates": result.checks},
                    actor=actor.username,
                )
                for hook in self.rollback_hooks:
                    hook(session, ctx, model.id, alias, request.reason)
            else:
                refused = result
        return self._settle(ctx, moved, refused, "model.rollback", request.reason, "roll back to")

    def _settle(
        self,
        ctx: Context,
        moved: AliasEventOut | None,
        refused: GateResult | None,
        action: str,
        reason: str,
        verb: str,
    ) -> AliasEventOut:
        """After the transaction: tell listeners of a committed move, or audit the refusal."""
        if moved is not None:
            self._changed()
            return moved
        assert refused is not None
        raise self._refused(ctx, action, refused, reason, verb)

    def _refused(
        self, ctx: Context, action: str, result: GateResult, reason: str, verb: str
    ) -> PromotionBlockedError:
        """Audit a refused alias move (after its transaction) and build its error."""
        target = f"{result.model}@{result.alias}"
        self._audit.record_alone(
            ctx,
            AuditEntry(
                action=action,
                outcome=Outcome.DENIED,
                resource_type="model_alias",
                resource_id=target,
                reason=reason,
                details={"version": result.version, "unmet": result.unmet},
            ),
        )
        return PromotionBlockedError(
            f"{target} cannot {verb} version {result.version}: " + "; ".join(result.unmet),
            errors=[FieldError("gates", unmet) for unmet in result.unmet],
            audited=True,
        )

    @staticmethod
    def _events(session: Session, model_id: str, alias: str | None = None) -> list[AliasEvent]:
        query = select(AliasEvent).where(AliasEvent.model_id == model_id)
        if alias is not None:
            query = query.where(AliasEvent.alias == alias)
        return list(session.scalars(query.order_by(AliasEvent.id)))

    def history(self, name: str, alias: str | None = None) -> list[AliasEventOut]:
        """Every alias move of a model, oldest first."""
        with self._db.session() as session:
            model = load_model(session, name)
            return [_event_out(name, e) for e in self._events(session, model.id, alias)]

    def version_at(self, name: str, alias: str, at: datetime) -> int:
        """The version ``name@alias`` pointed at, at time ``at``."""
        with self._db.session() as session:
            model = load_model(session, name)
            events = [e for e in self._events(session, model.id, alias) if e.occurred_at <= at]
        if not events or events[-1].to_version is None:
            raise NotFoundError(f"{name}@{alias} pointed at no version at {at.isoformat()}")
        return events[-1].to_version


def _replay(events: list[AliasEvent]) -> list[int]:
    """The stack of versions an alias has held: a promotion pushes, a rollback pops."""
    stack: list[int] = []
    for event in events:
        if event.kind == "rollback":
            if stack:
                stack.pop()
            if event.to_version is not None and (not stack or stack[-1] != event.to_version):
                stack.append(event.to_version)
        elif event.to_version is not None:
            stack.append(event.to_version)
    return stack


def _event_out(name: str, event: AliasEvent) -> AliasEventOut:
    return AliasEventOut(
        model=name,
        alias=event.alias,
        kind=event.kind,
        from_version=event.from_version,
        to_version=event.to_version,
        occurred_at=event.occurred_at,
        actor=event.actor,
        reason=event.reason,
        evidence=json.loads(event.evidence) if event.evidence else None,
    )
