"""Use cases of the identity domain: accounts, logins and API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService
from medops.auth import passwords, tokens
from medops.auth.models import ApiToken, User
from medops.auth.permissions import Permission, Role, permissions_of
from medops.auth.schemas import (
    AccessToken,
    TokenCreate,
    TokenIssued,
    TokenOut,
    UserCreate,
    UserOut,
)
from medops.clock import Clock
from medops.config import Settings
from medops.context import Actor, Context
from medops.db.engine import Database
from medops.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    InvalidInputError,
    NotFoundError,
)

DEFAULT_TOKEN_DAYS = 90
_BAD_LOGIN = "invalid username or password"


class IdentityService:
    """Creates and disables users, checks passwords, issues and resolves bearer tokens."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings

    # --- users -------------------------------------------------------------------------

    def create_user(self, ctx: Context, data: UserCreate) -> UserOut:
        """Create an account; the username must be new and the password meet the policy."""
        passwords.check_policy(data.password)
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
        return _user_out(user)

    def bootstrap_admin(self, ctx: Context, username: str, password: str) -> UserOut:
        """Create the first admin; refused once any user exists."""
        passwords.check_policy(password)
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
        return _user_out(user)

    def _insert_user(self, session: Session, data: UserCreate) -> User:
        if session.scalar(select(User.id).where(User.username == data.username)) is not None:
            raise ConflictError(
                f"user {data.username!r} already exists",
                errors=[FieldError("username", "already taken")],
            )
        user = User(
            id=uuid.uuid4(),
            username=data.username,
            role=data.role.value,
            password_hash=passwords.hash_password(data.password),
            created_at=self._clock.now(),
        )
        session.add(user)
        try:
            session.flush()
        except DBIntegrityError:
            raise ConflictError(
                f"user {data.username!r} already exists",
                errors=[FieldError("username", "already taken")],
            ) from None
        return user

    def list_users(self) -> list[UserOut]:
        """All accounts, by username."""
        with self._db.session() as session:
            return [_user_out(u) for u in session.scalars(select(User).order_by(User.username))]

    def disable_user(self, ctx: Context, username: str) -> UserOut:
        """Disable an account and revoke its tokens at once; the last active admin stays."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFoundError(f"user {username!r} does not exist")
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
        return _user_out(user)

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

    # --- authentication ----------------------------------------------------------------

    def login(self, ctx: Context, username: str, password: str) -> AccessToken:
        """Check a password and issue a short-lived access token; every try is audited."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username))
            ok = passwords.verify_password(user.password_hash if user else None, password)
            if user is None or not ok or not user.is_active:
                reason = "disabled account" if user is not None and ok else _BAD_LOGIN
                self._audit.record(
                    session,
                    Context(actor=None, origin=ctx.origin),
                    AuditEntry(
                        action="auth.login",
                        outcome=Outcome.FAILURE,
                        resource_type="user",
                        resource_id=username[:128],
                        reason=reason,
                    ),
                )
                failed = True
            else:
                secret, token = self._new_token(
                    user, "login", "login", now + self._settings.login_token_ttl
                )
                session.add(token)
                actor = _actor(user, "password", token.id)
                self._audit.record(
                    session,
                    Context(actor=actor, origin=ctx.origin),
                    AuditEntry(action="auth.login", resource_type="token", resource_id=token.id),
                )
                failed = False
        if failed:
            # Same answer for unknown user, wrong password and disabled account.
            raise AuthenticationError(_BAD_LOGIN, audited=True)
        return AccessToken(access_token=secret, expires_at=token.expires_at)

    def authenticate(self, secret: str) -> Actor:
        """The actor a bearer token stands for; raises when it is unknown, expired or revoked."""
        now = self._clock.now()
        with self._db.session() as session:
            row = session.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(ApiToken.token_hash == tokens.digest(secret))
            ).first()
        if row is None:
            raise AuthenticationError("invalid token")
        token, user = row
        if token.revoked_at is not None:
            raise AuthenticationError("token has been revoked")
        if token.expires_at <= now:
            raise AuthenticationError("token has expired")
        if not user.is_active:
            raise AuthenticationError("account is disabled")
        return _actor(user, "token" if token.kind == "api" else "password", token.id)

    # --- API tokens ----------------------------------------------------------------------

    def create_token(
        self, ctx: Context, data: TokenCreate, *, for_username: str | None = None
    ) -> TokenIssued:
        """Issue an API token for the caller, or for ``for_username`` (an admin issuing one to
        a service account); its secret is returned once and never stored."""
        actor = _require_actor(ctx)
        now = self._clock.now()
        expires_at = data.expires_at or now + timedelta(days=DEFAULT_TOKEN_DAYS)
        self._check_expiry(now, expires_at)
        with self._db.transaction() as session:
            if for_username is None:
                user = session.get(User, uuid.UUID(actor.user_id))
                if user is None:  # deleted between authentication and now
                    raise AuthenticationError("account no longer exists")
            else:
                user = session.scalar(select(User).where(User.username == for_username))
                if user is None:
                    raise NotFoundError(f"user {for_username!r} does not exist")
                if not user.is_active:
                    raise ConflictError(f"user {for_username!r} is disabled")
            secret, token = self._new_token(user, data.name, "api", expires_at)
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
                        "after": {"name": data.name, "expires_at": expires_at.isoformat()},
                    },
                ),
            )
            return TokenIssued(token=secret, **_token_out(token, user.username).model_dump())

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
        """The caller's API tokens, newest first (login tokens included)."""
        actor = _require_actor(ctx)
        with self._db.session() as session:
            rows = session.scalars(
                select(ApiToken)
                .where(ApiToken.user_id == uuid.UUID(actor.user_id))
                .order_by(ApiToken.created_at.desc(), ApiToken.id)
            )
            return [_token_out(t, actor.username) for t in rows]

    def revoke_token(self, ctx: Context, token_id: str) -> TokenOut:
        """Revoke a token now: one's own, or anyone's with ``users:manage``."""
        actor = _require_actor(ctx)
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
                    action="token.revoke",
                    resource_type="token",
                    resource_id=token_id,
                    details={"owner": owner.username},
                ),
            )
            return _token_out(token, owner.username)

    def _new_token(
        self, user: User, name: str, kind: str, expires_at: datetime
    ) -> tuple[str, ApiToken]:
        secret = tokens.new_secret()
        token = ApiToken(
            id=tokens.new_token_id(),
            user_id=user.id,
            name=name,
            kind=kind,
            token_hash=tokens.digest(secret),
            created_at=self._clock.now(),
            expires_at=expires_at,
        )
        return secret, token


def _require_actor(ctx: Context) -> Actor:
    if ctx.actor is None:
        raise AuthenticationError("authentication required")
    return ctx.actor


def _actor(user: User, method: str, token_id: str | None) -> Actor:
    return Actor(
        user_id=str(user.id),
        username=user.username,
        role=user.role,
        auth_method=method,
        permissions=permissions_of(user.role),
        token_id=token_id,
    )


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=str(user.id),
        username=user.username,
        role=Role(user.role),
        active=user.is_active,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
    )


def _token_out(token: ApiToken, username: str) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        kind=token.kind,
        username=username,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )
