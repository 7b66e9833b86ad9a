"""Logins, sessions and re-authentication: who is calling, and is their login still good.

* Failed logins slow the account and, past a limit, block the client address; they never
  lock an account (auth/throttle.py has the rules). The routes call ``attempt_login``, which
  waits out the account's delay on the event loop, holding no thread, before judging.
* Failed re-authentications lock that user's re-authentication (only the user's own login
  can make them).
* Logins (CLI/SDK bearer tokens and browser cookie sessions) expire after
  ``session_idle_minutes`` unused or ``session_max_hours`` in all; expiry is audited once.
* A login under the MFA policy without MFA, or with a password an admin reset, is restricted
  to that one step until it is done.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import anyio.to_thread
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.auth import mfa, passwords, throttle, tokens
from medops.auth.cache import BOOKKEEPING, AuthCache, AuthEntry, watch_auth_changes
from medops.auth.common import (
    BAD_LOGIN,
    LOGIN_KINDS,
    UNKNOWN_USER,
    make_actor,
    require_actor,
    revoke_credentials,
    token_out,
)
from medops.auth.mfa_keys import MfaKeys
from medops.auth.schemas import Signature, SignatureRecord, TokenOut
from medops.auth.tables import ApiToken, BreakGlassGrant, LoginThrottle, RecoveryCode, User
from medops.clock import Clock
from medops.config import Settings
from medops.context import Actor, Context, Origin
from medops.core.permissions import Permission
from medops.db.engine import Database
from medops.errors import (
    AuthenticationError,
    CsrfError,
    FieldError,
    IntegrityError,
    InvalidInputError,
    MedopsError,
    MfaRequiredError,
    TooManyAttemptsError,
)
from medops.logs import get_logger

log = get_logger("medops.auth")
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

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        settings: Settings,
        mfa_keys: MfaKeys,
        hashing: passwords.PasswordHashing = passwords.OWASP_HASHING,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self._keys = mfa_keys
        self._hashing = hashing
        self.limits = limits_of(settings)
        self.cache = AuthCache(settings.auth_cache_seconds, clock)
        watch_auth_changes(db.session_factory, self.cache)

    # --- logging in ----------------------------------------------------------------------

    async def attempt_login(
        self, ctx: Context, username: str, password: str, otp: str | None = None, *, kind: Kind
    ) -> LoginResult:
        """What the login routes call: a blocked client address is refused at once;
        otherwise the attempt waits out the account's delay (on the event loop, holding no
        thread), and is then judged by ``login``."""
        wait = await anyio.to_thread.run_sync(self.login_wait, ctx, username)
        if wait > 0:
            await self._clock.sleep(wait)
        judge = functools.partial(self.login, ctx, username, password, otp, kind=kind)
        return await anyio.to_thread.run_sync(judge)

    def login_wait(self, ctx: Context, username: str) -> float:
        """Seconds the account's recent failures put before this attempt is judged; raises
        TooManyAttemptsError at once when the caller's address is blocked."""
        now = self._clock.now()
        keys = (throttle.address_key(ctx.origin.source_ip), throttle.account_key(username))
        with self._db.session() as session:
            rows = {
                row.key: row
                for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
            }
        _refuse_blocked(rows.get(keys[0]), now)
        return throttle.account_wait(_counter(rows.get(keys[1])), now, self.limits)

    def login(
        self, ctx: Context, username: str, password: str, otp: str | None = None, *, kind: Kind
    ) -> LoginResult:
        """Judge a login now: password (and one-time code). Every judged try is audited (the
        name only when such an account exists); failures slow the account and count against
        the client address."""
        now = self._clock.now()
        anonymous = Context(actor=None, origin=ctx.origin)
        error: MedopsError | None = None
        result: LoginResult | None = None
        with self._db.transaction() as session, session.no_autoflush:
            # Lock the user row: two concurrent logins cannot both spend the same TOTP step.
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            address = self._throttle(session, throttle.address_key(ctx.origin.source_ip))
            account = self._throttle(session, throttle.account_key(username))
            # A refusal of a blocked address is counted with the other refused requests of
            # that address and minute (api/errors.py), not recorded one by one.
            _refuse_blocked(address, now)
            ok = self._hashing.verify(user.password_hash if user else None, password)
            second: str | None = "none"
            reason = ""
            if ok and user is not None and user.is_active and user.mfa_enabled_at is not None:
                second = self._second_factor(session, user, otp, now) if otp else None
                if not otp:
                    error = MfaRequiredError(
                        "this account needs a one-time code: give it with --otp CODE "
                        "(in the API, the form field 'otp')",
                        audited=True,
                    )
                    reason = "one-time code required"
            if error is None and (user is None or not ok or second is None or not user.is_active):
                error = AuthenticationError(BAD_LOGIN, audited=True)
                reason = self._count_failure(
                    address, account, now, disabled=bool(user and ok and second)
                )
            if error is not None:
                self._audit.record(
                    session,
                    anonymous,
                    AuditEntry(
                        action="auth.login",
                        outcome=Outcome.FAILURE,
                        resource_type="user",
                        # A name with no account may be a password typed in the wrong field.
                        resource_id=user.username if user is not None else UNKNOWN_USER,
                        reason=reason,
                    ),
                )
            else:
                assert user is not None
                _store(account, throttle.Counter())  # a success ends the account's slowing
                result = self._start(session, ctx, user, kind, now)
        if error is not None:
            raise error
        assert result is not None
        return result

    def _throttle(self, session: Session, key: str) -> LoginThrottle:
        """A failure counter, created if need be and locked for this transaction
        (INSERT ... ON CONFLICT DO NOTHING, so concurrent first failures do not collide)."""
        insert = sqlite_insert if self._db.dialect == "sqlite" else postgresql_insert
        session.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, lockouts=0)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
        assert row is not None
        return row

    def _count_failure(
        self, address: LoginThrottle, account: LoginThrottle, now: datetime, *, disabled: bool
    ) -> str:
        account_counter = _counter(account)
        throttle.account_failed(account_counter, now)
        _store(account, account_counter)
        address_counter = _counter(address)
        blocked = throttle.address_failed(address_counter, now, self.limits)
        _store(address, address_counter)
        reason = "disabled account" if disabled else "bad credentials"
        if blocked:
            seconds = int(self.limits.address_block.total_seconds())
            log.warning("client address blocked after failed logins", seconds=seconds)
            reason += f"; address blocked for {seconds} s"
        return reason

    def _second_factor(
        self, session: Session, user: User, otp: str | None, now: datetime
    ) -> str | None:
        """'totp' or 'recovery-code' when the code is good (and now used up), else None."""
        if not otp or user.mfa_secret is None:
            return None
        try:
            secret = self._keys.open(user.id, user.mfa_secret)
        except IntegrityError as exc:  # fail closed: the code cannot be checked
            log.error("TOTP secret unreadable", user_id=str(user.id), error=exc.message)
            secret = None
        step = mfa.verify_totp(secret, otp, now, user.mfa_last_step) if secret else None
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
        return AuthEntry(token, user, grants, token.last_used_at, self.cache.stamp(), generation)

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

    def sweep_throttle(self) -> int:
        """Forget failure counters too old to matter (no failure for longer than any of them
        counts, no block running): bookkeeping, so not audited."""
        now = self._clock.now()
        horizon = max(throttle.ACCOUNT_MEMORY, self.limits.address_window, self.limits.lockout_max)
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)
            session.info[BOOKKEEPING] = True
            gone = session.execute(
                delete(LoginThrottle).where(
                    LoginThrottle.last_failure_at.is_(None)
                    | (LoginThrottle.last_failure_at < now - horizon),
                    LoginThrottle.blocked_until.is_(None) | (LoginThrottle.blocked_until <= now),
                )
            )
        return int(gone.rowcount)  # type: ignore[attr-defined]

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
        """Change one's own password; ends the caller's other logins, revokes every API
        token of the account (the one used for this request too) and lifts a
        password-change restriction from this login."""
        actor = require_actor(ctx)
        passwords.check_policy(new, field="new_password", username=actor.username)
        if new == current:
            reason = "must differ from the current password"
            raise InvalidInputError(
                f"new_password {reason}", errors=[FieldError("new_password", reason)]
            )
        self.verify_again(ctx, current, None, action="user.password-change", need_totp=False)
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.get(User, uuid.UUID(actor.user_id))
            assert user is not None
            revoked = revoke_credentials(session, user.id, now, keep_login=actor.token_id)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.password-change",
                    resource_type="user",
                    resource_id=user.username,
                    details=revoked.details(),
                ),
            )
            user.password_hash = self._hashing.hash(new)
            user.must_change_password = False
            # The change lifts only its own restriction: MFA enrollment may still be due.
            needs_mfa = user.role in self._settings.mfa_required_roles and not user.mfa_enabled_at
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == actor.token_id, ApiToken.restriction == "password-change")
                .values(restriction="mfa-enrollment" if needs_mfa else None)
            )

    def reauthenticate(self, ctx: Context, signature: Signature) -> SignatureRecord:
        """Check the signer's password (and one-time code where enrolled) again, as
        21 CFR 11.200 asks of each electronic signature; failures count toward the
        re-authentication lock."""
        actor = require_actor(ctx)
        method = self.verify_again(
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

    def verify_again(
        self, ctx: Context, password: str, otp: str | None, *, action: str, need_totp: bool
    ) -> str:
        """Check the caller's password (and one-time code when ``need_totp`` and enrolled)
        inside a request that already carries their login; returns the method used. Failures
        are audited under ``action`` and lock this user's re-authentication after
        ``lockout_threshold`` in a row (only their own login can make them)."""
        actor = require_actor(ctx)
        now = self._clock.now()
        error: MedopsError | None = None
        method = "password"
        reason = ""
        with self._db.transaction() as session, session.no_autoflush:
            user = session.get(User, uuid.UUID(actor.user_id), with_for_update=True)
            row = self._throttle(session, throttle.reauth_key(actor.user_id))
            counter = _counter(row)
            assert user is not None
            locked = throttle.reauth_locked(counter, now)
            if locked:
                error = TooManyAttemptsError(
                    f"too many failed attempts; try again in {locked} s",
                    retry_after=locked,
                    audited=True,
                )
                reason = "locked after repeated failures"
            elif not self._hashing.verify(user.password_hash, password):
                error = AuthenticationError(
                    "re-authentication failed: wrong password", audited=True
                )
                reason = self._reauth_failed(row, counter, now)
            elif need_totp and user.mfa_enabled_at is not None and not otp:
                # The right password: the caller is told what is missing (not a failure).
                error = MfaRequiredError(
                    "your account has MFA: a signature needs your one-time code too "
                    "(--otp CODE, or answer the prompt)",
                    audited=True,
                )
                reason = "one-time code required"
            elif need_totp and user.mfa_enabled_at is not None:
                second = self._second_factor(session, user, otp, now)
                if second is not None:
                    method = f"password+{second}"
                elif (wait := self._spent_code_wait(user, otp, now)) is not None:
                    # A code that worked moments ago (for the login, say) works once only.
                    error = AuthenticationError(
                        "re-authentication failed: that one-time code was used already "
                        f"(each code works once); wait for the next code, in about {wait} s",
                        audited=True,
                    )
                    reason = "one-time code used already"
                else:
                    error = AuthenticationError(
                        "re-authentication failed: wrong one-time code", audited=True
                    )
                    reason = self._reauth_failed(row, counter, now)
            if error is not None:
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(action=action, outcome=Outcome.FAILURE, reason=reason),
                )
            else:
                counter.failures = 0
                _store(row, counter)
                exempt_from_audit_guard(session)
        if error is not None:
            raise error
        return method

    def _spent_code_wait(self, user: User, otp: str | None, now: datetime) -> int | None:
        """Seconds until the next code when ``otp`` is this user's code of a step already
        spent; None when it is simply wrong."""
        if not otp or user.mfa_secret is None or user.mfa_last_step is None:
            return None
        try:
            secret = self._keys.open(user.id, user.mfa_secret)
        except IntegrityError:
            return None
        step = mfa.verify_totp(secret, otp, now, None)
        if step is None or step > user.mfa_last_step:
            return None
        return mfa.seconds_to_step(user.mfa_last_step + 1, now)

    def _reauth_failed(self, row: LoginThrottle, counter: throttle.Counter, now: datetime) -> str:
        seconds = throttle.reauth_failed(counter, now, self.limits)
        _store(row, counter)
        return f"bad credentials; locked for {seconds} s" if seconds else "bad credentials"


def limits_of(settings: Settings) -> throttle.Limits:
    """The throttling numbers of ``settings``."""
    return throttle.Limits(
        address_failures=settings.login_address_failures,
        address_window=timedelta(seconds=settings.login_address_window_seconds),
        address_block=timedelta(seconds=settings.login_address_block_seconds),
        delay_after=settings.login_delay_after,
        delay_base=settings.login_delay_base_seconds,
        delay_max=settings.login_delay_max_seconds,
        lockout_threshold=settings.lockout_threshold,
        lockout_base=timedelta(seconds=settings.lockout_base_seconds),
        lockout_max=timedelta(seconds=settings.lockout_max_seconds),
    )


def _counter(row: LoginThrottle | None) -> throttle.Counter:
    if row is None:
        return throttle.Counter()
    return throttle.Counter(
        failures=row.failures,
        lockouts=row.lockouts,
        first_failure_at=row.first_failure_at,
        last_failure_at=row.last_failure_at,
        blocked_until=row.blocked_until,
    )


def _store(row: LoginThrottle, counter: throttle.Counter) -> None:
    """Write the counter back to its row (only the columns that changed, so an unchanged
    counter leaves the row clean)."""
    for name in ("failures", "lockouts", "first_failure_at", "last_failure_at", "blocked_until"):
        value = getattr(counter, name)
        if getattr(row, name) != value:
            setattr(row, name, value)


def _refuse_blocked(address: LoginThrottle | None, now: datetime) -> None:
    """Raise 429 when the client address is blocked after repeated failed logins."""
    wait = throttle.address_blocked(_counter(address), now)
    if wait:
        raise TooManyAttemptsError(
            f"too many failed logins from your address; try again in {wait} s",
            retry_after=wait,
        )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
