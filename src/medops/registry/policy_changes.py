"""Governed changes of a promotion policy.

One person may make a model's policy stricter (``RegistryService.set_policy``). A change that
loosens any rule (removes a protected alias, lowers a minimum, raises a maximum, turns a check
off, asks for fewer approvals) is proposed here and applies only once two people, one of them
a clinician, have signed it electronically (re-authenticated, sealed and countersigned like a
version's approvals), and only while the model still has the policy it was proposed against.
A change never takes protection away from an alias a deployment follows: a deployment serving
patients keeps the gates it was created under, whoever signs.

Every step (propose, sign, apply, withdraw, supersede) is audited in the transaction that makes
it; refusals are audited too.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
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
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, NotFoundError
from medops.registry import approvals as sig
from medops.registry.followers import Followers
from medops.registry.policy import loosenings
from medops.registry.schemas import (
    PolicyChangeOut,
    PolicyChangeRequest,
    PolicyChangeStatus,
    PolicySignatureOut,
    PolicySignRequest,
    PolicyWithdrawRequest,
    PromotionPolicy,
)
from medops.registry.store import load_model, policy_of
from medops.registry.tables import PolicyChange, PolicySignature, RegisteredModel

MANIFEST_SCHEMA = "medops.policy-signature/1"
MEANING = "approval"
# Who must sign a loosening: this many distinct people, at least one of them a clinician
# (the same floor a version's promotion has).
SIGNERS_NEEDED = 2


def manifest(row: PolicySignature, change: PolicyChange, model: str) -> dict[str, object]:
    """What a policy signature says was signed."""
    return {
        "schema": MANIFEST_SCHEMA,
        "model": model,
        "change": change.id,
        "before_hash": change.before_hash,
        "after_hash": change.after_hash,
        **sig.signed_by(row),
    }


def still_needed(valid: list[PolicySignatureOut]) -> list[str]:
    """What a change's valid signatures still lack (pure): a clinician among the signers
    and, counting that clinician, two people in all."""
    people = {s.username for s in valid}
    missing = max(0, SIGNERS_NEEDED - len(people))
    needs = []
    if not any(s.role == Role.CLINICIAN.value for s in valid):
        needs.append("a signature by a clinician")
        missing -= 1
    if missing > 0:
        needs.append(f"{missing} more signature(s) by another person")
    return needs


class PolicyChangeService:
    """Propose, sign, apply and withdraw changes that loosen a promotion policy."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        logins: LoginService,
        key: Callable[[], Ed25519PrivateKey],
        followers: Followers,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._logins = logins
        self._key = key
        self._followers = followers
        self.listeners: list[Callable[[], None]] = []

    # -- reading --------------------------------------------------------------------------

    def changes(self, name: str) -> list[PolicyChangeOut]:
        """Every policy change of a model, newest first."""
        with self._db.session() as session:
            model = load_model(session, name)
            rows = session.scalars(
                select(PolicyChange)
                .where(PolicyChange.model_id == model.id)
                .order_by(PolicyChange.proposed_at.desc(), PolicyChange.id)
            ).all()
            return [self._out(session, model, row) for row in rows]

    def get(self, name: str, change_id: str) -> PolicyChangeOut:
        with self._db.session() as session:
            model = load_model(session, name)
            return self._out(session, model, self._load(session, model, change_id))

    # -- changes --------------------------------------------------------------------------

    def propose(self, ctx: Context, name: str, request: PolicyChangeRequest) -> PolicyChangeOut:
        """Record a loosening change for signatures; a change that loosens nothing is refused
        (set it directly), as is one that unprotects an alias a deployment follows."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            before = policy_of(model)
            found = loosenings(before, request.policy)
            if not found:
                reason = "it loosens nothing; set it directly (medops models policy NAME --set)"
                raise ConflictError(
                    f"the proposed policy of {name} asks no less than the current one: {reason}",
                    errors=[FieldError("policy", reason)],
                )
            self._refuse_unprotecting_served(session, model, before, request.policy, "policy")
            before_doc = before.model_dump(mode="json")
            after_doc = request.policy.model_dump(mode="json")
            row = PolicyChange(
                id="pc_" + secrets.token_hex(8),
                model_id=model.id,
                status="pending",
                before_policy=sig.canonical_json(before_doc),
                after_policy=sig.canonical_json(after_doc),
                before_hash=sig.sha256_json(before_doc),
                after_hash=sig.sha256_json(after_doc),
                loosenings=json.dumps(found),
                reason=request.reason,
                proposed_at=self._clock.now(),
                proposed_by=actor.username,
            )
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.policy.propose",
                    resource_type="model",
                    resource_id=name,
                    reason=request.reason,
                    details={
                        "change": row.id,
                        "before": before_doc,
                        "after": after_doc,
                        "loosens": found,
                    },
                ),
            )
            session.add(row)
            session.flush()
            return self._out(session, model, row)

    def sign(
        self, ctx: Context, name: str, change_id: str, request: PolicySignRequest
    ) -> PolicyChangeOut:
        """Sign a pending change (re-authenticated); the signature that completes it applies
        the new policy in the same transaction."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            model = load_model(session, name)
            row = self._load(session, model, change_id)
            self._check_open(session, model, row)
            self._refuse_second(session, model, row, actor.user_id)
            user = session.get(User, uuid.UUID(actor.user_id))
            printed_name = (user.full_name or "").strip() if user else ""
        sig.require_printed_name(printed_name)
        record = self._logins.reauthenticate(
            ctx, Signature(password=request.password, otp=request.otp, meaning=MEANING)
        )
        key = self._key()
        applied = False
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = self._load(session, model, change_id)
            self._check_open(session, model, row)
            self._refuse_second(session, model, row, actor.user_id)
            signature = PolicySignature(
                id="psig_" + secrets.token_hex(8),
                change_id=row.id,
                **sig.signer_columns(record, printed_name, request.comment, key),
            )
            sig.seal_manifest(signature, manifest(signature, row, model.name), key)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.policy.sign",
                    resource_type="model",
                    resource_id=name,
                    details={
                        "change": row.id,
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
                self._apply(session, ctx, model, row, valid)
                applied = True
            out = self._out(session, model, row)
        if applied:
            for listener in self.listeners:
                listener()
        return out

    def withdraw(
        self, ctx: Context, name: str, change_id: str, request: PolicyWithdrawRequest
    ) -> PolicyChangeOut:
        """End a pending change without applying it."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = self._load(session, model, change_id)
            if row.status != "pending":
                raise ConflictError(f"policy change {row.id} is {row.status}, not pending")
            row.status = "withdrawn"
            row.decided_at = self._clock.now()
            row.decided_by = actor.username
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="model.policy.withdraw",
                    resource_type="model",
                    resource_id=name,
                    reason=request.reason,
                    details={"change": row.id},
                ),
            )
            session.flush()
            return self._out(session, model, row)

    # -- rules ----------------------------------------------------------------------------

    def _apply(
        self,
        session: Session,
        ctx: Context,
        model: RegisteredModel,
        row: PolicyChange,
        valid: list[PolicySignatureOut],
    ) -> None:
        """Replace the policy; other pending changes of the model, proposed against the old
        one, are superseded."""
        now = self._clock.now()
        actor = require_actor(ctx)
        others = session.scalars(
            select(PolicyChange).where(
                PolicyChange.model_id == model.id,
                PolicyChange.status == "pending",
                PolicyChange.id != row.id,
            )
        ).all()
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action="model.policy",
                resource_type="model",
                resource_id=model.name,
                reason=row.reason,
                details={
                    "before": json.loads(row.before_policy),
                    "after": json.loads(row.after_policy),
                    "change": row.id,
                    "loosens": json.loads(row.loosenings),
                    "signatures": [
                        {"signature": s.id, "username": s.username, "role": s.role} for s in valid
                    ],
                    "superseded": [other.id for other in others],
                },
            ),
        )
        model.policy = row.after_policy
        row.status, row.decided_at, row.decided_by = "applied", now, actor.username
        for other in others:
            other.status, other.decided_at, other.decided_by = "superseded", now, actor.username

    def _check_open(self, session: Session, model: RegisteredModel, row: PolicyChange) -> None:
        """A change can be signed while pending, against the policy the model has now, and
        while no deployment follows an alias it would unprotect."""
        if row.status != "pending":
            raise ConflictError(f"policy change {row.id} is {row.status}; it cannot be signed")
        current = sig.sha256_json(policy_of(model).model_dump(mode="json"))
        if current != row.before_hash:
            raise ConflictError(
                f"{model.name}'s policy changed since {row.id} was proposed; propose it again "
                "against the current policy"
            )
        self._refuse_unprotecting_served(
            session,
            model,
            PromotionPolicy.model_validate_json(row.before_policy),
            PromotionPolicy.model_validate_json(row.after_policy),
            "change",
        )

    def _refuse_unprotecting_served(
        self,
        session: Session,
        model: RegisteredModel,
        before: PromotionPolicy,
        after: PromotionPolicy,
        field: str,
    ) -> None:
        removed = sorted(set(before.protected_aliases) - set(after.protected_aliases))
        served = [
            f"{deployment} follows {model.name}@{alias}"
            for alias in removed
            for deployment in self._followers(session, model.id, alias)
        ]
        if served:
            reason = (
                "a deployment serving patients keeps the gates of the alias it follows: "
                + "; ".join(served)
            )
            raise ConflictError(
                f"the change would unprotect an alias in use: {reason}",
                errors=[FieldError(field, reason)],
            )

    def _refuse_second(
        self, session: Session, model: RegisteredModel, row: PolicyChange, user_id: str
    ) -> None:
        """One valid signature per person and change (checked again under the model's lock)."""
        valid = {s.id for s in self._signatures(session, model, row) if s.valid}
        mine = session.scalars(
            select(PolicySignature.id).where(
                PolicySignature.change_id == row.id, PolicySignature.user_id == user_id
            )
        ).all()
        if valid & set(mine):
            raise ConflictError(f"you have signed {row.id} already")

    @staticmethod
    def _load(session: Session, model: RegisteredModel, change_id: str) -> PolicyChange:
        row = session.get(PolicyChange, change_id)
        if row is None or row.model_id != model.id:
            raise NotFoundError(f"{model.name} has no policy change {change_id!r}")
        return row

    def _signatures(
        self, session: Session, model: RegisteredModel, row: PolicyChange
    ) -> list[PolicySignatureOut]:
        public = self._key().public_key()
        key_id = signing.key_id(public)
        rows = session.scalars(
            select(PolicySignature)
            .where(PolicySignature.change_id == row.id)
            .order_by(PolicySignature.signed_at, PolicySignature.id)
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
            out.append(
                PolicySignatureOut(
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

    def _out(self, session: Session, model: RegisteredModel, row: PolicyChange) -> PolicyChangeOut:
        signatures = self._signatures(session, model, row)
        needs = still_needed([s for s in signatures if s.valid]) if row.status == "pending" else []
        return PolicyChangeOut(
            id=row.id,
            model=model.name,
            status=cast(PolicyChangeStatus, row.status),
            before=PromotionPolicy.model_validate_json(row.before_policy),
            after=PromotionPolicy.model_validate_json(row.after_policy),
            loosenings=json.loads(row.loosenings),
            reason=row.reason,
            proposed_at=row.proposed_at,
            proposed_by=row.proposed_by,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            signatures=signatures,
            needs=needs,
        )
