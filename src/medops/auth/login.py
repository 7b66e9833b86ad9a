"""Logins, sessions and re-authentication: who is calling, and is their login still good.

* Failed logins are counted per username (whether or not it exists, so a lockout tells an
  attacker nothing); ``lockout_threshold`` failures in a row lock it for
  ``lockout_base_seconds``, doubling with each further lockout up to ``lockout_max_seconds``.
* Logins (CLI/SDK bearer tokens and browser cookie sessions) expire after
  ``session_idle_minutes`` unused or ``session_max_hours`` in all; expiry is audited once.
* A login under the MFA policy without MFA, or with a password an admin reset, is restricted
  to that one step until it is done.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.auth import mfa, passwords, tokens
from medops.auth.cache import BOOKKEEPING, AuthCache, AuthEntry, watch_auth_changes
from medops.auth.common import (
    BAD_LOGIN,
    LOGIN_KINDS,
    end_logins,
    make_actor,
    require_actor,
    token_out,
)
from medops.auth.models import ApiToken, BreakGlassGrant, LoginThrottle, RecoveryCode, User
from medops.auth.permissions import Permission
from medops.auth.schemas import Signature, SignatureRecord, TokenOut
from medops.clock import Clock
from medops.config import Settings
from medops.context import Actor, Context, Origin
from medops.db.engine import Database
from medops.errors import (
    AuthenticationError,
    CsrfError,
    FieldError,
    InvalidInputError,
    MedopsError,
    MfaRequiredError,
    TooManyAttemptsError,
)

LAST_USED_GRANULARITY = timedelta(seconds=30)
_SYSTEM_ORIGIN = Origin()  # expiry is noticed by the server, not asked for by a client
Kind = Literal["login", "session"]


@dataclass(frozen=True)
class LoginResult:
    secret: str
    token_id: str
    expires_at: datetime
    restriction: str | None
    csrf_token: str | None


class LoginService:
    """Checks credentials and logins; ends them on request, on idleness and at their end."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self.cache = AuthCache(settings.auth_cache_seconds)
        watch_auth_changes(db.session_factory, self.cache)

    # --- logging in ----------------------------------------------------------------------

    def login(
        self, ctx: Context, username: str, password: str, otp: str | None = None, *, kind: Kind
    ) -> LoginResult:
        """Check password (and one-time code); every try is audited, failures are counted."""
        now = self._clock.now()
        anonymous = Context(actor=None, origin=ctx.origin)
        error: MedopsError | None = None
        result: LoginResult | None = None
        with self._db.transaction() as session, session.no_autoflush:
            # Lock the user row: two concurrent logins cannot both spend the same TOTP step.
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            throttle = self._throttle(session, username)
            if throttle.locked_until is not None and throttle.locked_until > now:
                wait = int((throttle.locked_until - now).total_seconds()) + 1
                error = TooManyAttemptsError(
                    f"too many failed logins; try again in {wait} s", retry_after=wait, audited=True
                )
                reason = "locked after repeated failures"
            else:
                ok = passwords.verify_password(user.password_hash if user else None, password)
                second: str | None = "none"
                if ok and user is not None and user.is_active and user.mfa_enabled_at is not None:
                    second = self._second_factor(session, user, otp, now) if otp else None
                    if not otp:
                        error = MfaRequiredError(
                            "this account needs a one-time code: send it as 'otp'", audited=True
                        )
                        reason = "one-time code required"
                if error is None and (
                    user is None or not ok or second is None or not user.is_active
                ):
                    error = AuthenticationError(BAD_LOGIN, audited=True)
                    reason = self._count_failure(
                        throttle, now, disabled=bool(user and ok and second)
                    )
            if error is not None:
                self._audit.record(
                    session,
                    anonymous,
                    AuditEntry(
                        action="auth.login",
                        outcome=Outcome.FAILURE,
                        resource_type="user",
                        resource_id=username[:128],
                        reason=reason,
                    ),
                )
            else:
                assert user is not None
                throttle.failures = 0
                result = self._start(session, ctx, user, kind, now)
        if error is not None:
            raise error
        assert result is not None
        return result

    def _throttle(self, session: Session, username: str) -> LoginThrottle:
        """The username's failure counter, created if need be and locked for this transaction
        (INSERT ... ON CONFLICT DO NOTHING, so concurrent first failures do not collide)."""
        key = username.lower()[:128]
        insert = sqlite_insert if self._db.dialect == "sqlite" else postgresql_insert
        session.execute(
            insert(LoginThrottle)
            .values(username=key, failures=0, lockouts=0)
            .on_conflict_do_nothing(index_elements=["username"])
        )
        throttle = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
        assert throttle is not None
        return throttle

    def _count_failure(self, throttle: LoginThrottle, now: datetime, *, disabled: bool) -> str:
        window = timedelta(seconds=self._settings.lockout_max_seconds)
        if throttle.last_failure_at is not None and now - throttle.last_failure_at > window:
            throttle.failures = 0  # old typos do not add up to a lockout months later
        throttle.failures += 1
        throttle.last_failure_at = now
        if throttle.failures >= self._settings.lockout_threshold:
            throttle.lockouts += 1
            seconds = min(
                self._settings.lockout_base_seconds * 2 ** (throttle.lockouts - 1),
                self._settings.lockout_max_seconds,
            )
            throttle.locked_until = now + timedelta(seconds=seconds)
            throttle.failures = 0
            return f"bad credentials; locked for {seconds} s"
        return "disabled account" if disabled else "bad credentials"

    def _second_factor(
        self, session: Session, user: User, otp: str | None, now: datetime
    ) -> str | None:
        """'totp' or 'recovery-code' when the code is good (and now used up), else None."""
        if not otp or user.mfa_secret is None:
            return None
        step = mfa.verify_totp(user.mfa_secret, otp, now, user.mfa_last_step)
        if step is not None:
            user.mfa_last_step = step
            return "totp"
        if mfa.looks_like_recovery_code(otp):
            code = session.scalar(
                select(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user.id,
                    RecoveryCode.code_hash == mfa.recovery_digest(otp),
                    RecoveryCode.used_at.is_(None),
                )
                .with_for_update()
            )
            if code is not None:
                code.used_at = now
                return "recovery-code"
        return None

    def _start(
        self, session: Session, ctx: Context, user: User, kind: Kind, now: datetime
    ) -> LoginResult:
        restriction = None
        if user.must_change_password:
            restriction = "password-change"
        elif user.role in self._settings.mfa_required_roles and user.mfa_enabled_at is None:
            restriction = "mfa-enrollment"
        secret = tokens.new_secret()
        csrf = secrets.token_urlsafe(32) if kind == "session" else None
        token = ApiToken(
            id=tokens.new_token_id(),
            user_id=user.id,
            name=kind,
            kind=kind,
            token_hash=tokens.digest(secret),
            created_at=now,
            expires_at=now + self._settings.session_max,
            last_used_at=now,
            restriction=restriction,
            csrf_hash=_digest(csrf) if csrf else None,
        )
        session.add(token)
        actor = make_actor(user, token)
        self._audit.record(
            session,
            Context(actor=actor, origin=ctx.origin),
            AuditEntry(
                action="auth.login",
                resource_type="token",
                resource_id=token.id,
                details={"kind": kind, "restriction": restriction}
                if restriction
                else {"kind": kind},
            ),
        )
        return LoginResult(secret, token.id, token.expires_at, restriction, csrf)

    # --- every request -------------------------------------------------------------------

    def authenticate(
        self,
        secret: str,
        *,
        via_cookie: bool = False,
        csrf: str | None = None,
        unsafe: bool = False,
    ) -> Actor:
        """The actor a token or session cookie stands for; raises when it is not (or no
        longer) good. A browser session must also present its CSRF token on changes."""
        digest = tokens.digest(secret)
        actor = self._from_cache(digest, via_cookie, csrf, unsafe)
        if actor is not None:
            return actor
        now = self._clock.now()
        entry = self._load(digest, now)
        if entry is None or (entry.token.kind == "session") != via_cookie:
            raise AuthenticationError("invalid token")
        actor, expiry = self._admit(entry, via_cookie, csrf, unsafe, now)
        if actor is None:
            assert expiry is not None
            self._end(entry.token, entry.user, now, expiry)
            raise AuthenticationError(expiry)
        token = entry.token
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
            with self._db.transaction() as session:
                exempt_from_audit_guard(session)  # bookkeeping, not an action
                session.info[BOOKKEEPING] = True  # and no reason to empty the auth cache
                session.execute(
                    update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
                )
            entry = replace(entry, last_used_at=now)
        self.cache.put(digest, entry)
        return actor

    def cached_actor(
        self,
        secret: str,
        *,
        via_cookie: bool = False,
        csrf: str | None = None,
        unsafe: bool = False,
    ) -> Actor | None:
        """``authenticate`` without touching the database: the actor when the cache holds
        the token and lets it in with nothing to write; None means call ``authenticate``."""
        return self._from_cache(tokens.digest(secret), via_cookie, csrf, unsafe)

    def _from_cache(
        self, digest: str, via_cookie: bool, csrf: str | None, unsafe: bool
    ) -> Actor | None:
        entry = self.cache.get(digest)
        if entry is None:
            return None
        now = self._clock.now()
        if entry.last_used_at is None or now - entry.last_used_at >= LAST_USED_GRANULARITY:
            return None  # time to write last_used_at: the full path does it
        try:
            actor, _ = self._admit(entry, via_cookie, csrf, unsafe, now)
        except MedopsError:
            return None  # a refusal is always confirmed against the database
        return actor

    def _load(self, digest: str, now: datetime) -> AuthEntry | None:
        generation = self.cache.generation  # read first: a change during the load voids it
        with self._db.session() as session:
            row = session.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(ApiToken.token_hash == digest)
            ).first()
            if row is None:
                return None
            token, user = row
            grants = tuple(
                (Permission(permission), expires_at)
                for permission, expires_at in session.execute(
                    select(BreakGlassGrant.permission, BreakGlassGrant.expires_at).where(
                        BreakGlassGrant.user_id == user.id, BreakGlassGrant.expires_at > now
                    )
                )
            )
        return AuthEntry(token, user, grants, token.last_used_at, time.monotonic(), generation)

    def _admit(
        self, entry: AuthEntry, via_cookie: bool, csrf: str | None, unsafe: bool, now: datetime
    ) -> tuple[Actor | None, str | None]:
        """(the actor, None) when the login is good now; (None, why) when it has expired;
        raises when it is refused for any other reason."""
        token, user = entry.token, entry.user
        if (token.kind == "session") != via_cookie:
            raise AuthenticationError("invalid token")
        if token.revoked_at is not None:
            raise AuthenticationError(
                "session has ended" if token.kind in LOGIN_KINDS else "token has been revoked"
            )
        expiry = self._expiry(token, now, entry.last_used_at)
        if expiry is None and not user.is_active:
            raise AuthenticationError("account is disabled")
        csrf_ok = (
            bool(csrf)
            and token.csrf_hash is not None
            and hmac.compare_digest(token.csrf_hash, _digest(csrf or ""))
        )
        if expiry is None and via_cookie and unsafe and not csrf_ok:
            raise CsrfError("this change needs the session's X-CSRF-Token header")
        if expiry is not None:
            return None, expiry
        emergency = frozenset(p for p, expires_at in entry.grants if expires_at > now)
        return make_actor(user, token, emergency), None

    def _expiry(
        self, token: ApiToken, now: datetime, last_used_at: datetime | None = None
    ) -> str | None:
        if token.kind not in LOGIN_KINDS:
            return "token has expired" if token.expires_at <= now else None
        if token.expires_at <= now:
            return f"session has expired (the {self._settings.session_max_hours} h maximum)"
        last = last_used_at or token.last_used_at or token.created_at
        if now - last >= self._settings.session_idle:
            return f"session has expired after {self._settings.session_idle_minutes} min idle"
        return None

    def _end(self, token: ApiToken, user: User, now: datetime, why: str) -> None:
        """Record a login's expiry once, by revoking it; API tokens just stay expired."""
        if token.kind not in LOGIN_KINDS:
            return
        with self._db.transaction() as session:
            ended = session.execute(
                update(ApiToken)
                .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if ended.rowcount:  # type: ignore[attr-defined]
                actor = make_actor(user, token)
                self._audit.record(
                    session,
                    Context(actor=actor, origin=_SYSTEM_ORIGIN),
                    AuditEntry(
                        action="session.expire",
                        resource_type="token",
                        resource_id=token.id,
                        reason=why,
                    ),
                )
            else:
                exempt_from_audit_guard(session)

    def sweep_expired(self) -> int:
        """End and audit every login that has expired unnoticed (its client never came back);
        the server runs this every minute, so each expiry is recorded within about a minute."""
        now = self._clock.now()
        idle_cutoff = now - self._settings.session_idle
        with self._db.session() as session:
            rows = session.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(
                    ApiToken.kind.in_(LOGIN_KINDS),
                    ApiToken.revoked_at.is_(None),
                    (ApiToken.expires_at <= now)
                    | (func.coalesce(ApiToken.last_used_at, ApiToken.created_at) <= idle_cutoff),
                )
            ).all()
        for token, user in rows:
            why = self._expiry(token, now)
            if why is not None:
                self._end(token, user, now, why)
        return len(rows)

    # --- sessions ------------------------------------------------------------------------

    def list_sessions(self, ctx: Context) -> list[TokenOut]:
        """The caller's live logins (CLI and browser), newest first."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.session() as session:
            rows = session.scalars(
                select(ApiToken)
                .where(
                    ApiToken.user_id == uuid.UUID(actor.user_id),
                    ApiToken.kind.in_(LOGIN_KINDS),
                    ApiToken.revoked_at.is_(None),
                    ApiToken.expires_at > now,
                )
                .order_by(ApiToken.created_at.desc())
            )
            return [token_out(t, actor.username) for t in rows if self._expiry(t, now) is None]

    def logout(self, ctx: Context) -> None:
        """End the login this request came with."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="session.logout", resource_type="token", resource_id=actor.token_id
                ),
            )
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == actor.token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )

    def logout_everywhere(self, ctx: Context) -> int:
        """End every login (CLI and browser) of the caller, this one included."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            live = session.scalars(
                select(ApiToken.id).where(
                    ApiToken.user_id == uuid.UUID(actor.user_id),
                    ApiToken.kind.in_(LOGIN_KINDS),
                    ApiToken.revoked_at.is_(None),
                )
            ).all()
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="session.revoke-all",
                    resource_type="user",
                    resource_id=actor.username,
                    details={"sessions_ended": len(live)},
                ),
            )
            session.execute(update(ApiToken).where(ApiToken.id.in_(live)).values(revoked_at=now))
        return len(live)

    # --- passwords and signatures --------------------------------------------------------

    def change_password(self, ctx: Context, current: str, new: str) -> None:
        """Change one's own password; ends the caller's other logins and lifts a
        password-change restriction from this one."""
        actor = require_actor(ctx)
        passwords.check_policy(new, field="new_password", username=actor.username)
        if new == current:
            reason = "must differ from the current password"
            raise InvalidInputError(
                f"new_password {reason}", errors=[FieldError("new_password", reason)]
            )
        self._verify_again(ctx, current, None, action="user.password-change", need_totp=False)
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.get(User, uuid.UUID(actor.user_id))
            assert user is not None
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.password-change", resource_type="user", resource_id=user.username
                ),
            )
            user.password_hash = passwords.hash_password(new)
            user.must_change_password = False
            end_logins(session, user.id, now, keep=actor.token_id)
            # The change lifts only its own restriction: MFA enrollment may still be due.
            needs_mfa = user.role in self._settings.mfa_required_roles and not user.mfa_enabled_at
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == actor.token_id, ApiToken.restriction == "password-change")
                .values(restriction="mfa-enrollment" if needs_mfa else None)
            )

    def reauthenticate(self, ctx: Context, signature: Signature) -> SignatureRecord:
        """Check the signer's password (and one-time code where enrolled) again, as
        21 CFR 11.200 asks of each electronic signature; failures count toward lockout."""
        actor = require_actor(ctx)
        method = self._verify_again(
            ctx, signature.password, signature.otp, action="auth.reauthenticate", need_totp=True
        )
        now = self._clock.now()
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="auth.reauthenticate",
                    resource_type="user",
                    resource_id=actor.username,
                    details={"meaning": signature.meaning, "method": method},
                ),
            )
        return SignatureRecord(
            user_id=actor.user_id,
            username=actor.username,
            role=actor.role,
            signed_at=now,
            method=method,
            meaning=signature.meaning,
        )

    def _verify_again(
        self, ctx: Context, password: str, otp: str | None, *, action: str, need_totp: bool
    ) -> str:
        actor = require_actor(ctx)
        now = self._clock.now()
        error: MedopsError | None = None
        method = "password"
        with self._db.transaction() as session, session.no_autoflush:
            user = session.get(User, uuid.UUID(actor.user_id), with_for_update=True)
            throttle = self._throttle(session, actor.username)
            assert user is not None
            if throttle.locked_until is not None and throttle.locked_until > now:
                wait = int((throttle.locked_until - now).total_seconds()) + 1
                error = TooManyAttemptsError(
                    f"too many failed attempts; try again in {wait} s",
                    retry_after=wait,
                    audited=True,
                )
                reason = "locked after repeated failures"
            elif not passwords.verify_password(user.password_hash, password):
                error = AuthenticationError("re-authentication failed", audited=True)
                reason = self._count_failure(throttle, now, disabled=False)
            elif need_totp and user.mfa_enabled_at is not None:
                second = self._second_factor(session, user, otp, now)
                if second is None:
                    error = AuthenticationError("re-authentication failed", audited=True)
                    reason = self._count_failure(throttle, now, disabled=False)
                else:
                    method = f"password+{second}"
            if error is not None:
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(action=action, outcome=Outcome.FAILURE, reason=reason),
                )
            else:
                throttle.failures = 0
                exempt_from_audit_guard(session)
        if error is not None:
            raise error
        return method


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
