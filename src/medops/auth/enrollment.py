"""MFA enrollment: start (secret, otpauth URI, QR code), confirm with a first code, and get
one-time recovery codes. Confirming lifts an "mfa-enrollment" restriction from the login.

Starting needs the account's password in the request: a stolen login or token alone cannot
enroll the thief's authenticator. The secret is stored sealed (auth/mfa_keys.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth import mfa
from medops.auth.common import require_actor
from medops.auth.login import LoginService
from medops.auth.mfa_keys import MfaKeys
from medops.auth.schemas import MfaEnrollmentOut, RecoveryCodes
from medops.auth.tables import ApiToken, RecoveryCode, User
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError


class MfaService:
    """TOTP enrollment for the calling user."""

    def __init__(
        self, db: Database, clock: Clock, audit: AuditService, logins: LoginService, keys: MfaKeys
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._logins = logins
        self._keys = keys

    def enroll(self, ctx: Context, password: str) -> MfaEnrollmentOut:
        """Start (or restart) enrollment once the caller's password is checked again: a new
        secret, not active until confirmed."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            enabled = session.scalar(
                select(User.mfa_enabled_at).where(User.id == uuid.UUID(actor.user_id))
            )
        if enabled is not None:
            raise ConflictError("MFA is already enabled; an admin can reset it")
        self._logins.verify_again(ctx, password, None, action="mfa.enroll", need_totp=False)
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
            user.mfa_secret = self._keys.seal(user.id, enrollment.secret)
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
                raise ConflictError(
                    "no enrollment to confirm: start with 'medops mfa enroll' "
                    "(API: POST /api/v1/auth/mfa/enroll)"
                )
            secret = self._keys.open(user.id, user.mfa_secret)
            step = mfa.verify_totp(secret, code, now, None)
            if step is None:
                reason = "is not the current code of the enrolled secret"
                raise InvalidInputError(
                    f"code {reason}: check the authenticator's clock and try the next code "
                    "with 'medops mfa confirm CODE' (the enrollment stays open)",
                    errors=[FieldError("code", reason)],
                )
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
