"""The console's shell: sign-in page, redirects, the pages' security headers, static files."""

from __future__ import annotations

import httpx

from medops.api.console.layout import CONSOLE_CSP
from medops.core.permissions import Role
from tests.helpers.http import bearer
from tests.helpers.registry import DEPLOYMENT, predict, random_records


def test_a_page_without_a_session_sends_the_browser_to_sign_in(http: httpx.Client) -> None:
    """No session: 303 to /login with the page as ``next``."""
    response = http.get("/deployments?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/deployments%3Fx%3D1"


def test_sign_in_page_has_the_strict_policy_and_no_inline_script(http: httpx.Client) -> None:
    """The page loads only this server's script and style; nothing inline."""
    response = http.get("/login")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONSOLE_CSP
    assert "'unsafe-inline'" not in CONSOLE_CSP
    assert "<script>" not in response.text
    assert ' style="' not in response.text
    assert '<script src="/static/console.js" defer></script>' in response.text


def test_an_open_redirect_through_next_is_refused(http: httpx.Client) -> None:
    """``next`` naming another site falls back to the start page."""
    response = http.get("/login?next=//evil.example/")
    assert 'data-next="/"' in response.text


def test_a_role_without_the_pages_permission_gets_a_403_page(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """An admin may not open the deployments overview: a page saying so, status 403."""
    response = http.get("/deployments", headers=bearer(tokens[Role.ADMIN]))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "deployments:read" in response.text


def test_the_overview_lists_deployments_for_a_reader(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A clinician sees the overview page."""
    response = http.get("/deployments", headers=bearer(tokens[Role.CLINICIAN]))
    assert response.status_code == 200, response.text
    assert "<h1>Overview</h1>" in response.text


def test_static_files_are_served_with_an_etag(http: httpx.Client) -> None:
    """The style sheet comes with a strong ETag, and a revalidation is a 304."""
    first = http.get("/static/console.css")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/css; charset=utf-8"
    again = http.get("/static/console.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert http.get("/static/nothing.js").status_code == 404


def test_the_overview_shows_live_figures_after_predictions(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """After predictions, the primary arm's rate, latency and error rate appear; no window has
    been computed yet, and the page says so."""
    for record in random_records(5):
        answer = predict(http, deployed["clin"], {"features": record, "patient_ref": "pt-1"})
        assert answer.status_code == 200, answer.text
    text = http.get("/deployments", headers=deployed["clin"]).text
    assert f'<a href="/deployments/{DEPLOYMENT}">{DEPLOYMENT}</a>' in text
    assert "primary/1: " in text
    assert "no window yet" in text


def test_the_account_page_lists_ones_api_tokens_with_revoke_and_issue_forms(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """A clinician's API token is listed (never its secret) with a revoke form, and the
    form that issues a new one shows its secret once in place."""
    mine = http.get("/api/v1/tokens", headers=deployed["clin"]).json()
    api_tokens = [t for t in mine if t["kind"] == "api"]
    assert api_tokens
    text = http.get("/account", headers=deployed["clin"]).text
    for token in api_tokens:
        assert f'data-api="/api/v1/tokens/{token["id"]}" data-method="DELETE"' in text
    assert 'data-api="/api/v1/tokens" data-method="POST" data-show="token"' in text
    assert deployed["clin"]["Authorization"].removeprefix("Bearer ") not in text
