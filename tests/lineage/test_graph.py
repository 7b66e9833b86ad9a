"""The lineage graph and impact analysis over real rows: a raw dataset version, its
de-identified derivative, a model version trained on it, approved, in production and
served, with predictions logged and a monitoring window computed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from medops.errors import InvalidInputError, NotFoundError
from medops.lineage.schemas import EdgeIn, NodeRef
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.lineage_chain import deployed_on, register_pinned
from tests.helpers.lineage_data import add_version
from tests.helpers.monitoring_windows import serve_with_outcomes
from tests.helpers.people import SYSTEM_CTX
from tests.helpers.registry import DEPLOYMENT, NAME, predict, random_records


@pytest.fixture
def chain(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> dict[str, str]:
    """scans@1 -> (deidentify) scans-deid@1 -> diabetes-risk/1 (training) -> @production
    -> deployment diabetes; returns the dataset version ids."""
    raw = add_version(services, "scans")
    deid = add_version(services, "scans-deid", derived_from=raw.id, derivation="deidentify")
    created = http.post(
        "/api/v1/models", json={"name": NAME, "policy": __import__("tests.helpers.model_data",
        fromlist=["POLICY"]).POLICY}, headers=people["mle"],
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert deployed_on(http, people, "scans-deid@1") == 1
    return {"raw": raw.id, "deid": deid.id}


def test_impact_reaches_the_deployment_through_the_derived_dataset(
    services: Services,
    http: httpx.Client,
    people: dict[str, dict[str, str]],
    clock: FixedClock,
    chain: dict[str, str],
) -> None:
    """The raw version's impact lists the de-identified version, the model version trained
    on it (relation training, the path through both), its production alias and the
    deployment serving it now, with its predictions and monitoring windows counted."""
    serve_with_outcomes(http, people["clin"], clock, 40, timedelta(days=1))
    ran = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=people["mle"])
    assert ran.status_code == 200, ran.text
    assert ran.json()["computed"], ran.text
    impact = services.lineage.impact("scans@1")
    assert impact.dataset == "scans@1"
    assert impact.derived == ["scans-deid@1"]
    [model] = impact.models
    assert (model.ref, model.relation, model.aliases) == (f"{NAME}/1", "training", ["production"])
    assert model.path == ["scans@1", "scans-deid@1", f"{NAME}/1"]
    [serving] = model.serving
    assert (serving.deployment, serving.arm, serving.via_alias) == (DEPLOYMENT, "primary",
                                                                    "production")  # fmt: skip
    assert serving.serving_now is True
    assert serving.predictions == 40
    assert impact.serving_now is True
    assert impact.deployments == [DEPLOYMENT]
    assert impact.predictions == 40
    assert serving.windows == impact.windows == 1
    assert serving.last_window_verdict is not None


def test_a_shadow_that_ended_shows_where_it_served_before(
    services: Services,
    http: httpx.Client,
    people: dict[str, dict[str, str]],
    chain: dict[str, str],
) -> None:
    """A version trained on other data scores in shadow (serving now, arm shadow); once the
    shadow ends, its impact still names the deployment (its predictions say so), no longer
    serving."""
    add_version(services, "other")
    created = register_pinned(http, people["ds"], training="other@1", c=0.5)
    assert created.status_code == 201, created.text
    shadow = f"/api/v1/deployments/{DEPLOYMENT}/shadow"
    started = http.put(shadow, json={"version": 2, "reason": "try it"}, headers=people["mle"])
    assert started.status_code == 200, started.text
    [serving] = services.lineage.impact("other@1").models[0].serving
    assert (serving.arm, serving.serving_now, serving.predictions) == ("shadow", True, 0)
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"}
                        for i, r in enumerate(random_records(3))]}  # fmt: skip
    assert predict(http, people["clin"], body).status_code == 200
    ended = http.put(shadow, json={"version": None, "reason": "done"}, headers=people["mle"])
    assert ended.status_code == 200, ended.text
    [serving] = services.lineage.impact("other@1").models[0].serving
    assert (serving.deployment, serving.arm, serving.serving_now, serving.predictions) == (
        DEPLOYMENT,
        "shadow",
        False,
        3,
    )
    assert services.lineage.impact("other@1").serving_now is False
    assert services.lineage.impact("scans@1").serving_now is True


def test_show_walks_upstream_from_a_deployment_and_downstream_from_data(
    services: Services, chain: dict[str, str]
) -> None:
    """From the deployment, upstream reaches the alias, the model version and both dataset
    versions; from the raw data, downstream reaches the deployment."""
    graph = services.lineage.show(f"deployment:{DEPLOYMENT}")
    labels = {n.key: n.label for n in graph.nodes}
    assert [labels[k] for k in graph.upstream] == [
        f"{NAME}@production",
        f"{NAME}/1",
        "scans-deid@1",
        "scans@1",
    ]
    assert graph.downstream == []
    down = services.lineage.show("data:scans@1")
    assert [n.label for n in down.nodes] == [
        "scans@1",
        "scans-deid@1",
        f"{NAME}/1",
        f"{NAME}@production",
        DEPLOYMENT,
    ]
    relations = {(labels.get(e.source, e.source), e.relation) for e in down.edges}
    assert ("scans@1", "deidentify") in {
        (next(n.label for n in down.nodes if n.key == e.source), e.relation) for e in down.edges
    }
    assert relations
    model = services.lineage.show(f"model:{NAME}/1")
    assert {n.label for n in model.nodes} >= {"scans@1", DEPLOYMENT}


def test_a_recorded_edge_joins_the_graph_once_and_is_audited(
    services: Services, chain: dict[str, str]
) -> None:
    """record() adds a split edge between two dataset versions; recording it again changes
    nothing; the impact of the source then includes the target."""
    split = add_version(services, "scans-train")
    edge = EdgeIn(source_id=chain["deid"], target_kind="dataset_version",
                  target_id=split.id, relation="split")  # fmt: skip
    services.lineage.record(SYSTEM_CTX, edge)
    services.lineage.record(SYSTEM_CTX, edge)
    graph = services.lineage.show("scans-deid@1")
    assert sum(1 for e in graph.edges if e.relation == "split") == 1
    assert "scans-train@1" in services.lineage.impact("scans@1").derived


def test_dependants_answers_the_retention_rule(services: Services, chain: dict[str, str]) -> None:
    """The model versions pinned to a dataset version (the raw one has none directly)."""
    assert services.lineage.dependants(chain["deid"]) == [f"{NAME}/1"]
    assert services.lineage.dependants(chain["raw"]) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("data:scans@9", NotFoundError),
        ("deployment:nowhere", NotFoundError),
        ("model:nothing/1", NotFoundError),
        ("just-a-name", InvalidInputError),
    ],
)
def test_an_unknown_reference_is_a_clear_error(
    services: Services, chain: dict[str, str], text: str, error: type[Exception]
) -> None:
    """Unknown nodes are NotFound naming what is missing; a bare name asks for a prefix."""
    with pytest.raises(error):
        services.lineage.show(text)


def test_references_parse_without_a_database() -> None:
    """NAME@N and NAME@sha256:... are dataset versions, NAME/V and NAME@alias models."""
    assert NodeRef.parse("scans@3").kind == "dataset"
    assert NodeRef.parse("scans@sha256:0123abcd").kind == "dataset"
    assert NodeRef.parse("risk/2").kind == "model"
    assert NodeRef.parse("risk@production").kind == "model"
    assert str(NodeRef.parse("deployment:icu")) == "deployment:icu"
