"""Input and output shapes of the identity domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from medops.auth.permissions import Role

USERNAME_PATTERN = r"^[a-z][a-z0-9_.-]{1,63}$"


class UserCreate(BaseModel):
    """A new account: a unique lower-case username, one role, an initial password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="Lower-case login name.")
    role: Role
    password: str = Field(min_length=1, max_length=1024, repr=False)


class UserOut(BaseModel):
    """A user account as the API shows it (never the password hash)."""

    id: str
    username: str
    role: Role
    active: bool
    created_at: datetime
    disabled_at: datetime | None


class Me(BaseModel):
    """The caller's identity, role, permissions and how they authenticated."""

    id: str
    username: str
    role: str
    auth_method: str
    token_id: str | None
    permissions: list[str]


class TokenCreate(BaseModel):
    """A new API token for the caller; default expiry 90 days."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="api", min_length=1, max_length=100)
    expires_at: datetime | None = Field(
        default=None,
        description="UTC expiry; must be in the future and within the maximum.",
    )


class TokenOut(BaseModel):
    """An API token's metadata (never its secret)."""

    id: str
    name: str
    kind: str
    username: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    """A token just created: the only time its secret is shown."""

    token: str


class AccessToken(BaseModel):
    """The OAuth2 password-flow answer of POST /api/v1/auth/token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_at: datetime
