"""People made directly through the services (no HTTP), for tests that need a logged-in
user of some role."""

from __future__ import annotations

from medops.auth.schemas import UserCreate
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.permissions import Role
from medops.services import Services
from tests.helpers.http import PASSWORD

__all__ = ["PASSWORD", "SYSTEM_CTX", "make_user"]

SYSTEM_CTX = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))


def make_user(services: Services, username: str, role: Role | str) -> str:
    """Create a user directly through the service and return a fresh login token."""
    services.identity.create_user(
        SYSTEM_CTX,
        UserCreate(
            username=username,
            role=Role(role),
            password=PASSWORD,
            full_name=f"Test {username.title()}",
        ),
    )
    ctx = Context(actor=None, origin=Origin(source_ip="127.0.0.1"))
    return services.logins.login(ctx, username, PASSWORD, kind="login").secret
