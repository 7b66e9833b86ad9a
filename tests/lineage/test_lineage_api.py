"""Lineage over HTTP: show and impact need lineage:read, recording data:write, sending
data:manage; bad references are problems naming the field. And validation re-run from a file
of a pinned dataset version gives the report an upload of the same file gives."""

from __future__ import annotations

import httpx
import pytest

from medops.context import Context
from medops.services import Services
from tests.helpers import model_data
from tests.helpers.lineage_chain import create_model, register_pinned
from tests.helpers.lineage_data import add_version
from tests.helpers.registry import NAME, validate


@pytest.fixture
def pinned(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> dict[str, str]:
    """vitals@1 -> diabetes-risk/1 (training)."""
    create_model(http, people)
    dv = add_version(services, "vitals")
    assert register_pinned(http, people["ds"], training="vitals@1").status_code == 201
    return {"dv": dv.id}


@pytest.mark.usefixtures("pinned")
def test_show_and_impact_answer_typed_json(
    http: httpx.Client, people: dict[str, dict[str, str]]
) -> None:
    """The auditor (lineage:read) sees the graph of the dataset version and its impact."""
    graph = http.get("/api/v1/lineage", params={"ref": "data:vitals@1"}, headers=people["aud"])
    assert graph.status_code == 200, graph.text
    assert [n["label"] for n in graph.json()["nodes"]] == ["vitals@1", f"{NAME}/1"]
    impact = http.get(
        "/api/v1/lineage/impact", params={"dataset": "vitals@1"}, headers=people["aud"]
    )
    assert impact.status_code == 200, impact.text
    assert impact.json()["models"][0]["relation"] == "training"
    assert impact.json()["serving_now"] is False


@pytest.mark.usefixtures("pinned")
@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/v1/lineage", {"ref": "data:vitals@9"}, 404, "ref"),
        ("/api/v1/lineage", {"ref": "plain"}, 422, "ref"),
        ("/api/v1/lineage/impact", {"dataset": "nothing@1"}, 404, "dataset"),
        ("/api/v1/lineage/impact", {"dataset": "Bad Ref"}, 422, "dataset"),
    ],
)
def test_bad_references_are_problems_naming_the_field(
    http: httpx.Client,
    people: dict[str, dict[str, str]],
    path: str,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    """Unknown nodes are 404, malformed references 422, each problem+json naming the field."""
    answer = http.get(path, params=params, headers=people["aud"])
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_recording_needs_data_write_and_sending_data_manage(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    pinned: dict[str, str],
) -> None:
    """The auditor may read lineage but not record an edge nor send the outbox; a data
    scientist records a split, an ML engineer sends (no target set: nothing sent)."""
    split = add_version(services, "vitals-train")
    edge = {"source_id": pinned["dv"], "target_kind": "dataset_version",
            "target_id": split.id, "relation": "split"}  # fmt: skip
    assert http.post("/api/v1/lineage/edges", json=edge, headers=people["aud"]).status_code == 403
    made = http.post("/api/v1/lineage/edges", json=edge, headers=people["ds"])
    assert made.status_code == 201, made.text
    assert made.json()["relation"] == "split"
    assert http.post("/api/v1/lineage/send", headers=people["aud"]).status_code == 403
    sent = http.post("/api/v1/lineage/send", headers=people["mle"])
    assert sent.status_code == 200, sent.text
    assert (sent.json()["sent"], sent.json()["target"]) == (0, None)
    assert sent.json()["pending"] == 2


def test_validation_from_a_pinned_dataset_version_equals_the_upload(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    pinned: dict[str, str],
) -> None:
    """The file read from vitals@1 (here through a reader standing in for the dataset
    service, which serves the same bytes) gives a report with the same hash as uploading
    the file; an unknown version is a 422 naming ``dataset``; without a reader, 503."""
    body = {"dataset": "vitals@1", "path": "eval/evaluation.csv", "label": model_data.LABEL,
            "bootstrap": 200}  # fmt: skip
    route = f"/api/v1/models/{NAME}/versions/1/validate-dataset"
    wired = services.registry.data_reader
    services.registry.data_reader = None
    assert http.post(route, json=body, headers=people["ds"]).status_code == 503
    services.registry.data_reader = wired
    reads: list[tuple[str, str, str]] = []

    def read_file(ctx: Context, ref: str, path: str, purpose: str) -> bytes:
        assert ctx.actor is not None
        reads.append((ref, path, purpose))
        return model_data.eval_csv()

    services.registry.data_reader = read_file
    rerun = http.post(route, json=body, headers=people["ds"])
    assert rerun.status_code == 201, rerun.text
    purpose = f"validation of {NAME}/1 (medops models validate)"
    assert reads == [("vitals@1", "eval/evaluation.csv", purpose)]
    upload = validate(http, people["ds"], 1, dataset="evaluation.csv")
    assert upload.status_code == 201, upload.text
    assert rerun.json()["report_hash"] == upload.json()["report_hash"]
    assert rerun.json()["report"] == upload.json()["report"]
    missing = http.post(route, json=body | {"dataset": "vitals@5"}, headers=people["ds"])
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "dataset"
