"""`medops init` then `medops server`: a real uvicorn process answering over TCP."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medops.client import Client
from medops.config import Settings
from medops.errors import AuthenticationError, PermissionDeniedError
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import MEDOPS, free_port

ADMIN_PW = "copper-valley-notes"


@pytest.fixture
def server(tmp_path: Path, empty_db_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_DATABASE_URL=empty_db_url)
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    port = free_port()
    proc = subprocess.Popen(
        [MEDOPS, "server", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.communicate()[1][-2000:]}")
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_server_answers_probes_metrics_openapi_and_enforces_auth(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """The issue's acceptance path, over real HTTP, then a graceful SIGTERM shutdown."""
    url, proc = server
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert "process_resident_memory_bytes" in metrics
    assert 'medops_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert "/api/v1/users" in httpx.get(f"{url}/openapi.json").json()["paths"]

    anonymous = httpx.get(f"{url}/api/v1/users")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"

    settings = Settings(home=tmp_path / "client-home")
    with Client(url=url, settings=settings) as admin:
        admin.login("admin", ADMIN_PW)
        admin.create_user("ward-nurse", "clinician", "quiet-harbour-plum")
    with Client(url=url, settings=settings) as nurse:
        nurse.login("ward-nurse", "quiet-harbour-plum")
        assert nurse.whoami().role == "clinician"
        with pytest.raises(PermissionDeniedError) as denied:
            nurse.create_user("intruder", "admin", "intruder-password")
        assert denied.value.status == 403
    with Client(url=url, settings=settings) as stranger, pytest.raises(AuthenticationError):
        stranger.login("ward-nurse", "wrong-password-000")

    proc.send_signal(signal.SIGTERM)
    # uvicorn drains, runs the lifespan shutdown, then re-raises SIGTERM so that a supervisor
    # sees why it stopped: -SIGTERM here means "stopped on request", not "killed mid-flight".
    assert proc.wait(timeout=15) == -signal.SIGTERM
    _, stderr = proc.communicate()
    assert "Waiting for application shutdown." in stderr
    assert "Application shutdown complete." in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines
    assert all(line.startswith("{") for line in lines), lines[:3]
    assert any('"route": "/api/v1/users"' in line and '"request_id"' in line for line in lines)
    assert "quiet-harbour-plum" not in stderr
