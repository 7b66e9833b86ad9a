"""Feature definitions over HTTP: applying registers a version per new or changed definition
(audited, with owner), an unchanged file adds nothing, reads need features:read and writes
features:write, and a training set's lineage reaches the definition versions it used."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from medops.features.schemas import FeatureRepo
from medops.services import Services
from tests.helpers.lineage_data import add_version

YAML = """
entities:
  - name: patient
    join_keys: [patient_id]
    description: An adult inpatient
    owner: sepsis-team
feature_views:
  - name: vitals
    entities: [patient]
    features:
      - {name: heart_rate, unit: bpm, description: Beats per minute}
      - {name: sbp, unit: mmHg}
    source: {path: /data/vitals.parquet}
    event_time: charted_at
    created_time: entered_at
    ttl: 30d
on_demand_features:
  - name: shock_index
    request: [{name: age}]
    features: {hr: "vitals:heart_rate", sbp: "vitals:sbp"}
    expression: "hr / sbp"
feature_services:
  - {name: sepsis, features: ["vitals:heart_rate", "shock_index"]}
"""


def _apply(http: httpx.Client, headers: dict[str, str], text: str) -> httpx.Response:
    repo = FeatureRepo.from_yaml(text)
    return http.post(
        "/api/v1/features/apply",
        json={"repo": repo.model_dump(mode="json")},
        headers=headers,
    )


def _names(items: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(d["kind"], d["name"], d["version"]) for d in items]


def test_apply_versions_changed_definitions_only(
    http: httpx.Client, people: dict[str, dict[str, str]], services: Services
) -> None:
    """The first apply creates version 1 of each; the same file again creates nothing; a changed
    view gets version 2 while the others stay; each version is one audit record."""
    first = _apply(http, people["ds"], YAML)
    assert first.status_code == 200, first.text
    assert _names(first.json()["created"]) == [
        ("entity", "patient", 1),
        ("feature_view", "vitals", 1),
        ("on_demand_feature", "shock_index", 1),
        ("feature_service", "sepsis", 1),
    ]
    again = _apply(http, people["ds"], YAML)
    assert again.json()["created"] == []
    assert len(again.json()["unchanged"]) == 4
    changed = _apply(http, people["ds"], YAML.replace("ttl: 30d", "ttl: 7d"))
    assert _names(changed.json()["created"]) == [("feature_view", "vitals", 2)]
    view = http.get("/api/v1/features/definitions/vitals", headers=people["aud"])
    assert view.status_code == 200, view.text
    assert view.json()["version"] == 2
    assert view.json()["spec"]["ttl"] == "P7D"
    # no owner given: the person who applied it
    assert view.json()["owner"] == "user-data-scientist"
    assert (
        http.get("/api/v1/features/definitions/patient", headers=people["aud"]).json()["owner"]
        == "sepsis-team"
    )
    old = http.get(
        "/api/v1/features/definitions/vitals", params={"version": 1}, headers=people["aud"]
    )
    assert old.json()["spec"]["ttl"] == "P30D"
    versions = http.get("/api/v1/features/definitions/vitals/versions", headers=people["aud"])
    assert [v["version"] for v in versions.json()] == [1, 2]
    listed = http.get("/api/v1/features/definitions", headers=people["aud"]).json()
    assert _names(listed) == [
        ("entity", "patient", 1),
        ("feature_view", "vitals", 2),
        ("on_demand_feature", "shock_index", 1),
        ("feature_service", "sepsis", 1),
    ]
    audit = http.get(
        "/api/v1/audit/events", params={"action": "features.apply"}, headers=people["aud"]
    )
    assert audit.status_code == 200, audit.text
    ids = sorted(e["resource_id"] for e in audit.json()["events"])
    assert ids == sorted(["patient@1", "vitals@1", "shock_index@1", "sepsis@1", "vitals@2"])
    repo = http.get("/api/v1/features/repo", headers=people["aud"]).json()
    assert repo["versions"]["feature_view:vitals"] == 2
    assert FeatureRepo.model_validate(repo["repo"]).view("vitals") is not None
    del services


def test_permissions_and_problems(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """A clinician may not apply (403); an unknown definition is 404; an invalid repository is
    422 problem+json."""
    assert _apply(http, people["clin"], YAML).status_code == 403
    missing = http.get("/api/v1/features/definitions/nothing", headers=people["aud"])
    assert missing.status_code == 404
    bad = http.post(
        "/api/v1/features/apply",
        json={
            "repo": {
                "feature_views": [
                    {
                        "name": "v",
                        "entities": ["ghost"],
                        "features": [{"name": "x"}],
                        "source": {"kind": "file", "path": "x.csv"},
                    }
                ]
            }
        },
        headers=people["ds"],
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "unknown entity ghost" in bad.text


@pytest.mark.usefixtures("people")
def test_training_set_lineage_reaches_the_definitions(
    http: httpx.Client, people: dict[str, dict[str, str]], services: Services
) -> None:
    """Recording a dataset version as a training set links it to the view, the on-demand
    feature and the entity versions used; the lineage graph shows them upstream."""
    _apply(http, people["ds"], YAML)
    _apply(http, people["ds"], YAML.replace("ttl: 30d", "ttl: 7d"))
    add_version(services, "sepsis-train")
    body = {
        "dataset": "sepsis-train@1",
        "features": ["vitals:heart_rate", "on_demand:shock_index"],
        "definitions": {"feature_view:vitals": 1},
        "entity_rows": 10,
        "rows_with_all_values": 7,
    }
    recorded = http.post("/api/v1/features/training-sets", json=body, headers=people["ds"])
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["edges"] == 3
    again = http.post("/api/v1/features/training-sets", json=body, headers=people["ds"])
    assert again.json()["edges"] == 0
    graph = http.get(
        "/api/v1/lineage", params={"ref": "data:sepsis-train@1"}, headers=people["aud"]
    )
    assert graph.status_code == 200, graph.text
    labels = sorted(n["label"] for n in graph.json()["nodes"] if n["kind"] == "feature_definition")
    assert labels == ["patient v1", "shock_index v1", "vitals v1"]  # the version it was built on
    unknown = http.post(
        "/api/v1/features/training-sets",
        json=body | {"features": ["labs:creatinine"]},
        headers=people["ds"],
    )
    assert unknown.status_code == 422
    # Not a reference at all (found by schemathesis as a 500): a 422 naming the field.
    empty = http.post(
        "/api/v1/features/training-sets", json=body | {"features": [""]}, headers=people["ds"]
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"].startswith("features")
