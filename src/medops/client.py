"""The medops SDK: one ``Client`` over HTTP, remote or embedded.

With ``MEDOPS_URL`` set (or ``url=``) it talks to that server; otherwise it runs the app
in-process against ``MEDOPS_HOME``. Either way every call passes the server's authentication,
permission checks and audit. The CLI is built only on this class.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import TypeAdapter

import medops
from medops.audit.schemas import AuditPage
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
from medops.client_monitoring import MonitoringCalls
from medops.client_registry import RegistryCalls
from medops.client_serving import ServingCalls
from medops.config import Settings, load_settings
from medops.errors import (
    BY_CODE,
    AuthenticationError,
    ConnectionFailedError,
    FieldError,
    MedopsError,
    NotInitializedError,
    RemoteError,
    ShedError,
)
from medops.files import write_private

EMBEDDED_KEY = "embedded"
T = TypeVar("T")

_ACCESS = TypeAdapter(AccessToken)
_ME = TypeAdapter(Me)
_USER = TypeAdapter(UserOut)
_USERS = TypeAdapter(list[UserOut])
_ISSUED = TypeAdapter(TokenIssued)
_TOKEN = TypeAdapter(TokenOut)
_TOKENS = TypeAdapter(list[TokenOut])
_AUDIT_PAGE = TypeAdapter(AuditPage)
_DICT = TypeAdapter(dict[str, Any])
_NONE = TypeAdapter(None)
_ROLES = TypeAdapter(RoleMatrix)
_ENROLLMENT = TypeAdapter(MfaEnrollmentOut)
_RECOVERY = TypeAdapter(RecoveryCodes)
_GRANT = TypeAdapter(BreakGlassOut)
_GRANTS = TypeAdapter(list[BreakGlassOut])


class Client(RegistryCalls, ServingCalls, MonitoringCalls):
    """Talks to one medops installation as one user (the token's)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.url = url if url is not None else self.settings.url
        self.token = token or self.settings.token or self._saved_token()
        headers = {"user-agent": f"medops-sdk/{medops.__version__}"}
        if transport is None and self.url is None:
            transport = _embedded_transport(self.settings)
        self.embedded = self.url is None
        self._http = httpx.Client(
            base_url=self.url or "http://medops.embedded",
            transport=transport,
            headers=headers,
            timeout=self.settings.request_timeout_seconds,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
        return self._call("GET", "/api/v1/auth/sessions", _TOKENS)

    def whoami(self) -> Me:
        return self._call("GET", "/api/v1/auth/me", _ME)

    def roles(self) -> RoleMatrix:
        return self._call("GET", "/api/v1/auth/roles", _ROLES)

    def change_password(self, current: str, new: str) -> None:
        body = {"current_password": current, "new_password": new}
        self._call("POST", "/api/v1/auth/password", _NONE, json=body)

    def mfa_enroll(self, password: str) -> MfaEnrollmentOut:
        """Start TOTP enrollment; the account's password is checked again."""
        body = {"password": password}
        return self._call("POST", "/api/v1/auth/mfa/enroll", _ENROLLMENT, json=body)

    def mfa_confirm(self, code: str) -> RecoveryCodes:
        return self._call("POST", "/api/v1/auth/mfa/confirm", _RECOVERY, json={"code": code})

    # --- users -----------------------------------------------------------------------------

    def create_user(
        self, username: str, role: str, password: str, *, full_name: str | None = None
    ) -> UserOut:
        body = {"username": username, "role": role, "password": password}
        if full_name:
            body["full_name"] = full_name
        return self._call("POST", "/api/v1/users", _USER, json=body)

    def set_full_name(self, username: str, full_name: str) -> UserOut:
        """Set the full name printed with the user's electronic signatures."""
        body = {"full_name": full_name}
        return self._call("PUT", f"/api/v1/users/{username}/full-name", _USER, json=body)

    def list_users(self) -> list[UserOut]:
        return self._call("GET", "/api/v1/users", _USERS)

    def disable_user(self, username: str) -> UserOut:
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
        self._call("POST", f"/api/v1/users/{username}/unlock", _NONE)

    # --- break-glass -----------------------------------------------------------------------

    def breakglass(
        self, permission: str, reason: str, *, minutes: int = 60, resource: str | None = None
    ) -> BreakGlassOut:
        body = {"permission": permission, "reason": reason, "minutes": minutes}
        if resource:
            body["resource"] = resource
        return self._call("POST", "/api/v1/breakglass", _GRANT, json=body)

    def breakglass_grants(self, *, pending: bool = False) -> list[BreakGlassOut]:
        params = {"pending": "true"} if pending else {}
        return self._call("GET", "/api/v1/breakglass", _GRANTS, params=params)

    def review_breakglass(self, grant_id: str, note: str) -> BreakGlassOut:
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
        return self._call("GET", "/api/v1/tokens", _TOKENS)

    def revoke_token(self, token_id: str) -> TokenOut:
        return self._call("DELETE", f"/api/v1/tokens/{token_id}", _TOKEN)

    # --- audit -----------------------------------------------------------------------------

    def audit_events(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        filters: Mapping[str, str | datetime] | None = None,
    ) -> AuditPage:
        """Search the audit trail, newest first. Filters: actor, action, resource_type,
        resource_id, patient, outcome, since, until."""
        params = _params(filters) | {"limit": limit}
        if before is not None:
            params["before"] = before
        return self._call("GET", "/api/v1/audit/events", _AUDIT_PAGE, params=params)

    def audit_export(
        self, fmt: str = "jsonl", filters: Mapping[str, str | datetime] | None = None
    ) -> bytes:
        """Every matching record as JSON lines, CSV or a FHIR R4 Bundle (``fmt``)."""
        params = _params(filters) | {"format": fmt}
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self._http.get("/api/v1/audit/export", params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionFailedError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response.content

    # --- health ----------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        return self._call("GET", "/readyz", _DICT)

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, method: str, path: str, shape: TypeAdapter[T], **kwargs: Any) -> T:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204:
            return shape.validate_python(None)
        return shape.validate_json(response.content)

    def _raw(self, method: str, path: str, **kwargs: Any) -> bytes:
        return self._send(method, path, **kwargs).content

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.token and self.settings.profile and path != "/api/v1/auth/token":
            raise AuthenticationError(
                f"no saved login for {self.settings.profile!r}: run "
                f"'medops login --username {self.settings.profile}'"
            )
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        headers |= kwargs.pop("headers", None) or {}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailedError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _credentials_key(self) -> str:
        return self.url or EMBEDDED_KEY

    def _read_credentials(self) -> dict[str, Any]:
        path = self.settings.credentials_file
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def saved_logins(self) -> tuple[str | None, dict[str, dict[str, str]]]:
        """The logins saved for this installation: (the current user, {user: entry})."""
        entry = self._read_credentials().get(self._credentials_key())
        if not isinstance(entry, dict):
            return None, {}
        if "profiles" not in entry:  # one login, as saved before profiles
            user = entry.get("username")
            return (user, {user: entry}) if isinstance(user, str) else (None, {})
        profiles = {
            name: value
            for name, value in (entry.get("profiles") or {}).items()
            if isinstance(value, dict)
        }
        current = entry.get("current")
        return (current if isinstance(current, str) else None), profiles

    def _saved_token(self) -> str | None:
        current, profiles = self.saved_logins()
        wanted = self.settings.profile or current
        if wanted is None:
            return None
        if wanted not in profiles:
            return None
        token = profiles[wanted].get("token")
        return token if isinstance(token, str) else None

    def _save_token(self, username: str, answer: AccessToken) -> None:
        data = self._read_credentials()
        _current, profiles = self.saved_logins()
        profiles[username] = {
            "username": username,
            "token": answer.access_token,
            "expires_at": answer.expires_at.isoformat(),
        }
        data[self._credentials_key()] = {"current": username, "profiles": profiles}
        _write_private(self.settings.credentials_file, json.dumps(data, indent=2))

    def _forget_token(self) -> None:
        """Forget the login in use (the profile chosen, else the current one)."""
        data = self._read_credentials()
        current, profiles = self.saved_logins()
        gone = self.settings.profile or current
        if gone is None or profiles.pop(gone, None) is None:
            return
        if current == gone:
            current = next(iter(sorted(profiles)), None)
        data[self._credentials_key()] = {"current": current, "profiles": profiles}
        _write_private(self.settings.credentials_file, json.dumps(data, indent=2))


def _params(filters: Mapping[str, str | datetime] | None) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in (filters or {}).items()
    }


def _embedded_transport(settings: Settings) -> httpx.BaseTransport:
    # Imported here: a remote client never needs the server's stack (and starts faster).
    from sqlalchemy.exc import SQLAlchemyError

    from medops.api.app import create_app
    from medops.db import migrate
    from medops.embedded import EmbeddedTransport
    from medops.services import build_services

    if settings.database_url is None and not (settings.home / "medops.db").exists():
        raise NotInitializedError(
            f"no medops installation in {settings.home.resolve()}: run 'medops init' "
            "(or set MEDOPS_HOME, or MEDOPS_URL for a server)"
        )
    services = build_services(settings)
    try:
        if not migrate.is_current(services.db):
            raise NotInitializedError("the database schema is not current: run 'medops db upgrade'")
    except MedopsError:
        services.close()
        raise
    except SQLAlchemyError as exc:
        services.close()
        raise NotInitializedError(f"cannot open the database: {type(exc).__name__}") from None
    return EmbeddedTransport(create_app(services=services, owns_services=True))


def _error_from(response: httpx.Response) -> MedopsError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    code = str(problem.get("type", "")).rpartition(":")[2]
    detail = str(problem.get("detail") or f"HTTP {response.status_code}")
    errors = [
        FieldError(str(e.get("field", "?")), str(e.get("reason", "")))
        for e in problem.get("errors", [])
        if isinstance(e, dict)
    ]
    error = BY_CODE.get(code, RemoteError)(detail, errors=errors)
    error.status = response.status_code
    if isinstance(error, ShedError):
        with contextlib.suppress(ValueError):
            error.retry_after = float(response.headers.get("retry-after", error.retry_after))
    return error


def _write_private(path: Path, text: str) -> None:
    write_private(path, text)
