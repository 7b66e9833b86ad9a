"""MFA enrollment: start (secret, otpauth URI, QR code), confirm with a first code, and get
one-time recovery codes. Confirming lifts an "mfa-enrollment" restriction from the login."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, update

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth import mfa
from medops.auth.common import require_actor
from medops.auth.models import ApiToken, RecoveryCode, User
from medops.auth.schemas import MfaEnrollmentOut, RecoveryCodes
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError


class MfaService:
    """TOTP enrollment for the calling user."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    def enroll(self, ctx: Context) -> MfaEnrollmentOut:
        """Start (or restart) enrollment: a new secret, not active until confirmed."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            user = session.get(User, uuid.UUID(actor.user_id))
            assert user is not None
            if user.mfa_enabled_at is not None:
                raise ConflictError("MFA is already enabled; an admin can reset it")
            enrollment = mfa.new_enrollment(user.username)
            self._audit.record(
                session,
                ctx,
                AuditEntry(action="mfa.enroll", resource_type="user", resource_id=user.username),
            )
            user.mfa_secret = enrollment.secret
        return MfaEnrollmentOut(
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            qr_png_data_uri=enrollment.qr_png_data_uri,
        )

    def confirm(self, ctx: Context, code: str) -> RecoveryCodes:
        """Activate MFA with a first valid code; returns ten recovery codes, shown once."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.get(User, uuid.UUID(actor.user_id))
            assert user is not None
            if user.mfa_enabled_at is not None:
                raise ConflictError("MFA is already enabled")
            if user.mfa_secret is None:
                raise ConflictError("start with POST /api/v1/auth/mfa/enroll")
            step = mfa.verify_totp(user.mfa_secret, code, now, None)
            if step is None:
                reason = "is not the current code of the enrolled secret"
                raise InvalidInputError(f"code {reason}", errors=[FieldError("code", reason)])
            codes = mfa.new_recovery_codes()
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="mfa.enable",
                    resource_type="user",
                    resource_id=user.username,
                    details={"recovery_codes": len(codes)},
                ),
            )
            user.mfa_enabled_at = now
            user.mfa_last_step = step
            session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            session.add_all(
                RecoveryCode(user_id=user.id, code_hash=mfa.recovery_digest(c)) for c in codes
            )
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == actor.token_id, ApiToken.restriction == "mfa-enrollment")
                .values(restriction=None)
            )
        return RecoveryCodes(codes=codes)
