"""Input and output shapes of the identity domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from medops.core.permissions import Permission, Role

USERNAME_PATTERN = r"^[a-z][a-z0-9_.-]{1,63}$"
PASSWORD_FIELD = Field(min_length=1, max_length=1024, repr=False)


class UserCreate(BaseModel):
    """A new account: a unique lower-case username, one role, an initial password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="Lower-case login name.")
    role: Role
    password: str = PASSWORD_FIELD
    full_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The person's full name: the printed name of their electronic signatures.",
    )


class FullName(BaseModel):
    """A user's full name, as it is printed with their electronic signatures."""

    model_config = ConfigDict(extra="forbid")

    full_name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class UserOut(BaseModel):
    """A user account as the API shows it (never the password hash or MFA secret)."""

    id: str
    username: str
    role: Role
    active: bool
    created_at: datetime
    disabled_at: datetime | None
    mfa_enabled: bool = False
    must_change_password: bool = False
    full_name: str | None = None


class Me(BaseModel):
    """The caller's identity, role, permissions and how they authenticated."""

    id: str
    username: str
    role: str
    auth_method: str
    token_id: str | None
    permissions: list[str]
    emergency_permissions: list[str] = []
    restriction: str | None = None


class RoleMatrix(BaseModel):
    """The role -> permissions table, as the server enforces it."""

    permissions: dict[str, str]
    roles: dict[str, list[str]]


class TokenCreate(BaseModel):
    """A new API token; default expiry 90 days; scopes narrow the owner's permissions."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="api", min_length=1, max_length=100)
    expires_at: datetime | None = Field(
        default=None, description="UTC expiry; must be in the future and within the maximum."
    )
    scopes: list[Permission] | None = Field(
        default=None, description="Subset of the owner's permissions; unset means all of them."
    )


class TokenOut(BaseModel):
    """A token's metadata (never its secret)."""

    id: str
    name: str
    kind: str
    username: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None
    scopes: list[str] | None = None


class TokenIssued(TokenOut):
    """A token just created: the only time its secret is shown."""

    token: str


class AccessToken(BaseModel):
    """The OAuth2 password-flow answer of POST /api/v1/auth/token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_at: datetime
    restriction: str | None = None


class SessionStarted(BaseModel):
    """A browser session: the cookie carries the secret; send csrf_token on every change."""

    csrf_token: str
    expires_at: datetime
    restriction: str | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = PASSWORD_FIELD
    new_password: str = PASSWORD_FIELD


KEEP_TOKENS_FIELD = Field(
    default=False,
    description="Keep the account's API tokens (service accounts only; refused for people). "
    "By default every API token is revoked with the old credentials.",
)


class PasswordReset(BaseModel):
    """An admin sets a temporary password; the user must change it at next login."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD
    keep_tokens: bool = KEEP_TOKENS_FIELD


class MfaReset(BaseModel):
    """An admin removes a user's TOTP (a lost phone); their logins and tokens end."""

    model_config = ConfigDict(extra="forbid")

    keep_tokens: bool = KEEP_TOKENS_FIELD


class MfaEnroll(BaseModel):
    """Starting MFA enrollment needs the account's password again: a stolen login or token
    alone cannot enroll another authenticator."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD


class MfaEnrollmentOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_png_data_uri: str


class MfaConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=16)


class RecoveryCodes(BaseModel):
    """One-time recovery codes: shown once, stored hashed."""

    codes: list[str]


class Signature(BaseModel):
    """Re-authentication for an electronic signature (21 CFR 11.200): password, the one-time
    code where MFA is enrolled, and the meaning of the signature."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD
    otp: str | None = Field(default=None, max_length=16)
    meaning: str = Field(min_length=3, max_length=200)


class SignatureRecord(BaseModel):
    """Who signed, when, how they re-authenticated, and what the signature means."""

    user_id: str
    username: str
    role: str
    signed_at: datetime
    method: str
    meaning: str


class BreakGlassRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permission: Permission
    reason: str = Field(min_length=10, max_length=500)
    resource: str | None = Field(default=None, max_length=128)
    minutes: int = Field(default=60, ge=1, le=24 * 60)


class BreakGlassOut(BaseModel):
    id: str
    username: str
    permission: str
    resource: str | None
    reason: str
    granted_at: datetime
    expires_at: datetime
    active: bool
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None


class BreakGlassReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=3, max_length=500)
