"""The SDK's connection: HTTP to a medops server, or the app in this process.

With ``MEDOPS_URL`` set (or ``url=``) it talks to that server; otherwise it runs the app
in-process against ``MEDOPS_HOME`` (``embedded.py``). Either way every call passes the server's
authentication, permission checks and audit. ``_call`` sends a request and checks the answer
against a ``Shape``; an error answer (problem+json) becomes the medops exception the server
raised. Saved logins (one per user and installation) live in ``MEDOPS_HOME/credentials.json``.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

import medops
from medops.auth.schemas import AccessToken
from medops.client.shapes import Shape
from medops.config import Settings, load_settings
from medops.errors import (
    BY_CODE,
    AuthenticationError,
    ConfigurationError,
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

_DICT = Shape(dict[str, Any])


class Transport:
    """The connection to one medops installation as one user (the token's): HTTP to a server,
    or the app in this process; the calls of every domain are built on ``_call``."""

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
            base_url=self.url or "http://medops.client.embedded",
            transport=transport,
            headers=headers,
            timeout=self.settings.request_timeout_seconds,
            verify=_trust(self.settings),
        )

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (and, embedded, stop the in-process app)."""
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

    # --- health ----------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        """The server's readiness (database and audit writer reachable). Public."""
        return self._call("GET", "/readyz", _DICT)

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, method: str, path: str, shape: Shape[T], **kwargs: Any) -> T:
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
            raise error_from(response)
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


def _trust(settings: Settings) -> ssl.SSLContext | bool:
    """What an https server's certificate is checked against: MEDOPS_CA_FILE when set (a
    hospital's private CA), else the system's trust store."""
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"MEDOPS_CA_FILE {settings.ca_file} is not a readable PEM bundle ({exc}); "
            "point it at your CA's certificate or unset it"
        ) from exc


def _embedded_transport(settings: Settings) -> httpx.BaseTransport:
    # Imported here: a remote client never needs the server's stack (and starts faster).
    from sqlalchemy.exc import SQLAlchemyError

    from medops.api.app import create_app
    from medops.client.embedded import EmbeddedTransport
    from medops.db import migrate
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


def error_from(response: httpx.Response) -> MedopsError:
    """The medops exception a problem+json answer stands for (the same class the server
    raised, looked up by the problem's code), with its status and field errors."""
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
