"""Use cases of the identity domain: accounts, passwords and API tokens."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth import passwords, throttle, tokens
from medops.auth.common import (
    LOGIN_KINDS,
    require_actor,
    revoke_credentials,
    token_out,
    user_out,
)
from medops.auth.schemas import TokenCreate, TokenIssued, TokenOut, UserCreate, UserOut
from medops.auth.tables import ApiToken, LoginThrottle, RecoveryCode, User
from medops.clock import Clock
from medops.config import Settings
from medops.context import Context
from medops.core.permissions import Permission, Role, permissions_of
from medops.db.engine import Database
from medops.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    InvalidInputError,
    NotFoundError,
)

DEFAULT_TOKEN_DAYS = 90


class IdentityService:
    """Creates, disables and resets accounts; issues, lists and revokes API tokens."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        settings: Settings,
        hashing: passwords.PasswordHashing = passwords.OWASP_HASHING,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self._hashing = hashing

    # --- users -------------------------------------------------------------------------

    def create_user(self, ctx: Context, data: UserCreate) -> UserOut:
        """Create an account; the username must be new and the password meet the policy."""
        passwords.check_policy(data.password, username=data.username)
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.create",
                    resource_type="user",
                    resource_id=data.username,
                    details={"after": {"username": data.username, "role": data.role.value}},
                ),
            )
            user = self._insert_user(session, data)
        return user_out(user)

    def bootstrap_admin(self, ctx: Context, username: str, password: str) -> UserOut:
        """Create the first admin; refused once any user exists."""
        passwords.check_policy(password, username=username)
        data = UserCreate(username=username, role=Role.ADMIN, password=password)
        with self._db.transaction() as session:
            if session.scalar(select(func.count()).select_from(User)):
                raise ConflictError("users already exist; the first admin was created before")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.bootstrap-admin",
                    resource_type="user",
                    resource_id=username,
                    details={"after": {"username": username, "role": Role.ADMIN.value}},
                ),
            )
            user = self._insert_user(session, data)
        return user_out(user)

    def _insert_user(self, session: Session, data: UserCreate) -> User:
        taken = ConflictError(
            f"user {data.username!r} already exists",
            errors=[FieldError("username", "already taken")],
        )
        if session.scalar(select(User.id).where(User.username == data.username)) is not None:
            raise taken
        user = User(
            id=uuid.uuid4(),
            username=data.username,
            full_name=data.full_name.strip() if data.full_name else None,
            role=data.role.value,
            password_hash=self._hashing.hash(data.password),
            created_at=self._clock.now(),
            must_change_password=False,
        )
        session.add(user)
        try:
            session.flush()
        except DBIntegrityError:
            raise taken from None
        return user

    def list_users(self) -> list[UserOut]:
        """All accounts, by username."""
        with self._db.session() as session:
            return [user_out(u) for u in session.scalars(select(User).order_by(User.username))]

    def _user(self, session: Session, username: str, *, for_update: bool = False) -> User:
        query = select(User).where(User.username == username)
        user = session.scalar(query.with_for_update() if for_update else query)
        if user is None:
            raise NotFoundError(f"user {username!r} does not exist")
        return user

    def disable_user(self, ctx: Context, username: str) -> UserOut:
        """Disable an account and revoke its tokens at once; the last active admin stays."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = self._user(session, username)
            if user.disabled_at is not None:
                raise ConflictError(f"user {username!r} is already disabled")
            if user.role == Role.ADMIN and self._active_admins(session) <= 1:
                raise ConflictError("refusing to disable the last active admin")
            live_tokens = [token for token in user.tokens if token.revoked_at is None]
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.disable",
                    resource_type="user",
                    resource_id=username,
                    details={
                        "before": {"active": True},
                        "after": {"active": False},
                        "tokens_revoked": len(live_tokens),
                    },
                ),
            )
            user.disabled_at = now
            for token in live_tokens:
                token.revoked_at = now
        return user_out(user)

    def enable_user(self, ctx: Context, username: str) -> UserOut:
        """Re-enable a disabled account. Its old tokens stay revoked: the user logs in again
        (a service account gets new tokens from an admin)."""
        with self._db.transaction() as session:
            user = self._user(session, username, for_update=True)
            if user.disabled_at is None:
                raise ConflictError(f"user {username!r} is not disabled")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.enable",
                    resource_type="user",
                    resource_id=username,
                    details={
                        "before": {"active": False, "disabled_at": user.disabled_at.isoformat()},
                        "after": {"active": True},
                    },
                ),
            )
            user.disabled_at = None
        return user_out(user)

    @staticmethod
    def _active_admins(session: Session) -> int:
        # FOR UPDATE (PostgreSQL) locks the admin rows, so two admins disabling each other
        # at once cannot both see "another admin remains"; SQLite serialises write
        # transactions instead (BEGIN IMMEDIATE).
        query = (
            select(User.id)
            .where(User.role == Role.ADMIN, User.disabled_at.is_(None))
            .with_for_update()
        )
        return len(session.scalars(query).all())

    def reset_password(
        self, ctx: Context, username: str, temporary: str, *, keep_tokens: bool = False
    ) -> UserOut:
        """Set a temporary password that must be changed at next login; ends all logins and
        revokes every API token (``keep_tokens``: a service account's stay, on purpose)."""
        passwords.check_policy(temporary, username=username)
        now = self._clock.now()
        with self._db.transaction() as session:
            user = self._user(session, username, for_update=True)
            self._check_keep_tokens(user, keep_tokens)
            revoked = revoke_credentials(session, user.id, now, keep_api_tokens=keep_tokens)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.password-reset",
                    resource_type="user",
                    resource_id=username,
                    details={"after": {"must_change_password": True}} | revoked.details(),  # nosec B105 - a flag, not a password
                ),
            )
            user.password_hash = self._hashing.hash(temporary)
            user.must_change_password = True
        return user_out(user)

    @staticmethod
    def _check_keep_tokens(user: User, keep_tokens: bool) -> None:
        """Only a service account's API tokens may outlive a reset of its credentials: a
        person's tokens would keep working for whoever had the old password or device."""
        if keep_tokens and user.role != Role.SERVICE:
            reason = "only a service account's tokens may be kept"
            raise InvalidInputError(
                f"keep_tokens: {reason}; {user.username!r} is a {user.role}",
                errors=[FieldError("keep_tokens", reason)],
            )

    def set_full_name(self, ctx: Context, username: str, full_name: str) -> UserOut:
        """Set the full name printed with a user's electronic signatures (audited)."""
        with self._db.transaction() as session:
            user = self._user(session, username)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.set-name",
                    resource_type="user",
                    resource_id=username,
                    details={
                        "before": {"full_name": user.full_name},
                        "after": {"full_name": full_name.strip()},
                    },
                ),
            )
            user.full_name = full_name.strip()
        return user_out(user)

    def reset_mfa(self, ctx: Context, username: str, *, keep_tokens: bool = False) -> UserOut:
        """Remove a user's TOTP and recovery codes (a lost phone); they enroll again. The lost
        authenticator may be in someone else's hands: every login ends and every API token
        is revoked (``keep_tokens``: a service account's stay, on purpose)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = self._user(session, username, for_update=True)
            if user.mfa_secret is None:
                raise ConflictError(f"user {username!r} has no MFA to reset")
            self._check_keep_tokens(user, keep_tokens)
            revoked = revoke_credentials(session, user.id, now, keep_api_tokens=keep_tokens)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.mfa-reset",
                    resource_type="user",
                    resource_id=username,
                    details={"before": {"mfa_enabled": user.mfa_enabled_at is not None}}
                    | revoked.details(),
                ),
            )
            user.mfa_secret = None
            user.mfa_enabled_at = None
            user.mfa_last_step = None
            session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        return user_out(user)

    def unlock(self, ctx: Context, username: str) -> None:
        """Clear the slowing of an account's logins and the lock of its re-authentication
        (a blocked client address is not touched: it ends by itself)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username))
            keys = [throttle.account_key(username)]
            if user is not None:
                keys.append(throttle.reauth_key(str(user.id)))
            rows = session.scalars(
                select(LoginThrottle).where(LoginThrottle.key.in_(keys)).with_for_update()
            ).all()
            before: dict[str, object] = {}
            for row in rows:
                if row.key.startswith("account:") and row.failures:
                    before["failed_logins"] = row.failures
                if row.key.startswith("reauth:"):
                    if row.blocked_until is not None and row.blocked_until > now:
                        before["reauthentication_locked_until"] = row.blocked_until.isoformat()
                    if row.failures:
                        before["failed_reauthentications"] = row.failures
            if not before:
                raise ConflictError(f"{username!r} is neither slowed nor locked")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="user.unlock",
                    resource_type="user",
                    resource_id=username if user is not None else "unknown",
                    details={"before": before},
                ),
            )
            for row in rows:
                session.delete(row)

    # --- API tokens ----------------------------------------------------------------------

    def create_token(
        self, ctx: Context, data: TokenCreate, *, for_username: str | None = None
    ) -> TokenIssued:
        """Issue an API token for the caller, or for ``for_username`` (an admin issuing one to
        a service account); its secret is returned once and never stored."""
        actor = require_actor(ctx)
        now = self._clock.now()
        expires_at = data.expires_at or now + timedelta(days=DEFAULT_TOKEN_DAYS)
        self._check_expiry(now, expires_at)
        with self._db.transaction() as session:
            if for_username is None:
                user = session.get(User, uuid.UUID(actor.user_id))
                if user is None:  # deleted between authentication and now
                    raise AuthenticationError("account no longer exists")
                # Never wider than the calling token: a scoped token mints scoped tokens.
                held = actor.permissions
            else:
                user = self._user(session, for_username)
                if user.role != Role.SERVICE:
                    reason = "tokens are issued only to service accounts; people log in"
                    raise InvalidInputError(
                        f"{for_username!r}: {reason}", errors=[FieldError("username", reason)]
                    )
                if not user.is_active:
                    raise ConflictError(f"user {for_username!r} is disabled")
                held = permissions_of(user.role)
            scopes = self._check_scopes(user, data.scopes, held)
            secret = tokens.new_secret()
            token = ApiToken(
                id=tokens.new_token_id(),
                user_id=user.id,
                name=data.name,
                kind="api",
                token_hash=tokens.digest(secret),
                created_at=now,
                expires_at=expires_at,
                scopes=json.dumps(scopes) if scopes is not None else None,
            )
            session.add(token)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="token.create",
                    resource_type="token",
                    resource_id=token.id,
                    details={
                        "owner": user.username,
                        "after": {
                            "name": data.name,
                            "expires_at": expires_at.isoformat(),
                            "scopes": scopes,
                        },
                    },
                ),
            )
            return TokenIssued(token=secret, **token_out(token, user.username).model_dump())

    @staticmethod
    def _check_scopes(
        user: User, scopes: list[Permission] | None, held: frozenset[Permission]
    ) -> list[str] | None:
        """The token's scopes: a subset of what the issuer's token may pass on (``held``);
        unset means all of ``held``, recorded explicitly when that is less than the role."""
        if scopes is None:
            return None if held >= permissions_of(user.role) else sorted(p.value for p in held)
        beyond = sorted(p.value for p in set(scopes) - held)
        if beyond:
            reason = f"{', '.join(beyond)} not held by the issuing token or role {user.role!r}"
            raise InvalidInputError(
                f"scopes must be a subset of the owner's permissions: {reason}",
                errors=[FieldError("scopes", reason)],
            )
        return sorted({p.value for p in scopes})

    def _check_expiry(self, now: datetime, expires_at: datetime) -> None:
        if expires_at.tzinfo is None:
            reason = "must include a timezone (UTC)"
        elif expires_at <= now:
            reason = "must be in the future"
        elif expires_at > now + timedelta(days=self._settings.api_token_max_days):
            reason = f"must be within {self._settings.api_token_max_days} days"
        else:
            return
        raise InvalidInputError(f"expires_at {reason}", errors=[FieldError("expires_at", reason)])

    def list_tokens(self, ctx: Context) -> list[TokenOut]:
        """The caller's tokens, newest first (logins and browser sessions included)."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            rows = session.scalars(
                select(ApiToken)
                .where(ApiToken.user_id == uuid.UUID(actor.user_id))
                .order_by(ApiToken.created_at.desc(), ApiToken.id)
            )
            return [token_out(t, actor.username) for t in rows]

    def revoke_token(self, ctx: Context, token_id: str) -> TokenOut:
        """Revoke a token now: one's own, or anyone's with ``users:manage``."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = session.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(ApiToken.id == token_id)
            ).first()
            if row is None:
                raise NotFoundError(f"token {token_id!r} does not exist")
            token, owner = row
            if str(owner.id) != actor.user_id and not actor.can(Permission.USERS_MANAGE):
                # Do not confirm that another user's token exists.
                raise NotFoundError(f"token {token_id!r} does not exist")
            if token.revoked_at is not None:
                raise ConflictError(f"token {token_id!r} is already revoked")
            token.revoked_at = self._clock.now()
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="session.revoke" if token.kind in LOGIN_KINDS else "token.revoke",
                    resource_type="token",
                    resource_id=token_id,
                    details={"owner": owner.username, "kind": token.kind},
                ),
            )
            return token_out(token, owner.username)
