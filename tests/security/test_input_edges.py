"""Attack stories at the edges (issue 14, bad input and hardening): numbers past what the
database holds, inputs echoed back at length, outcome times out of range, files others can
read, HTML without a content policy, 405 without ``Allow``."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import func, select

from medops.api.app import create_app
from medops.api.deps import public
from medops.api.headers import style_hash
from medops.bounds import INT32_MAX
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.db.engine import Database
from medops.errors import ECHO_LIMIT, ELLIPSIS, MAX_FIELD_ERRORS
from medops.files import BLOB_MODE, FILE_MODE, FOLDER_MODE
from medops.registry.schemas import VersionCreate
from medops.services import Services, build_services
from medops.serving.outcomes import CLOCK_SKEW
from medops.serving.tables import Outcome
from medops.storage.local import LocalBlobStore
from medops.testing import FixedClock, capture_audit
from tests.helpers import model_data
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.http import bearer
from tests.helpers.registry import DEPLOYMENT
from tests.helpers.registry import NAME as MODEL

PROBLEM = "application/problem+json"


# --- integers bounded in the schemas; every failed change audited ------------------------


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        (f"/api/v1/models/{MODEL}/aliases/staging", {"reason": "attack"}, "models.promote"),
        (
            f"/api/v1/deployments/{DEPLOYMENT}/canary",
            {"percent": 10, "reason": "attack"},
            "deployments.canary",
        ),
        (f"/api/v1/deployments/{DEPLOYMENT}/shadow", {"reason": "attack"}, "deployments.shadow"),
    ],
)
def test_version_of_2_63_is_a_422_naming_the_field_and_is_audited(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    action: str,
) -> None:
    """A version number of 2^63 (or just past 2^31 - 1) on promote, canary and shadow is a
    422 naming ``version``, never a 500, and the failed change has its audit record."""
    for version in (2**63, INT32_MAX + 1):
        with capture_audit(services) as captured:
            answer = http.put(path, json=body | {"version": version}, headers=deployed["mle"])
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert [e["field"] for e in answer.json()["errors"]] == ["version"]
        (record,) = captured.find(action)
        assert record.outcome == "failure"
        assert record.actor_name == "user-ml-engineer"
    deployment = http.get(f"/api/v1/deployments/{DEPLOYMENT}", headers=deployed["mle"]).json()
    assert deployment["canary_version"] is None
    assert deployment["shadow_version"] is None


def _integers_without_maximum(
    schema: dict[str, Any], where: str, definitions: dict[str, Any], seen: frozenset[str]
) -> list[str]:
    """Where in ``schema`` an integer has no maximum (following references once)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _integers_without_maximum(definitions[name], where, definitions, seen | {name})
    found = []
    if schema.get("type") == "integer" and not {"maximum", "exclusiveMaximum"} & set(schema):
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for part in schema.get(key, []):
            found += _integers_without_maximum(part, where, definitions, seen)
    for name, part in schema.get("properties", {}).items():
        found += _integers_without_maximum(part, f"{where}.{name}", definitions, seen)
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            found += _integers_without_maximum(schema[key], where + suffix, definitions, seen)
    return found


def test_every_integer_a_client_sends_has_a_maximum(tmp_path: Path) -> None:
    """Every integer of every route's parameters and request bodies (and of the version
    metadata sent as a form field) has a maximum in the OpenAPI document."""
    services = build_services(
        Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'm.db'}")
    )
    try:
        document = create_app(services=services).openapi()
    finally:
        services.close()
    definitions = document["components"]["schemas"]
    unbounded: list[str] = []
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                checked += 1
                unbounded += _integers_without_maximum(
                    parameter["schema"],
                    f"{route} {parameter['in']} {parameter['name']}",
                    definitions,
                    frozenset(),
                )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                checked += 1
                unbounded += _integers_without_maximum(
                    content["schema"], f"{route} body", definitions, frozenset()
                )
    metadata = VersionCreate.model_json_schema()
    unbounded += _integers_without_maximum(
        metadata, "version metadata", metadata.get("$defs", {}), frozenset()
    )
    assert checked > 40
    assert unbounded == []


def test_an_unexpected_exception_on_a_change_is_audited_as_a_failure(
    app: FastAPI, services: Services
) -> None:
    """A state-changing request that ends in an unexpected exception answers a generic 500
    and leaves a failed audit record naming the route."""

    def explode() -> None:
        raise RuntimeError("a bug")

    app.add_api_route(
        "/boom", explode, methods=["POST"], name="test.boom", dependencies=[Depends(public)]
    )
    with (
        capture_audit(services) as captured,
        httpx.Client(transport=EmbeddedTransport(app), base_url="https://t") as client,
    ):
        answer = client.post("/boom", headers={"X-Request-ID": "req-boom-2"})
    assert answer.status_code == 500
    (record,) = captured.find("test.boom")
    assert record.outcome == "failure"
    assert record.resource_id == "POST /boom"
    assert record.request_id == "req-boom-2"


# --- echoed input cut short ----------------------------------------------------------------


def _echo_requests(key: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(who, method, path, httpx arguments) of requests that name the client's ``key`` in
    their refusal: an unknown JSON key, an unknown feature, an unknown CSV column, an unknown
    prediction id in a CSV, a bad alias, a bad feature name, a key of the version metadata,
    a bad query value."""
    _, x_eval, _, _ = model_data.frames()
    features = {k: float(v) for k, v in x_eval.iloc[0].items()}
    csv = {"content-type": "text/csv"}
    metadata = model_data.metadata(model_data.package()) | {key: 1}
    return [
        ("admin", "POST", "/api/v1/users", {"json": {"username": "abc", "role": "clinician",
                                                     "password": "x" * 20, key: 1}}),
        ("clin", "POST", f"/api/v1/deployments/{DEPLOYMENT}/predict",
         {"json": {"features": features | {key: 1.0}}}),
        ("clin", "POST", f"/api/v1/deployments/{DEPLOYMENT}/predict",
         {"json": {"features": features, key: 1}}),
        ("clin", "POST", "/api/v1/outcomes",
         {"content": f"prediction_id,label,{key}\n{'a' * 32},1,1\n", "headers": csv}),
        ("clin", "POST", "/api/v1/outcomes", {"content": f"prediction_id,label\n{key},1\n",
                                              "headers": csv}),
        ("mle", "PUT", f"/api/v1/models/{MODEL}/policy",
         {"json": model_data.POLICY | {"protected_aliases": ["production", key]}}),
        ("mle", "PUT", "/api/v1/monitoring/config",
         {"json": {"deployment": DEPLOYMENT, "thresholds": {key: {"psi": 0.2}}}}),
        ("ds", "POST", f"/api/v1/models/{MODEL}/versions",
         {"files": {"artifact": ("model.onnx", model_data.package().onnx)},
          "data": {"metadata": json.dumps(metadata)}}),
        ("aud", "GET", "/api/v1/audit/events", {"params": {"limit": key[:60_000]}}),
    ]  # fmt: skip


def test_a_100_kb_key_is_echoed_as_a_short_prefix_and_no_error_grows_with_it(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Whatever a client sends that an error names (a JSON key, a feature, a CSV column or
    cell, an alias, a query value), the problem+json and the audit reason repeat at most 64
    characters of it, marked with an ellipsis: a refusal of a 100 KB key is exactly as long
    as that of a 1 KB key, and both are short."""
    lengths: dict[int, list[int]] = {}
    for size in (1_000, 100_000):
        key = "k" * size
        with capture_audit(services) as captured:
            for who, method, path, arguments in _echo_requests(key):
                extra = arguments.pop("headers", {})
                answer = http.request(method, path, headers=deployed[who] | extra, **arguments)
                assert 400 <= answer.status_code < 500, (path, answer.status_code)
                assert answer.headers["content-type"] == PROBLEM
                assert "k" * (ECHO_LIMIT + 1) not in answer.text, (path, answer.text[:200])
                assert len(answer.content) < 2_000, path
                lengths.setdefault(size, []).append(len(answer.content))
        reasons = [e.reason or "" for e in captured.events]
        assert len(reasons) >= 7  # the refused changes and predictions
        assert all("k" * (ECHO_LIMIT + 1) not in r for r in reasons)
        assert max(map(len, reasons)) < 500
    assert lengths[1_000] == lengths[100_000]
    named = http.post("/api/v1/users", json={key: 1}, headers=deployed["admin"]).json()
    unknown = "unknown field; the fields are: full_name, password, role, username"
    assert {"field": "k" * ECHO_LIMIT + ELLIPSIS, "reason": unknown} in (named["errors"])


def test_the_cli_error_line_stays_short_whatever_the_argument(tmp_path: Path) -> None:
    """A CLI refusal of a 100 KB argument is one line on stderr, repeating at most 64
    characters of it, with a non-zero exit."""
    cli = Cli(
        clean_env(
            MEDOPS_HOME=str(tmp_path / "home"),
            MEDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        )
    )
    for args in (
        ("monitor", "configure", DEPLOYMENT, "--threshold", "k" * 100_000),
        ("deploy", "predict", DEPLOYMENT, "--input", "k" * 100_000),
        ("tokens", "create", "--expires", "k" * 100_000),
    ):
        result = cli(*args)
        assert result.code != 0, args
        assert result.out == ""
        assert len(result.err.strip().splitlines()) == 1, result.err[:300]
        assert result.err.startswith("error: ")
        assert "k" * (ECHO_LIMIT + 1) not in result.err
        assert len(result.err) < 500, args


def test_a_body_with_thousands_of_bad_keys_gets_a_bounded_problem(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """5,000 unknown keys give a 422 listing at most MAX_FIELD_ERRORS of them and a detail
    naming the first few: the problem does not grow with the number of bad fields."""
    body: dict[str, str | int] = {"username": "abc", "role": "clinician", "password": "x" * 20}
    body |= {f"unknown-{i}": i for i in range(5_000)}
    answer = http.post("/api/v1/users", json=body, headers=bearer(tokens[Role.ADMIN]))
    assert answer.status_code == 422
    problem = answer.json()
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert problem["detail"].startswith("5000 invalid field(s): unknown-0: unknown field")
    assert problem["detail"].endswith("; and 4995 more")
    assert len(answer.content) < 10_000


# --- outcome times checked against the prediction and the clock ----------------------------


def _predict(http: httpx.Client, headers: dict[str, str], n: int) -> list[str]:
    """Score ``n`` evaluation records on the deployed deployment; their prediction ids."""
    _, x_eval, _, _ = model_data.frames()
    records = [
        {"features": {k: float(v) for k, v in row.items()}, "patient_ref": f"p{i}"}
        for i, (_, row) in enumerate(x_eval.head(n).iterrows())
    ]
    answer = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict", json={"records": records}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["predictions"]]


def _stored_outcomes(services: Services) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Outcome)) or 0)


def test_outcome_times_before_the_prediction_or_in_the_future_are_refused(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """An outcome observed in year 9999, later than the clock's now plus 5 minutes, before
    the prediction, or without a time zone is a 422 naming ``observed_at`` (``rows[i].
    observed_at`` in a CSV, where the good rows are not stored either); a time from the
    prediction to now plus 5 minutes is taken."""
    clock.advance(timedelta(hours=1))
    ids = _predict(http, deployed["clin"], 3)
    predicted = clock.now()
    clock.advance(timedelta(hours=2))
    url = f"/api/v1/predictions/{ids[0]}/outcome"
    refused = {
        "9999-12-31T23:59:59-05:00": "in the future",
        (clock.now() + CLOCK_SKEW + timedelta(seconds=1)).isoformat(): "in the future",
        (predicted - timedelta(seconds=1)).isoformat(): "before the prediction",
        "2026-01-01T13:30:00": "timezone",
    }
    for observed_at, reason in refused.items():
        answer = http.post(
            url, json={"label": 1, "observed_at": observed_at}, headers=deployed["clin"]
        )
        assert answer.status_code == 422, (observed_at, answer.text)
        (error,) = answer.json()["errors"]
        assert error["field"] == "observed_at"
        assert reason in error["reason"]
    assert _stored_outcomes(services) == 0

    upload = (
        "prediction_id,label,observed_at\n"
        f"{ids[1]},1,{predicted.isoformat()}\n"
        f"{ids[2]},0,9999-01-01T00:00:00Z\n"
    )
    csv = deployed["clin"] | {"content-type": "text/csv"}
    answer = http.post("/api/v1/outcomes", content=upload, headers=csv)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["rows[1].observed_at"]
    assert _stored_outcomes(services) == 0

    latest = (clock.now() + CLOCK_SKEW).isoformat()
    taken = http.post(url, json={"label": 1, "observed_at": latest}, headers=deployed["clin"])
    assert taken.status_code == 201, taken.text
    good = upload.replace("9999-01-01T00:00:00Z", clock.now().isoformat())
    assert http.post("/api/v1/outcomes", content=good, headers=csv).status_code == 200
    assert _stored_outcomes(services) == 3


# --- files owner-only, whatever the umask and the path ----------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask (000) for the test, restored after it."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("open_umask")
def test_every_file_medops_creates_is_owner_only_under_umask_000(tmp_path: Path) -> None:
    """Under umask 000, with the database in a world-writable folder outside MEDOPS_HOME,
    the key, checkpoint copies and an export in folders that do not exist yet: init, logins,
    a checkpoint, an export, a blob and a live database leave every file medops created 0600
    (blobs 0400, read-only) and every folder it created 0700; the database, -wal and -shm
    included."""
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)  # a folder others may read and write: not medops's to change
    url = f"sqlite:///{elsewhere / 'medops.db'}"
    env = clean_env(
        MEDOPS_HOME=str(tmp_path / "home"),
        MEDOPS_DATABASE_URL=url,
        MEDOPS_AUDIT_KEY_FILE=str(tmp_path / "keys" / "audit" / "signing.key"),
        MEDOPS_AUDIT_CHECKPOINT_DIR=str(tmp_path / "copies" / "audit"),
    )
    cli = Cli(env)
    password = "tidal-granite-sketch"
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=password)
    cli.ok("login", "--username", "admin", "--password-stdin", stdin=password + "\n")
    cli.ok("users", "create", "ada", "--role", "auditor", "--password-stdin",
           stdin="quiet-harbor-lantern\n")  # fmt: skip
    cli.ok("audit", "checkpoint", "--json")
    cli.ok("login", "--username", "ada", "--password-stdin", stdin="quiet-harbor-lantern\n")
    export = tmp_path / "exports" / "today" / "audit.jsonl"
    cli.ok("audit", "export", "--output", str(export))
    digest = LocalBlobStore(tmp_path / "home" / "blobs").put(b"an ONNX model")

    database = Database(url)
    try:
        with database.engine.connect() as connection:  # a live database has -wal and -shm
            connection.exec_driver_sql("SELECT count(*) FROM audit_events").scalar()
            modes = {
                path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode)
                for path in tmp_path.rglob("*")
                if path != elsewhere
            }
    finally:
        database.dispose()
    blob = f"home/blobs/sha256/{digest[7:9]}/{digest[9:]}"
    for name in ("shared/medops.db", "shared/medops.db-wal", "shared/medops.db-shm",
                 "keys/audit/signing.key", "home/credentials.json", "exports/today/audit.jsonl",
                 blob):  # fmt: skip
        assert name in modes, sorted(modes)
    assert any(name.startswith("copies/audit/checkpoint-") for name in modes)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (BLOB_MODE if name == blob else FOLDER_MODE if (tmp_path / name).is_dir()
                    else FILE_MODE)
    }  # fmt: skip
    assert wrong == {}


# --- security headers ------------------------------------------------------------------------


def _openapi(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_every_html_answer_carries_a_strict_content_policy_and_every_answer_nosniff(
    http: httpx.Client, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> None:
    """Each route that answers HTML (found in the OpenAPI document: the validation report,
    the model card, the monitoring report, the SLA report) sends a Content-Security-Policy of
    default-src 'none' whose style-src allows exactly the page's inline style sheets by hash (no
    'unsafe-inline', no script), frame-ancestors 'none', Referrer-Policy no-referrer,
    X-Frame-Options DENY and nosniff; JSON and problem answers carry nosniff."""
    _predict(http, deployed["clin"], 60)
    clock.advance(timedelta(minutes=2))  # past the monitoring run's grace
    ran = http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=deployed["mle"])
    assert ran.status_code == 200, ran.text
    assert ran.json()["computed"], ran.text
    html = {"accept": "text/html"}
    requests = {
        "/api/v1/models/{name}/versions/{selector}/report": (
            f"/api/v1/models/{MODEL}/versions/1/report", {"format": "html"}, {}),
        "/api/v1/models/{name}/versions/{selector}/card": (
            f"/api/v1/models/{MODEL}/versions/1/card", {"format": "html"}, {}),
        "/api/v1/monitoring/report": (
            "/api/v1/monitoring/report", {"deployment": DEPLOYMENT, "window": "count:50"}, html),
        "/api/v1/slo/{deployment}/report": (
            f"/api/v1/slo/{DEPLOYMENT}/report", {"format": "html"}, {}),
    }  # fmt: skip
    declared = {
        path
        for path, operations in _openapi(http)["paths"].items()
        for operation in operations.values()
        for answer in operation.get("responses", {}).values()
        if "text/html" in answer.get("content", {})
    }
    assert declared == set(requests)
    for path, params, headers in requests.values():
        page = http.get(path, params=params, headers=deployed["clin"] | headers)
        assert page.status_code == 200, (path, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        policy = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert "unsafe" not in page.headers["content-security-policy"]
        assert "script-src" not in policy
        sheets = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
        assert sheets
        assert set(policy["style-src"].split()) >= {style_hash(css) for css in sheets}
        assert "<script" not in page.text.lower()
        assert " style=" not in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-frame-options"] == "DENY"
    for answer in (
        http.get(f"/api/v1/models/{MODEL}", headers=deployed["clin"]),
        http.get("/api/v1/no-such-route"),
        http.get("/healthz"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in answer.headers


def test_a_405_names_every_method_the_path_allows(http: httpx.Client) -> None:
    """A method a path does not take is a 405 problem whose ``Allow`` header lists every
    method some route takes at that path (RFC 9110), also where each method has its own
    route."""
    cases = {
        ("PUT", "/healthz"): {"GET"},
        ("HEAD", "/api/v1/users"): {"GET", "POST"},
        ("DELETE", f"/api/v1/models/{MODEL}/aliases/production"): {"GET", "PUT"},
        ("GET", f"/api/v1/deployments/{DEPLOYMENT}/predict"): {"POST"},
        ("POST", f"/api/v1/models/{MODEL}/versions/1/card"): {"GET", "PATCH"},
        ("PUT", "/api/v1/monitoring/run"): {"POST"},
        ("POST", "/api/v1/monitoring/config"): {"GET", "PUT"},
    }
    for (method, path), allowed in cases.items():
        answer = http.request(method, path)
        assert answer.status_code == 405, (method, path, answer.status_code)
        assert set(answer.headers["allow"].split(", ")) == allowed, (method, path)
        if method != "HEAD":
            assert answer.json()["type"] == "urn:medops:problem:method-not-allowed"
