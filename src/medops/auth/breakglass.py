"""Break-glass: emergency access to one permission, granted at once with a mandatory reason,
audited as break-glass on every use, flagged for review, and expiring by itself."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.auth.schemas import BreakGlassOut, BreakGlassRequest, BreakGlassReview
from medops.auth.tables import BreakGlassGrant, User
from medops.clock import Clock
from medops.config import Settings
from medops.context import Context
from medops.core.permissions import BREAKGLASS_ELIGIBLE, Permission
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError, NotFoundError


class BreakGlassService:
    """Grants, lists and reviews emergency access."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings

    def grant(self, ctx: Context, request: BreakGlassRequest) -> BreakGlassOut:
        """Grant the caller ``request.permission`` now, for at most the configured time."""
        actor = require_actor(ctx)
        if request.permission not in BREAKGLASS_ELIGIBLE:
            allowed = ", ".join(sorted(p.value for p in BREAKGLASS_ELIGIBLE))
            reason = f"break-glass can grant only {allowed}"
            raise InvalidInputError(reason, errors=[FieldError("permission", reason)])
        if actor.can(request.permission):
            raise ConflictError(f"you already hold {request.permission.value!r}")
        if request.minutes > self._settings.breakglass_max_minutes:
            reason = f"must be at most {self._settings.breakglass_max_minutes}"
            raise InvalidInputError(f"minutes {reason}", errors=[FieldError("minutes", reason)])
        now = self._clock.now()
        grant = BreakGlassGrant(
            id="bg_" + secrets.token_hex(8),
            user_id=uuid.UUID(actor.user_id),
            permission=request.permission.value,
            resource=request.resource,
            reason=request.reason,
            granted_at=now,
            expires_at=now + timedelta(minutes=request.minutes),
        )
        with self._db.transaction() as session:
            # One active grant per user, whatever its permission. The user row's lock (FOR
            # UPDATE on PostgreSQL; SQLite write transactions run one at a time) makes
            # concurrent requests check and insert one after the other.
            session.get(User, grant.user_id, with_for_update=True)
            active = session.scalars(
                select(BreakGlassGrant)
                .where(BreakGlassGrant.user_id == grant.user_id, BreakGlassGrant.expires_at > now)
                .order_by(BreakGlassGrant.expires_at.desc())
                .limit(1)
            ).first()
            if active is not None:
                raise ConflictError(
                    f"you already hold an active break-glass grant ({active.id}, "
                    f"{active.permission!r}, until {active.expires_at.isoformat()}); it cannot "
                    "be extended or stacked: take a new one when it ends"
                )
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="breakglass.grant",
                    resource_type=request.resource and "resource",
                    resource_id=request.resource,
                    reason=request.reason,
                    details={
                        "grant": grant.id,
                        "permission": grant.permission,
                        "expires_at": grant.expires_at.isoformat(),
                        "review": "pending",
                    },
                ),
            )
            session.add(grant)
        return _out(grant, actor.username, now)

    def record_use(self, ctx: Context, permission: Permission, route: str) -> None:
        """Audit one request that only a break-glass grant allowed."""
        self._audit.record_alone(
            ctx,
            AuditEntry(
                action="breakglass.use",
                resource_type="route",
                resource_id=route,
                details={"permission": permission.value},
            ),
        )

    def list(self, *, pending_only: bool = False) -> list[BreakGlassOut]:
        """Grants, newest first; ``pending_only`` keeps those not yet reviewed."""
        now = self._clock.now()
        query = (
            select(BreakGlassGrant, User.username)
            .join(User, BreakGlassGrant.user_id == User.id)
            .order_by(BreakGlassGrant.granted_at.desc())
        )
        if pending_only:
            query = query.where(BreakGlassGrant.reviewed_at.is_(None))
        with self._db.session() as session:
            return [_out(grant, name, now) for grant, name in session.execute(query)]

    def review(self, ctx: Context, grant_id: str, review: BreakGlassReview) -> BreakGlassOut:
        """Record that a reviewer looked at a grant and what they concluded."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.execute(
                select(BreakGlassGrant, User.username)
                .join(User, BreakGlassGrant.user_id == User.id)
                .where(BreakGlassGrant.id == grant_id)
            ).first()
            if row is None:
                raise NotFoundError(f"break-glass grant {grant_id!r} does not exist")
            grant, username = row
            if grant.reviewed_at is not None:
                raise ConflictError(f"grant {grant_id!r} was already reviewed")
            if username == actor.username:
                raise ConflictError("a grant is reviewed by someone other than its holder")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="breakglass.review",
                    resource_type="breakglass",
                    resource_id=grant_id,
                    details={"note": review.note, "holder": username},
                ),
            )
            grant.reviewed_at = now
            grant.reviewed_by = actor.username
            grant.review_note = review.note
        return _out(grant, username, now)


def _out(grant: BreakGlassGrant, username: str, now: object) -> BreakGlassOut:
    return BreakGlassOut(
        id=grant.id,
        username=username,
        permission=grant.permission,
        resource=grant.resource,
        reason=grant.reason,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        active=grant.expires_at > now,  # type: ignore[operator]
        reviewed_at=grant.reviewed_at,
        reviewed_by=grant.reviewed_by,
        review_note=grant.review_note,
    )
