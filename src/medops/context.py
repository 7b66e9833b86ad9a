"""Who is acting and from where: handed to every use case, recorded in every audit entry."""

from __future__ import annotations

from dataclasses import dataclass, field

from medops.core.permissions import Permission


@dataclass(frozen=True)
class Actor:
    """An authenticated user (or the local system) and how they proved who they are."""

    user_id: str
    username: str
    role: str
    auth_method: str
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    token_id: str | None = None
    # Set while the login may do only one thing first: "password-change" or "mfa-enrollment".
    restriction: str | None = None
    # Permissions held only through active break-glass grants (used, they are audited).
    emergency: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class Origin:
    """Where a request came from."""

    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Context:
    """The actor (None before authentication) and the origin of one action."""

    actor: Actor | None
    origin: Origin


SYSTEM_ACTOR = Actor(user_id="system", username="system", role="system", auth_method="local")
"""The actor of local administration commands run on the server's own files (``medops init``)."""
