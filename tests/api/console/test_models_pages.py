"""The registry's console pages: models, a model (aliases, history, lineage, what was in
production when), a version (gates, signatures, the sign and promote forms, card, report)."""

from __future__ import annotations

import html

import httpx

from medops.registry.schemas import MEANING_STATEMENTS
from tests.helpers.registry import DEPLOYMENT, NAME

People = dict[str, dict[str, str]]


def test_the_models_page_lists_each_model_with_its_aliases(
    http: httpx.Client, deployed: People
) -> None:
    """The model appears with its production alias."""
    response = http.get("/models", headers=deployed["aud"])
    assert response.status_code == 200
    assert f'<a href="/models/{NAME}">{NAME}</a>' in response.text
    assert "production → v1" in response.text


def test_the_model_page_draws_lineage_from_version_to_deployment(
    http: httpx.Client, deployed: People
) -> None:
    """Lineage: v1 -> @production -> the deployment, as a graph and as a table; the history
    lists the promotion with its reason."""
    text = http.get(f"/models/{NAME}", headers=deployed["clin"]).text
    assert f"Lineage of {NAME}" in text
    assert "<svg" in text
    assert f"<td>{NAME} v1</td><td>@production</td><td>alias points at</td>" in text
    assert f"<td>@production</td><td>{DEPLOYMENT}</td><td>serves</td>" in text
    assert "promote version 1" in text


def test_what_was_in_production_at_a_time_is_answered_on_the_page(
    http: httpx.Client, deployed: People
) -> None:
    """Now: version 1; before any promotion: a notice saying none; a bad time: a notice."""
    later = http.get(f"/models/{NAME}", params={"at": "2999-01-01T00:00"}, headers=deployed["clin"])
    assert "was <a href" in later.text
    assert "version 1</a>" in later.text
    before = http.get(
        f"/models/{NAME}", params={"at": "2000-01-01T00:00Z"}, headers=deployed["clin"]
    )
    assert before.status_code == 200
    assert "pointed at no version" in before.text
    bad = http.get(f"/models/{NAME}", params={"at": "yesterday"}, headers=deployed["clin"])
    assert bad.status_code == 200
    assert "is not an ISO 8601 time" in bad.text


def test_a_clinician_sees_the_meaning_before_signing_and_the_form_asks_password_and_code(
    http: httpx.Client, deployed: People
) -> None:
    """The sign form states every meaning, binds to the artifact, and has both credentials."""
    text = http.get(f"/models/{NAME}/versions/1", headers=deployed["clin"]).text
    for statement in MEANING_STATEMENTS.values():
        assert html.escape(statement) in text
    assert f'data-api="/api/v1/models/{NAME}/versions/1/approvals"' in text
    assert 'name="password" type="password"' in text
    assert 'name="otp"' in text
    assert "Promote v1 to production" not in text  # clinicians do not promote


def test_the_version_page_shows_gates_signatures_card_and_report(
    http: httpx.Client, deployed: People
) -> None:
    """Gates met, two valid signatures, the card's sections and the report's plots."""
    text = http.get(f"/models/{NAME}/versions/1", headers=deployed["mle"]).text
    assert "Every gate of production is met." in text
    assert text.count('<span class="badge ok">valid</span>') == 2
    assert "<h2>Model card</h2>" in text
    assert "<h2>Discrimination and calibration</h2>" in text
    assert "Promote v1 to production" in text
    assert ' style="' not in text


def test_a_data_scientist_is_not_offered_signing(http: httpx.Client, deployed: People) -> None:
    """No models:approve: no sign form."""
    text = http.get(f"/models/{NAME}/versions/1", headers=deployed["ds"]).text
    assert "Your role does not sign versions." in text
    assert "/approvals" not in text.split("<h2>Signatures</h2>")[1].split("<h2>")[0]


def test_admins_may_not_open_model_pages_and_bad_paths_are_4xx_pages(
    http: httpx.Client, deployed: People
) -> None:
    """403 for an admin; version 0 and an unknown model: 4xx pages, never a 500."""
    assert http.get("/models", headers=deployed["admin"]).status_code == 403
    zero = http.get(f"/models/{NAME}/versions/0", headers=deployed["clin"])
    assert zero.status_code == 422
    assert zero.headers["content-type"].startswith("text/html")
    missing = http.get("/models/nothing-here", headers=deployed["clin"])
    assert missing.status_code == 404
    assert "nothing-here" in missing.text
