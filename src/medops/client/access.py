"""The SDK's identity calls: logging in and out, who you are, users, API tokens, MFA and
break-glass access, mixed into ``medops.Client``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medops.auth.schemas import (
    AccessToken,
    BreakGlassOut,
    Me,
    MfaEnrollmentOut,
    RecoveryCodes,
    RoleMatrix,
    TokenIssued,
    TokenOut,
    UserOut,
)
from medops.client.shapes import Shape
from medops.client.transport import Transport

_ACCESS = Shape(AccessToken)
_ME = Shape(Me)
_USER = Shape(UserOut)
_USERS = Shape(list[UserOut])
_ISSUED = Shape(TokenIssued)
_TOKEN = Shape(TokenOut)
_TOKENS = Shape(list[TokenOut])
_DICT = Shape(dict[str, Any])
_NONE: Shape[None] = Shape(None)
_ROLES = Shape(RoleMatrix)
_ENROLLMENT = Shape(MfaEnrollmentOut)
_RECOVERY = Shape(RecoveryCodes)
_GRANT = Shape(BreakGlassOut)
_GRANTS = Shape(list[BreakGlassOut])


class AccessCalls(Transport):
    """Identity methods of the SDK client."""

    # --- authentication --------------------------------------------------------------------

    def login(
        self, username: str, password: str, *, otp: str | None = None, save: bool = False
    ) -> AccessToken:
        """Exchange a password (and one-time code) for an access token, use it from now on,
        and optionally save it. Raises MfaRequiredError when a code is needed."""
        form = {"username": username, "password": password}
        if otp:
            form["otp"] = otp
        answer = self._call("POST", "/api/v1/auth/token", _ACCESS, data=form)
        self.token = answer.access_token
        if save:
            self._save_token(username, answer)
        return answer

    def logout(self) -> None:
        """End the current login on the server and forget the saved token."""
        self._call("POST", "/api/v1/auth/logout", _NONE)
        self.token = None
        self._forget_token()

    def logout_everywhere(self) -> int:
        """End every login of this user (CLI and browser); returns how many ended."""
        ended = self._call("POST", "/api/v1/auth/sessions/revoke-all", _DICT)["sessions_ended"]
        self.token = None
        self._forget_token()
        return int(ended)

    def sessions(self) -> list[TokenOut]:
        """Your logins (CLI and browser sessions) that have not ended. Any logged-in user."""
        return self._call("GET", "/api/v1/auth/sessions", _TOKENS)

    def whoami(self) -> Me:
        """Who you are: user, role, permissions (and emergency ones), the token in use."""
        return self._call("GET", "/api/v1/auth/me", _ME)

    def roles(self) -> RoleMatrix:
        """Every role with its permissions (the least-privilege matrix). Any logged-in user."""
        return self._call("GET", "/api/v1/auth/roles", _ROLES)

    def change_password(self, current: str, new: str) -> None:
        """Change your own password (``current`` is checked). Your other logins end
        and your API tokens are revoked. Raises InvalidInputError for a weak new password."""
        body = {"current_password": current, "new_password": new}
        self._call("POST", "/api/v1/auth/password", _NONE, json=body)

    def mfa_enroll(self, password: str) -> MfaEnrollmentOut:
        """Start TOTP enrollment; the account's password is checked again."""
        body = {"password": password}
        return self._call("POST", "/api/v1/auth/mfa/enroll", _ENROLLMENT, json=body)

    def mfa_confirm(self, code: str) -> RecoveryCodes:
        """Finish TOTP enrollment with a ``code`` from the authenticator; answers the
        one-time recovery codes (shown once). Raises InvalidInputError for a wrong code."""
        return self._call("POST", "/api/v1/auth/mfa/confirm", _RECOVERY, json={"code": code})

    # --- users -----------------------------------------------------------------------------

    def create_user(
        self, username: str, role: str, password: str, *, full_name: str | None = None
    ) -> UserOut:
        """Create an account with ``role`` (see ``roles()``) and an initial password.
        Needs users:manage; raises ConflictError when the name is taken."""
        body = {"username": username, "role": role, "password": password}
        if full_name:
            body["full_name"] = full_name
        return self._call("POST", "/api/v1/users", _USER, json=body)

    def set_full_name(self, username: str, full_name: str) -> UserOut:
        """Set the full name printed with the user's electronic signatures."""
        body = {"full_name": full_name}
        return self._call("PUT", f"/api/v1/users/{username}/full-name", _USER, json=body)

    def list_users(self) -> list[UserOut]:
        """Every account with its role and status. Needs users:read."""
        return self._call("GET", "/api/v1/users", _USERS)

    def disable_user(self, username: str) -> UserOut:
        """Disable an account: its logins end and its API tokens are revoked. Needs
        users:manage."""
        return self._call("POST", f"/api/v1/users/{username}/disable", _USER)

    def enable_user(self, username: str) -> UserOut:
        """Re-enable a disabled account (its old tokens stay revoked)."""
        return self._call("POST", f"/api/v1/users/{username}/enable", _USER)

    def reset_password(
        self, username: str, temporary_password: str, *, keep_tokens: bool = False
    ) -> UserOut:
        """Set a temporary password; the user's logins end and their API tokens are revoked
        unless ``keep_tokens`` (service accounts only)."""
        body: dict[str, Any] = {"password": temporary_password}
        if keep_tokens:
            body["keep_tokens"] = True
        return self._call("POST", f"/api/v1/users/{username}/password-reset", _USER, json=body)

    def reset_mfa(self, username: str, *, keep_tokens: bool = False) -> UserOut:
        """Remove a user's TOTP; their logins end and their API tokens are revoked unless
        ``keep_tokens`` (service accounts only)."""
        body = {"keep_tokens": True} if keep_tokens else None
        return self._call("POST", f"/api/v1/users/{username}/mfa-reset", _USER, json=body)

    def unlock(self, username: str) -> None:
        """Unlock an account locked by failed logins. Needs users:manage."""
        self._call("POST", f"/api/v1/users/{username}/unlock", _NONE)

    # --- break-glass -----------------------------------------------------------------------

    def breakglass(
        self, permission: str, reason: str, *, minutes: int = 60, resource: str | None = None
    ) -> BreakGlassOut:
        """Take emergency access to ``permission`` for ``minutes`` (audited as break-glass,
        reviewed later by someone with breakglass:review). Needs breakglass:use; at most one
        open grant per user."""
        body = {"permission": permission, "reason": reason, "minutes": minutes}
        if resource:
            body["resource"] = resource
        return self._call("POST", "/api/v1/breakglass", _GRANT, json=body)

    def breakglass_grants(self, *, pending: bool = False) -> list[BreakGlassOut]:
        """Break-glass grants, newest first; only those not yet reviewed with
        ``pending``. Needs breakglass:review."""
        params = {"pending": "true"} if pending else {}
        return self._call("GET", "/api/v1/breakglass", _GRANTS, params=params)

    def review_breakglass(self, grant_id: str, note: str) -> BreakGlassOut:
        """Close a break-glass grant with the reviewer's ``note``. Needs
        breakglass:review; raises NotFoundError for an unknown grant."""
        return self._call(
            "POST", f"/api/v1/breakglass/{grant_id}/review", _GRANT, json={"note": note}
        )

    # --- tokens ----------------------------------------------------------------------------

    def create_token(
        self,
        name: str = "api",
        expires_at: datetime | None = None,
        *,
        for_user: str | None = None,
        scopes: list[str] | None = None,
    ) -> TokenIssued:
        """A new API token for yourself, or for ``for_user`` (needs users:manage); ``scopes``
        narrows it to some of the owner's permissions."""
        body: dict[str, Any] = {"name": name}
        if scopes is not None:
            body["scopes"] = scopes
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        path = f"/api/v1/users/{for_user}/tokens" if for_user else "/api/v1/tokens"
        return self._call("POST", path, _ISSUED, json=body)

    def list_tokens(self) -> list[TokenOut]:
        """Your API tokens (never their secrets). Any logged-in user."""
        return self._call("GET", "/api/v1/tokens", _TOKENS)

    def revoke_token(self, token_id: str) -> TokenOut:
        """Revoke one of your API tokens by its id. Raises NotFoundError."""
        return self._call("DELETE", f"/api/v1/tokens/{token_id}", _TOKEN)
