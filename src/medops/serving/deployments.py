"""Deployments: named endpoints bound to a model reference, with canary and shadow rollout.

Every change is a ``deployment_events`` row and an audit record in one transaction, taken
under the deployment's row lock. A version that will answer patients (a pinned version, a
canary) must pass the promotion gates of the protected alias it stands in for; a shadow
version's results are never returned, so it needs only an intact artifact. Listeners (the
serving runtime of this process) are told after each committed change; other processes see it
at their next refresh.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.permissions import Permission
from medops.db.engine import Database
from medops.errors import (
    ConflictError,
    FieldError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PromotionBlockedError,
)
from medops.registry.lifecycle import LifecycleService
from medops.registry.refs import Ref, parse_ref
from medops.registry.schemas import PRODUCTION, RollbackRequest
from medops.registry.store import load_model, load_version, policy_of
from medops.registry.tables import AliasEvent, ModelAlias, ModelVersion, RegisteredModel
from medops.serving.schemas import (
    CanaryRequest,
    DeploymentCreate,
    DeploymentEventOut,
    DeploymentOut,
    DeploymentRollbackRequest,
    ExplainRequest,
    RolloutLimits,
    ShadowRequest,
)
from medops.serving.tables import Deployment, DeploymentEvent

_SYSTEM = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip=None, user_agent="medops-serving"))


def followers(session: Session, model_id: str, alias: str) -> list[str]:
    """The deployments that follow ``model@alias`` (the registry's ``Followers``)."""
    rows = session.scalars(
        select(Deployment.name)
        .where(Deployment.model_id == model_id, Deployment.alias == alias)
        .order_by(Deployment.name)
    )
    return list(rows)


def routing(row: Deployment) -> dict[str, Any]:
    """The routing-relevant state of a deployment, as events and audit records show it."""
    return {
        "target": target_of(row),
        "canary_version": row.canary_version,
        "canary_percent": row.canary_percent,
        "shadow_version": row.shadow_version,
        "cache_size": row.cache_size,
        "limits": limits_of(row).model_dump(),
        "explain": bool(row.explain),
    }


def target_of(row: Deployment) -> str:
    return f"{row.model_name}@{row.alias}" if row.alias else f"{row.model_name}/{row.version}"


def _version_row(
    session: Session, model: RegisteredModel, number: int | None
) -> ModelVersion | None:
    if number is None:
        return None
    return load_version(session, model, Ref(model.name, version=number))


def _target_row(session: Session, model: RegisteredModel, row: Deployment) -> ModelVersion | None:
    if row.alias is None:
        return _version_row(session, model, row.version)
    alias = session.get(ModelAlias, (model.id, row.alias))
    return _version_row(session, model, alias.version) if alias is not None else None


def arms_of(session: Session, row: Deployment) -> dict[str, ModelVersion | None]:
    """The version rows a deployment serves as of now: its target (``primary``, through its
    alias when it follows one), its canary and its shadow (None where there is none)."""
    model = session.get(RegisteredModel, row.model_id)
    assert model is not None
    return {
        "primary": _target_row(session, model, row),
        "canary": _version_row(session, model, row.canary_version),
        "shadow": _version_row(session, model, row.shadow_version),
    }


def limits_of(row: Deployment) -> RolloutLimits:
    return RolloutLimits(
        max_error_rate=row.max_error_rate, max_p99_ms=row.max_p99_ms, min_requests=row.min_requests
    )


class DeploymentService:
    """Create deployments and change their routing; every change audited."""

    def __init__(
        self, db: Database, clock: Clock, audit: AuditService, lifecycle: LifecycleService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._lifecycle = lifecycle
        self.listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    # -- reads ----------------------------------------------------------------------------

    def all(self) -> list[DeploymentOut]:
        with self._db.session() as session:
            rows = session.scalars(select(Deployment).order_by(Deployment.name))
            return [self._out(session, row) for row in rows]

    def get(self, name: str) -> DeploymentOut:
        with self._db.session() as session:
            return self._out(session, self._load(session, name))

    def history(self, name: str) -> list[DeploymentEventOut]:
        with self._db.session() as session:
            row = self._load(session, name)
            events = session.scalars(
                select(DeploymentEvent)
                .where(DeploymentEvent.deployment_id == row.id)
                .order_by(DeploymentEvent.id)
            )
            return [
                DeploymentEventOut(
                    id=e.id,
                    kind=e.kind,
                    before=json.loads(e.before) if e.before else None,
                    after=json.loads(e.after),
                    reason=e.reason,
                    occurred_at=e.occurred_at,
                    actor=e.actor,
                )
                for e in events
            ]

    def fingerprint(self) -> tuple[int, int, int]:
        """Changes anywhere that can move a deployment's routing: cheap to poll."""
        # Counts, not the largest id: on PostgreSQL rows may commit out of id order, and
        # these tables only ever grow.
        with self._db.session() as session:
            return (
                int(session.scalar(select(func.count(DeploymentEvent.id))) or 0),
                int(session.scalar(select(func.count(AliasEvent.id))) or 0),
                int(session.scalar(select(func.count(Deployment.id))) or 0),
            )

    def resolved(self) -> list[tuple[Deployment, dict[str, ModelVersion | None]]]:
        """Every deployment with the version rows of its arms as of now (for the runtime)."""
        with self._db.session() as session:
            result = []
            for row in session.scalars(select(Deployment)):
                result.append((row, arms_of(session, row)))
            return result

    def model_name(self, model_id: str) -> str:
        with self._db.session() as session:
            model = session.get(RegisteredModel, model_id)
            if model is None:
                raise NotFoundError(f"no model with id {model_id!r}")
            return model.name

    @staticmethod
    def _version(
        session: Session, model: RegisteredModel, number: int | None
    ) -> ModelVersion | None:
        return _version_row(session, model, number)

    def _target_version(
        self, session: Session, model: RegisteredModel, row: Deployment
    ) -> ModelVersion | None:
        return _target_row(session, model, row)

    def _out(self, session: Session, row: Deployment) -> DeploymentOut:
        model = session.get(RegisteredModel, row.model_id)
        assert model is not None
        current = self._target_version(session, model, row)
        return DeploymentOut(
            name=row.name,
            model=row.model_name,
            target=target_of(row),
            alias=row.alias,
            pinned_version=row.version,
            version=current.version if current is not None else None,
            canary_version=row.canary_version,
            canary_percent=row.canary_percent,
            shadow_version=row.shadow_version,
            cache_size=row.cache_size,
            limits=limits_of(row),
            explain=bool(row.explain),
            revision=row.revision,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )

    @staticmethod
    def _load(session: Session, name: str, *, for_update: bool = False) -> Deployment:
        query = select(Deployment).where(Deployment.name == name)
        if for_update:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return row

    # -- changes --------------------------------------------------------------------------

    def create(self, ctx: Context, data: DeploymentCreate) -> DeploymentOut:
        """A new endpoint; a pinned version must pass the gates of ``production``."""
        actor = require_actor(ctx)
        ref = parse_ref(data.model, field="model")
        if ref.alias is None and ref.version is None:
            reason = "name the alias to follow (name@alias) or the version to pin (name/N)"
            raise ConflictError(
                f"model reference {data.model!r} is ambiguous: {reason}",
                errors=[FieldError("model", reason)],
            )
        if ref.version is not None:
            self._check_gates(ctx, "deployment.create", ref, PRODUCTION, data.reason)
        else:
            self._check_protected(ctx, data, ref)
        with self._db.transaction() as session:
            model = load_model(session, ref.name)
            if ref.alias is not None and session.get(ModelAlias, (model.id, ref.alias)) is None:
                raise NotFoundError(
                    f"{ref} points at no version yet: promote a version to it first",
                    errors=[FieldError("model", "alias points at no version")],
                )
            if ref.version is not None:
                load_version(session, model, ref)
            if session.scalars(select(Deployment.id).where(Deployment.name == data.name)).first():
                raise ConflictError(
                    f"a deployment named {data.name!r} exists already",
                    errors=[FieldError("name", "already exists")],
                )
            now = self._clock.now()
            row = Deployment(
                id=uuid.uuid4().hex,
                name=data.name,
                model_id=model.id,
                model_name=model.name,
                alias=ref.alias,
                version=ref.version,
                canary_version=None,
                canary_percent=0,
                shadow_version=None,
                cache_size=data.cache_size,
                explain=data.explain,
                max_error_rate=data.limits.max_error_rate,
                max_p99_ms=data.limits.max_p99_ms,
                min_requests=data.limits.min_requests,
                revision=1,
                created_at=now,
                created_by=actor.username,
                updated_at=now,
                updated_by=actor.username,
            )
            self._event(session, ctx, row, "create", None, data.reason)
            session.add(row)
            session.flush()
            out = self._out(session, row)
        self._changed()
        return out

    def set_canary(self, ctx: Context, name: str, request: CanaryRequest) -> DeploymentOut:
        """Start, change or end (percent 0) the canary; the candidate must pass the gates."""
        with self._db.session() as session:
            current = self._load(session, name)
            model_name, alias = current.model_name, current.alias or PRODUCTION
        if request.percent > 0:
            if request.version is None:
                raise ConflictError(
                    "a canary needs the candidate version",
                    errors=[FieldError("version", "required when percent > 0")],
                )
            self._check_gates(
                ctx,
                "deployment.canary",
                Ref(model_name, version=request.version),
                alias,
                request.reason,
            )

        def change(session: Session, row: Deployment) -> None:
            if request.percent == 0:
                row.canary_version, row.canary_percent = None, 0
            else:
                model = load_model(session, row.model_name)
                candidate = load_version(
                    session, model, Ref(row.model_name, version=request.version)
                )
                primary = self._target_version(session, model, row)
                if primary is not None and primary.version == candidate.version:
                    raise ConflictError(
                        f"version {candidate.version} is already what {name} serves",
                        errors=[FieldError("version", "same as the deployment's version")],
                    )
                row.canary_version, row.canary_percent = candidate.version, request.percent
            if request.limits is not None:
                row.max_error_rate = request.limits.max_error_rate
                row.max_p99_ms = request.limits.max_p99_ms
                row.min_requests = request.limits.min_requests

        return self._update(ctx, name, "canary", request.reason, change)

    def set_shadow(self, ctx: Context, name: str, request: ShadowRequest) -> DeploymentOut:
        """Start or stop (version None) shadow scoring of every record."""

        def change(session: Session, row: Deployment) -> None:
            if request.version is not None:
                model = load_model(session, row.model_name)
                version = load_version(session, model, Ref(row.model_name, version=request.version))
                if not self._lifecycle.artifact_intact(version.artifact_digest):
                    raise IntegrityError(
                        f"{row.model_name}/{version.version}'s artifact is missing or damaged "
                        "in the blob store; it cannot shadow"
                    )
            row.shadow_version = request.version

        return self._update(ctx, name, "shadow", request.reason, change)

    def set_explain(self, ctx: Context, name: str, request: ExplainRequest) -> DeploymentOut:
        """Explain every prediction (``always``) or only those asked for."""

        def change(_session: Session, row: Deployment) -> None:
            row.explain = request.always

        return self._update(ctx, name, "explain", request.reason, change)

    def rollback(
        self, ctx: Context, name: str, request: DeploymentRollbackRequest
    ) -> DeploymentOut:
        """End the canary at once; without one, move the deployment back: a pinned one to
        its previous version, one that follows an alias by rolling the alias back (gated,
        and only for those who may move aliases)."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            row = self._load(session, name)
            canary, alias, model_name = row.canary_version, row.alias, row.model_name
            pinned = row.version
        if canary is not None:

            def end_canary(_session: Session, row: Deployment) -> None:
                row.canary_version, row.canary_percent = None, 0

            return self._update(ctx, name, "rollback", request.reason, end_canary)
        if alias is None:
            raise ConflictError(
                f"{name} has no canary and is pinned to {model_name}/{pinned}: nothing to roll "
                f"back (a pinned deployment keeps its version; follow {model_name}@production "
                "to roll back through the registry)"
            )
        if not actor.can(Permission.MODELS_PROMOTE):
            raise PermissionDeniedError(
                f"{name} follows {model_name}@{alias}: rolling it back moves the alias, "
                f"which needs permission {Permission.MODELS_PROMOTE.value!r}"
            )
        moved = self._lifecycle.rollback(
            ctx, model_name, alias, RollbackRequest(reason=request.reason)
        )
        with self._db.transaction() as session:
            row = self._load(session, name, for_update=True)
            self._event(
                session,
                ctx,
                row,
                "alias-rollback",
                routing(row) | {"version": moved.from_version},
                request.reason,
                after_extra={"version": moved.to_version},
            )
        self._changed()
        return self.get(name)

    def end_trials(
        self, session: Session, ctx: Context, model_id: str, alias: str, reason: str
    ) -> None:
        """A rollback of ``model@alias`` (inside its transaction) also ends the canary and the
        shadow of every deployment that follows that alias: back to a known state."""
        rows = session.scalars(
            select(Deployment)
            .where(Deployment.model_id == model_id, Deployment.alias == alias)
            .where(
                (Deployment.canary_version.is_not(None)) | (Deployment.shadow_version.is_not(None))
            )
            .order_by(Deployment.name)
            .with_for_update()
        ).all()
        actor = require_actor(ctx)
        for row in rows:
            before = routing(row)
            row.canary_version, row.canary_percent, row.shadow_version = None, 0, None
            row.revision += 1
            row.updated_at = self._clock.now()
            row.updated_by = actor.username
            self._event(session, ctx, row, "rollback", before, reason)

    def auto_rollback(self, name: str, canary_version: int, reason: str) -> bool:
        """End the canary because it crossed its limits (called by the runtime); False when
        the canary had already changed."""
        done = False

        def end_canary(_session: Session, row: Deployment) -> None:
            nonlocal done
            if row.canary_version == canary_version:
                row.canary_version, row.canary_percent = None, 0
                done = True

        self._update(_SYSTEM, name, "auto-rollback", reason, end_canary, only_if=lambda: done)
        return done

    def _update(
        self,
        ctx: Context,
        name: str,
        kind: str,
        reason: str,
        change: Callable[[Session, Deployment], None],
        only_if: Callable[[], bool] | None = None,
    ) -> DeploymentOut:
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = self._load(session, name, for_update=True)
            before = routing(row)
            change(session, row)
            if only_if is not None and not only_if():
                return self._out(session, row)
            after = routing(row)
            if after == before:
                raise ConflictError(f"{name} already routes this way; nothing changed")
            row.revision += 1
            row.updated_at = self._clock.now()
            row.updated_by = actor.username
            self._event(session, ctx, row, kind, before, reason)
            out = self._out(session, row)
        self._changed()
        return out

    def _event(
        self,
        session: Session,
        ctx: Context,
        row: Deployment,
        kind: str,
        before: dict[str, Any] | None,
        reason: str,
        *,
        after_extra: dict[str, Any] | None = None,
    ) -> None:
        actor = require_actor(ctx)
        after = routing(row) | (after_extra or {})
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=f"deployment.{kind}",
                resource_type="deployment",
                resource_id=row.name,
                reason=reason,
                details={"before": before, "after": after},
            ),
        )
        session.add(
            DeploymentEvent(
                deployment_id=row.id,
                kind=kind,
                before=json.dumps(before, sort_keys=True) if before is not None else None,
                after=json.dumps(after, sort_keys=True),
                reason=reason[:500],
                occurred_at=self._clock.now(),
                actor=actor.username,
            )
        )

    def _check_protected(self, ctx: Context, data: DeploymentCreate, ref: Ref) -> None:
        """Refuse (audited) to follow an alias nothing gates: its target could be any version."""
        with self._db.session() as session:
            protected = policy_of(load_model(session, ref.name)).protected_aliases
        if ref.alias in protected:
            return
        reason = (
            f"{ref.alias!r} is not a protected alias of {ref.name}, so nothing gates what it "
            "points at; follow a protected alias (production) or pin a version that passes "
            "the gates"
        )
        self._audit.record_alone(
            ctx,
            AuditEntry(
                action="deployment.create",
                outcome=Outcome.DENIED,
                resource_type="deployment",
                resource_id=data.name,
                reason=reason,
                details={"model": str(ref)},
            ),
        )
        raise PromotionBlockedError(
            f"{ref} cannot back a deployment: {reason}",
            errors=[FieldError("model", "the alias is not protected by the model's policy")],
            audited=True,
        )

    def _check_gates(self, ctx: Context, action: str, ref: Ref, alias: str, reason: str) -> None:
        """Refuse (audited) a version that would answer patients without passing the gates
        of the protected alias it stands in for."""
        result = self._lifecycle.gates(ref, alias)
        if result.passed:
            return
        self._audit.record_alone(
            ctx,
            AuditEntry(
                action=action,
                outcome=Outcome.DENIED,
                resource_type="deployment",
                resource_id=str(ref),
                reason=reason,
                details={"version": result.version, "alias": alias, "unmet": result.unmet},
            ),
        )
        raise PromotionBlockedError(
            f"{ref} cannot serve in place of {ref.name}@{alias}: " + "; ".join(result.unmet),
            errors=[FieldError("gates", unmet) for unmet in result.unmet],
            audited=True,
        )
