"""Every console page in a real browser, as the role that reads it: each renders without a
console error, a CSP violation or a request to another origin, passes axe-core (no serious
or critical violation), and is photographed for the run's artifacts."""

from __future__ import annotations

import pytest

from medops.core.permissions import Role
from tests.helpers.browser import ConsolePage, sign_in_as
from tests.helpers.registry import FEATURES

pytestmark = pytest.mark.browser


def _visit(page: ConsolePage, path: str, shot: str) -> None:
    page.goto(path)
    assert page.page.locator("main h1").first.is_visible()
    page.check_accessibility()
    page.shoot(shot)


def test_every_page_an_auditor_reads(page: ConsolePage) -> None:
    """An auditor: overview, deployment, a window, models, a model and a version, the audit
    trail with a record and the whole-log verification, a prediction's explanation, users, a
    user, break-glass grants and the account page; alerts, an alert and the service levels;
    datasets and a model version's lineage."""
    seed = page.seed
    assert seed.alerts, "the seeded drift opened no alert"
    sign_in_as(page, seed.person(Role.AUDITOR))
    window = seed.windows[0]
    for path, shot in (
        ("/deployments", "auditor-overview"),
        (f"/deployments/{seed.deployment}", "auditor-deployment"),
        (f"/deployments/{seed.deployment}?range=all&test=psi", "auditor-deployment-psi"),
        (window.href, "auditor-window"),
        ("/models", "auditor-models"),
        (f"/models/{seed.model}", "auditor-model"),
        (f"/models/{seed.model}/versions/{seed.production_version}", "auditor-version"),
        ("/audit", "auditor-audit"),
        ("/audit/1", "auditor-audit-record"),
        ("/audit/verify", "auditor-audit-verify"),
        ("/admin/users", "auditor-users"),
        (f"/admin/users/{seed.person(Role.CLINICIAN).username}", "auditor-user"),
        ("/admin/break-glass", "auditor-break-glass"),
        ("/account", "auditor-account"),
        ("/alerts", "auditor-alerts"),
        (f"/alerts/{seed.alerts[0]}", "auditor-alert"),
        ("/slo", "auditor-slo"),
        ("/datasets", "auditor-datasets"),
        (f"/lineage?ref={seed.model}/{seed.production_version}", "auditor-lineage"),
        (f"/explanation?prediction={seed.explained}", "auditor-explanation"),
    ):
        _visit(page, path, shot)
    assert page.page.locator("main figure svg").count() == 1  # the contribution chart
    assert page.page.locator("main table tbody tr").count() == len(FEATURES)
    assert page.page.get_by_text("matches", exact=True).is_visible()  # its audit digest


def test_the_admin_pages_with_their_actions(page: ConsolePage) -> None:
    """An admin (signed in with a one-time code): users with the create form, a user with
    every action, break-glass review, the account page, where a new API token's secret is
    shown once in the form."""
    seed = page.seed
    sign_in_as(page, seed.person(Role.ADMIN))
    for path, shot in (
        ("/admin/users", "admin-users"),
        (f"/admin/users/{seed.person(Role.DATA_SCIENTIST).username}", "admin-user-actions"),
        ("/admin/break-glass", "admin-break-glass"),
        ("/account", "admin-account"),
    ):
        _visit(page, path, shot)
    assert page.page.get_by_role("link", name="Audit").count() == 0  # admins do not read it
    issue = page.page.locator("form.reveal")
    issue.get_by_label("Token name").fill("console-tour")
    issue.get_by_role("button", name="Issue API token").click()
    secret = issue.locator("output.secret")
    secret.wait_for(state="visible")
    assert secret.inner_text().startswith("mdo_")
    page.shoot("admin-token-issued")
