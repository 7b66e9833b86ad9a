"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from MEDOPS_TEST_POSTGRES_URL (a URL whose user may create databases). Each
run creates a template database migrated once, gives every test its own copy, and drops them
all at the end. Unset, the PostgreSQL cases skip with a visible reason; with
MEDOPS_REQUIRE_POSTGRES=1 (as in .ci/run) a missing URL or any skipped PostgreSQL case fails
the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medops.api.app import create_app
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.db import migrate
from medops.db.engine import Database
from medops.services import Services, build_services
from medops.testing import FAST_PASSWORD_HASHING, FixedClock
from tests.helpers import model_data
from tests.helpers.http import bearer
from tests.helpers.people import make_user
from tests.helpers.postgres import PgServer
from tests.helpers.registry import NAME, approved, deploy, promote
from tests.helpers.s3 import MotoServer, moto_server

PG_ENV = "MEDOPS_TEST_POSTGRES_URL"
REQUIRE_PG_ENV = "MEDOPS_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _require_pg() -> bool:
    return os.environ.get(REQUIRE_PG_ENV) == "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    if _require_pg() and not _pg_admin_url():
        raise pytest.UsageError(f"{REQUIRE_PG_ENV}=1 but {PG_ENV} is not set")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many database cases ran on each backend (CI shows both)."""
    passed = terminalreporter.stats.get("passed", [])
    counts = {b: sum(f"[{b}" in r.nodeid or f"-{b}" in r.nodeid for r in passed) for b in BACKENDS}
    terminalreporter.write_line(
        "database cases passed: " + ", ".join(f"{n} on {b}" for b, n in counts.items())
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not _require_pg() or reporter is None:
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if "postgresql" in r.nodeid]
    if skipped:
        reporter.write_line(
            f"FAIL: {len(skipped)} PostgreSQL test(s) skipped under {REQUIRE_PG_ENV}=1"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    admin_url = _pg_admin_url()
    if admin_url is None:
        yield None
        return
    prefix = f"medops_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server = PgServer(admin_url, prefix, f"{prefix}_template", [])
    server.execute(f"CREATE DATABASE {server.template}")
    template = Database(server._sqlalchemy_url(server.template))
    try:
        migrate.upgrade(template)
    finally:
        template.dispose()
    try:
        yield server
    finally:
        server.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "medops.db"
    database = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(database)
    finally:
        database.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, pg_server: PgServer | None) -> str:
    """The database kind of this case; PostgreSQL skips visibly when no server is given."""
    if request.param == "postgresql" and pg_server is None:
        pytest.skip(f"PostgreSQL case: set {PG_ENV} to run it")
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, pg_server: PgServer | None, sqlite_template: Path) -> str:
    """A migrated, empty database of this case's kind, private to the test."""
    if backend == "postgresql":
        assert pg_server is not None
        return pg_server.new_database()
    path = tmp_path / "medops.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, pg_server: PgServer | None) -> str:
    """A database of this case's kind with no schema at all."""
    if backend == "postgresql":
        assert pg_server is not None
        return pg_server.new_database(migrated=False)
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings of a test installation; the MFA policy is off unless a test turns it on, and
    the server does not evaluate alerts by itself (its loop ticks in real time while the
    tests' clock stands still; tests evaluate when they mean to)."""
    return Settings(
        home=tmp_path / "home",
        database_url=db_url,
        mfa_required_roles=(),
        alert_evaluate_seconds=0,
        alert_dispatch_seconds=0,  # the dispatch loop ticks in real time; tests dispatch
        rollout_interval_seconds=0,  # so does the rollout driver; tests tick
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def services(settings: Settings, clock: FixedClock) -> Iterator[Services]:
    services = build_services(settings, clock=clock, password_hashing=FAST_PASSWORD_HASHING)
    try:
        yield services
    finally:
        services.close()


# -- the real app over HTTP ------------------------------------------------------------------


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


@pytest.fixture
def client_for(
    settings: Settings, clock: FixedClock
) -> Iterator[Callable[..., tuple[httpx.Client, Services]]]:
    """Build an app on the same database with some settings changed; yields (client, services)."""
    opened: list[tuple[httpx.Client, Services]] = []

    def build(**overrides: object) -> tuple[httpx.Client, Services]:
        services = build_services(
            settings.model_copy(update=overrides),
            clock=clock,
            password_hashing=FAST_PASSWORD_HASHING,
        )
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


# -- the governed path: people, a model, a deployment -----------------------------------------


@pytest.fixture
def people(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> dict[str, dict[str, str]]:
    """API-token headers (no idle timeout while tests move the clock) of: a data scientist
    (the registrant), two ML engineers, a clinician, an auditor and an admin."""
    logins = {
        "ds": tokens[Role.DATA_SCIENTIST],
        "mle": tokens[Role.ML_ENGINEER],
        "mle2": make_user(services, "second-engineer", Role.ML_ENGINEER),
        "clin": tokens[Role.CLINICIAN],
        "aud": tokens[Role.AUDITOR],
        "admin": tokens[Role.ADMIN],
    }
    headers = {}
    for who, login in logins.items():
        issued = http.post("/api/v1/tokens", json={}, headers=bearer(login))
        assert issued.status_code == 201, issued.text
        headers[who] = bearer(issued.json()["token"])
    return headers


@pytest.fixture
def model(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """The model ``diabetes-risk`` exists, with the tests' promotion policy."""
    answer = http.post(
        "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=people["mle"]
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture
def deployed(http: httpx.Client, people: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """diabetes-risk v1 approved and in production, served by the deployment ``diabetes``."""
    created = http.post(
        "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=people["mle"]
    )
    assert created.status_code == 201, created.text
    approved(http, people)
    assert promote(http, people["mle"], 1).status_code == 200
    answer = deploy(http, people["mle"])
    assert answer.status_code == 201, answer.text
    return people


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """One S3-compatible server (moto) for the session; each test takes its own bucket."""
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The S3 server, with its credentials in this test's environment (for boto3's chain)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
