"""The console's lineage page: the graph as server-rendered SVG under the strict policy
(no inline script), nodes linking to their pages, the impact of a dataset version, a 404
page for an unknown node and a 403 page for a role without lineage:read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from medops.api.console.layout import CONSOLE_CSP
from medops.services import Services
from tests.helpers import model_data
from tests.helpers.lineage_chain import deployed_on
from tests.helpers.lineage_data import add_version
from tests.helpers.registry import DEPLOYMENT, NAME


def test_the_page_draws_the_graph_and_the_impact(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """scans@1 -> scans-deid@1 -> diabetes-risk/1 -> @production -> diabetes: one SVG with
    a box per node (links to their pages), the impact saying it serves patients now."""
    raw = add_version(services, "scans")
    add_version(services, "scans-deid", derived_from=raw.id, derivation="deidentify")
    created = http.post(
        "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=people["mle"]
    )
    assert created.status_code == 201, created.text
    deployed_on(http, people, "scans-deid@1")
    page = http.get("/lineage", params={"ref": "data:scans@1"}, headers=people["aud"])
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"] == CONSOLE_CSP
    html = page.text
    drawing = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    root = ET.fromstring(drawing)  # noqa: S314 (our own page: well-formed XML, as a browser parses it)
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) == 5
    assert "<script>" not in html
    assert ' style="' not in html
    assert f'<a href="/models/{NAME}/versions/1">' in html
    assert f'<a href="/deployments/{DEPLOYMENT}">' in html
    assert '<a href="/datasets/scans-deid/1">' in html
    assert "serving patients now" in html
    assert "deidentify" in html
    model_page = http.get("/lineage", params={"ref": f"model:{NAME}/1"}, headers=people["clin"])
    assert model_page.status_code == 200, model_page.text
    assert "Impact" not in model_page.text


def test_the_form_an_unknown_node_and_a_role_without_the_permission(
    http: httpx.Client, people: dict[str, dict[str, str]]
) -> None:
    """Without ``ref``: the GET form; an unknown node: a 404 page; the admin: a 403 page
    naming lineage:read."""
    empty = http.get("/lineage", headers=people["ds"])
    assert empty.status_code == 200
    assert '<form method="get" action="/lineage"' in empty.text
    missing = http.get("/lineage", params={"ref": "data:none@1"}, headers=people["ds"])
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    refused = http.get("/lineage", headers=people["admin"])
    assert refused.status_code == 403
    assert "lineage:read" in refused.text
