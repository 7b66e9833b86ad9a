"""Full-stack fixtures: the real app, called through httpx, on each database kind."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from medops.api.app import create_app
from medops.auth.permissions import Role
from medops.embedded import EmbeddedTransport
from medops.services import Services
from tests.conftest import make_user


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services=services)


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = EmbeddedTransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def tokens(services: Services) -> dict[Role, str]:
    """One user per role, each with a login token: ``tokens[Role.CLINICIAN]``."""
    return {
        role: make_user(services, f"user-{role.value}".replace("_", "-"), role) for role in Role
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
