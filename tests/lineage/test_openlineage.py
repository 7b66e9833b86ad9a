"""OpenLineage run events: written to the outbox in the transaction of the fact (a model
version registered on pinned data, a dataset version added or derived, a deployment made),
each valid against the OpenLineage JSON schema and its facets' schemas, then sent to a file
(JSON lines) or an HTTP collector, in order, retried after a failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from medops.audit.service import exempt_from_audit_guard
from medops.lineage import outbox
from medops.lineage.tables import LineageEvent
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.lineage_chain import create_model, deployed_on, register_pinned
from tests.helpers.lineage_data import add_version
from tests.helpers.openlineage_spec import validate
from tests.helpers.registry import DEPLOYMENT, NAME


def _events(services: Services) -> list[dict[str, Any]]:
    with services.db.session() as session:
        return [json.loads(e) for e in session.scalars(select(LineageEvent.event).order_by(
            LineageEvent.id))]  # fmt: skip


def test_a_registration_emits_a_valid_start_and_complete_with_its_inputs(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """medops.models.register: START then COMPLETE of one run; the COMPLETE's inputs are
    the pinned dataset versions (with their Merkle roots and columns), its output the model
    version (artifact digest, features as the schema)."""
    create_model(http, people)
    train = add_version(services, "vitals")
    add_version(services, "vitals-holdout")
    answer = register_pinned(http, people["ds"], training="vitals@1",
                             validation="vitals-holdout@1")  # fmt: skip
    assert answer.status_code == 201, answer.text
    start, complete = _events(services)
    for event in (start, complete):
        validate(event)
        assert event["job"]["name"] == "medops.models.register"
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    inputs = {d["name"]: d for d in complete["inputs"]}
    assert set(inputs) == {"vitals@1", "vitals-holdout@1"}
    assert inputs["vitals@1"]["facets"]["version"]["datasetVersion"] == train.root
    assert {f["name"] for f in inputs["vitals@1"]["facets"]["schema"]["fields"]} == {
        "vitals.csv:age",
        "vitals.csv:bmi",
    }
    [output] = complete["outputs"]
    assert output["name"] == f"{NAME}/1"
    assert output["facets"]["version"]["datasetVersion"] == "sha256:" + answer.json()[
        "artifact_digest"]  # fmt: skip
    assert "age" in {f["name"] for f in output["facets"]["schema"]["fields"]}


def test_dataset_and_deployment_events_are_valid(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """medops.data.add for a raw version, medops.data.deidentify (input: the parent) for a
    derived one, medops.deploy (input: the model version served) for a deployment."""
    create_model(http, people)
    raw = add_version(services, "scans", contents={})
    deid = add_version(services, "scans-deid", derived_from=raw.id, derivation="deidentify")
    deployed_on(http, people, "scans-deid@1")
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        services.lineage.emit_dataset_added(session, raw.id)
        services.lineage.emit_dataset_added(session, deid.id)
        services.lineage.emit_deployment_changed(session, DEPLOYMENT)
    events = _events(services)
    for event in events:
        validate(event)
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert set(complete) == {"medops.models.register", "medops.data.add",
                             "medops.data.deidentify", "medops.deploy"}  # fmt: skip
    assert [d["name"] for d in complete["medops.data.deidentify"]["inputs"]] == ["scans@1"]
    assert [d["name"] for d in complete["medops.deploy"]["inputs"]] == [f"{NAME}/1"]
    assert [d["name"] for d in complete["medops.deploy"]["outputs"]] == [DEPLOYMENT]
    assert "schema" not in complete["medops.data.add"]["outputs"][0]["facets"]


def test_an_invalid_event_fails_the_schema_check() -> None:
    """The validator is real: an event without a run id or with a bad eventType fails."""
    import jsonschema  # type: ignore[import-untyped]

    event = {"eventTime": "2026-01-01T00:00:00Z", "producer": "https://x.example/",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
             "run": {}, "job": {"namespace": "n", "name": "j"}}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        validate(event)
    event["run"] = {"runId": "5f1c0b52-7a55-4b8c-9a5e-2f1b9f2a1c11"}
    event["eventType"] = "FINISHED"
    with pytest.raises(jsonschema.ValidationError):
        validate(event)


def test_the_outbox_appends_json_lines_to_a_file_once(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    tmp_path: Path,
    clock: FixedClock,
) -> None:
    """A pass sends every waiting event as one line each, in order; the next pass sends
    nothing again."""
    create_model(http, people)
    add_version(services, "vitals")
    assert register_pinned(http, people["ds"], training="vitals@1").status_code == 201
    target = tmp_path / "lineage" / "events.jsonl"
    first = outbox.send(services.db, clock, target.as_uri())
    assert (first.sent, first.failed, first.pending) == (2, 0, 0)
    lines = target.read_text().splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]
    again = outbox.send(services.db, clock, target.as_uri())
    assert again.sent == 0
    assert len(target.read_text().splitlines()) == 2


class _Collector(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    failing: list[bool]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.failing[0]:
            self.send_response(503)
        else:
            self.received.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, Any]], list[bool]]]:
    """An HTTP collector on the loopback: its URL, what it received, a switch to fail."""
    received: list[dict[str, Any]] = []
    failing = [True]
    handler = type("Handler", (_Collector,), {"received": received, "failing": failing})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/lineage", received, failing
    server.shutdown()
    server.server_close()


def test_a_collector_that_was_down_receives_everything_in_order_once_back(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    clock: FixedClock,
    collector: tuple[str, list[dict[str, Any]], list[bool]],
) -> None:
    """A 503 stops the pass with the event kept (attempts and the error counted); the next
    pass, with the collector up, POSTs every event in order."""
    url, received, failing = collector
    create_model(http, people)
    add_version(services, "vitals")
    assert register_pinned(http, people["ds"], training="vitals@1").status_code == 201
    down = outbox.send(services.db, clock, url)
    assert (down.sent, down.failed, down.pending) == (0, 1, 2)
    with services.db.session() as session:
        first = session.scalars(select(LineageEvent).order_by(LineageEvent.id)).first()
        assert first is not None
        assert (first.attempts, first.last_error) == (1, "HTTP 503")
    failing[0] = False
    up = outbox.send(services.db, clock, url)
    assert (up.sent, up.pending) == (2, 0)
    assert [e["eventType"] for e in received] == ["START", "COMPLETE"]
    assert up.target == url


def test_without_a_target_nothing_is_sent(services: Services, clock: FixedClock) -> None:
    """No MEDOPS_OPENLINEAGE_URL: the pass says so and leaves the events waiting."""
    summary = services.lineage.send()
    assert (summary.sent, summary.target) == (0, None)


def test_a_sweep_turns_deployment_changes_into_events_once(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Serving does not know lineage: a pass finds each deployment revision without an event
    and emits medops.deploy for it, once; a new revision (a shadow started) gets its own."""
    create_model(http, people)
    add_version(services, "vitals")
    deployed_on(http, people, "vitals@1")
    assert services.lineage.sweep_deployments() == 1
    assert services.lineage.sweep_deployments() == 0
    started = http.put(
        f"/api/v1/deployments/{DEPLOYMENT}/shadow",
        json={"version": 1, "reason": "compare"},
        headers=people["mle"],
    )
    assert started.status_code == 200, started.text
    assert services.lineage.sweep_deployments() == 1
    deploys = [e for e in _events(services) if e["job"]["name"] == "medops.deploy"]
    assert len(deploys) == 4
    for event in deploys:
        validate(event)


def test_a_sweep_gives_dataset_versions_without_events_theirs_once(
    services: Services,
) -> None:
    """Versions committed without the dataset service's hook get medops.data.add (or
    medops.data.deidentify) from the next pass, once each; a later version is found too."""
    raw = add_version(services, "scans", contents={})
    add_version(services, "scans-deid", derived_from=raw.id, derivation="deidentify")
    assert services.lineage.sweep_datasets() == 2
    assert services.lineage.sweep_datasets() == 0
    add_version(services, "scans")
    assert services.lineage.sweep_datasets() == 1
    events = _events(services)
    for event in events:
        validate(event)
    jobs = [e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"]
    assert sorted(jobs) == ["medops.data.add", "medops.data.add", "medops.data.deidentify"]
