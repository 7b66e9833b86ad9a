"""Full-stack fixtures: the real app, called through httpx, on each database kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI

from medops.api.app import create_app
from medops.auth.permissions import Role
from medops.config import Settings
from medops.embedded import EmbeddedTransport
from medops.services import Services, build_services
from medops.testing import FixedClock
from tests.conftest import make_user


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services=services)


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = EmbeddedTransport(app)
    with httpx.Client(transport=transport, base_url="https://testserver") as client:
        yield client


@pytest.fixture
def http_from(app: FastAPI) -> Iterator[Callable[[str], httpx.Client]]:
    """``http_from("203.0.113.7")``: a client of the same app whose requests come from that
    address (the ``http`` fixture's come from the loopback)."""
    opened: list[httpx.Client] = []

    def build(address: str) -> httpx.Client:
        transport = EmbeddedTransport(app, client=(address, 40000))
        client = httpx.Client(transport=transport, base_url="https://testserver")
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


@pytest.fixture
def tokens(services: Services) -> dict[Role, str]:
    """One user per role, each with a login token: ``tokens[Role.CLINICIAN]``."""
    return {
        role: make_user(services, f"user-{role.value}".replace("_", "-"), role) for role in Role
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client_for(
    settings: Settings, clock: FixedClock
) -> Iterator[Callable[..., tuple[httpx.Client, Services]]]:
    """Build an app on the same database with some settings changed; yields (client, services)."""
    opened: list[tuple[httpx.Client, Services]] = []

    def build(**overrides: object) -> tuple[httpx.Client, Services]:
        services = build_services(settings.model_copy(update=overrides), clock=clock)
        client = httpx.Client(
            transport=EmbeddedTransport(create_app(services=services)),
            base_url="https://testserver",
        )
        opened.append((client, services))
        return client, services

    yield build
    for client, services in opened:
        client.close()
        services.close()


def login(
    http: httpx.Client, username: str, password: str, otp: str | None = None
) -> httpx.Response:
    form = {"username": username, "password": password}
    if otp is not None:
        form["otp"] = otp
    return http.post("/api/v1/auth/token", data=form)
