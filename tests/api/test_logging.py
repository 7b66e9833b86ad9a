"""Logs are JSON lines with the request id and never carry patient data or feature values."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI

from medops.api.deps import public
from medops.client.embedded import EmbeddedTransport
from medops.core.permissions import Role
from medops.logs import configure_logging
from tests.helpers.http import bearer


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("debug")
    try:
        yield capsys
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_each_request_logs_one_json_line_with_its_request_id(
    http: httpx.Client, json_logs: pytest.CaptureFixture[str]
) -> None:
    """The access line has method, route template, status, duration and request id."""
    http.get("/healthz", headers={"X-Request-ID": "log-check-1"})
    err = json_logs.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line]
    (access,) = [line for line in lines if line.get("request_id") == "log-check-1"]
    assert access["event"] == "request"
    assert access["route"] == "/healthz"
    assert access["status"] == 200
    assert access["level"] == "info"
    assert isinstance(access["duration_ms"], float)


def test_no_request_content_reaches_the_logs(
    http: httpx.Client, tokens: dict[Role, str], json_logs: pytest.CaptureFixture[str]
) -> None:
    """Bodies, query strings and path values (where patient data would be) are never logged."""
    marker = "PATIENT-MRN-0042"
    admin = bearer(tokens[Role.ADMIN])
    http.post(
        "/api/v1/users", json={"username": marker, "role": "x", "password": marker}, headers=admin
    )
    http.get(f"/api/v1/audit/events?action={marker}", headers=admin)
    http.get(f"/api/v1/records/{marker}", headers=admin)
    http.post("/api/v1/auth/token", data={"username": marker, "password": marker})
    err = json_logs.readouterr().err
    assert err.strip()
    for line in err.splitlines():
        json.loads(line)
    assert marker not in err
    assert marker.lower() not in err.lower()


def test_error_log_lines_carry_the_request_id_and_no_trace_reaches_the_client(
    app: FastAPI, json_logs: pytest.CaptureFixture[str]
) -> None:
    """Every line a request writes (here: the traceback line of a bug) has its request id."""

    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", explode, dependencies=[Depends(public)])
    with httpx.Client(transport=EmbeddedTransport(app), base_url="http://t") as client:
        client.get("/boom", headers={"X-Request-ID": "req-err-1"})
    lines = [json.loads(line) for line in json_logs.readouterr().err.splitlines() if line]
    mine = [line for line in lines if line.get("request_id") == "req-err-1"]
    assert {line["event"] for line in mine} == {"unhandled error", "request"}
    assert (
        "RuntimeError: boom"
        in next(x for x in mine if x["event"] == "unhandled error")["exception"]
    )
