"""The console's shell in a real browser: sign-in, the API explorer, the overview."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pyotp
import pytest

from medops.api.console.layout import CONSOLE_CSP
from medops.auth.common import BAD_LOGIN
from medops.core.permissions import Role
from tests.helpers.browser import ConsolePage, origin, sign_in, sign_in_as

pytestmark = pytest.mark.browser


def test_the_sign_in_page_renders_its_form_and_is_accessible(page: ConsolePage) -> None:
    """/login shows user name, password and one-time code fields under the console's
    policy, with no serious or critical accessibility violation."""
    page.goto("/login")
    for label in ("User name", "Password", "One-time code"):
        assert page.page.get_by_label(label).is_visible()
    page.check_accessibility()
    page.shoot("login")


def test_the_api_explorer_renders_every_operation_from_this_server(page: ConsolePage) -> None:
    """/docs is public and answers with the console's policy unchanged; the vendored Swagger
    UI lists every group of the OpenAPI document closed, and opened one by one they render
    every operation, with no CSP violation or foreign request,
    and no serious or critical accessibility violation (our overrides of its colours)."""
    answer = page.page.goto(page.server.url + "/docs")
    assert answer is not None
    assert answer.status == 200
    assert answer.headers["content-security-policy"] == CONSOLE_CSP
    page.page.wait_for_selector(".opblock-tag")
    page.page.wait_for_load_state("networkidle")
    document = page.page.request.get("/openapi.json").json()
    operations = [o for item in document["paths"].values() for o in item.values()]
    tags = page.page.locator(".opblock-tag")
    # Every group is listed, closed; opened one at a time, each shows its operations, and
    # together they are every operation of the document.
    assert tags.count() == len({o["tags"][0] for o in operations})
    assert page.page.locator(".opblock").count() == 0
    shown = 0
    for index in range(tags.count()):
        tags.nth(index).click()
        page.page.wait_for_selector(".opblock-summary")
        shown += page.page.locator(".opblock").count()
        if index == 0:
            assert page.page.get_by_text("/api/v1/deployments/{name}/predict").first.is_visible()
        tags.nth(index).click()
        page.page.wait_for_selector(".opblock", state="detached")
    assert shown == len(operations)
    assert {origin(url) for url in page.requests} == {page.server.url}
    page.check_accessibility()
    page.shoot("api-docs")


def test_an_ml_engineer_signs_in_with_password_and_code_and_lands_on_the_overview(
    page: ConsolePage,
) -> None:
    """The real form with the password and a TOTP code leads to /deployments, which lists
    the seeded deployment with its canary, is accessible, and loads nothing from elsewhere."""
    seed = page.seed
    sign_in_as(page, seed.person(Role.ML_ENGINEER))
    assert urlsplit(page.page.url).path == "/deployments"
    overview = page.page.get_by_role("main")
    assert overview.get_by_text(seed.deployment, exact=True).first.is_visible()
    assert overview.get_by_text(f"{seed.canary_percent}%").first.is_visible()
    assert {origin(url) for url in page.requests} == {page.server.url}
    page.check_accessibility()
    page.shoot("overview-ml-engineer")


def test_a_wrong_one_time_code_is_refused_in_the_form(page: ConsolePage) -> None:
    """A right password with a wrong code stays on /login and says why in the form's status
    (the browser logs the refused request's 401, which is expected here)."""
    engineer = page.seed.person(Role.ML_ENGINEER)
    assert engineer.totp_secret is not None
    totp = pyotp.TOTP(engineer.totp_secret)
    valid = {totp.at(time.time() + 30 * drift) for drift in (-1, 0, 1, 2)}
    wrong = next(c for c in (f"{n:06d}" for n in range(100_000, 999_999, 7919)) if c not in valid)
    page.allow_console_error(r"status of 401")
    page.goto("/login")
    sign_in(page, engineer.username, engineer.password, wrong)
    assert urlsplit(page.page.url).path == "/login"
    status = page.page.locator("form.login .status.bad")
    assert status.is_visible()
    assert BAD_LOGIN in status.inner_text()  # the API's words; which factor failed is not told
    page.shoot("login-wrong-code")


def test_the_watch_reports_a_csp_violation_and_a_request_to_another_origin(
    page: ConsolePage,
) -> None:
    """The page fixture's own check: an inline script (refused by the policy) and a fetch to
    another origin (refused by the watch) are both reported."""
    page.goto("/login")
    page.page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.injected = 1'; document.body.append(s); }"""
    )
    page.page.evaluate("() => fetch('http://example.invalid/x').catch(() => null)")
    page.page.wait_for_timeout(200)
    problems = page.problems()
    assert page.page.evaluate("() => window.injected === undefined")
    assert any("Content Security Policy" in p for p in problems), problems
    assert any("example.invalid" in p for p in problems), problems
    page.allow_console_error(r".")  # seen; the fixture's end-of-test check would fail on them
    page.foreign.clear()
