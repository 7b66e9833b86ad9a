"""The stories a user lives, in a real browser on a seeded server: a clinician signs an
approval, an auditor finds a patient's records and exports them as FHIR, a clinician is
refused the admin pages. Every page is checked with axe and photographed."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from medops.core.permissions import Role
from medops.registry.schemas import MEANING_STATEMENTS
from tests.helpers.browser import ConsolePage, sign_in_as

pytestmark = pytest.mark.browser


def test_a_clinician_reads_the_meaning_and_signs_a_version_with_password_and_code(
    page: ConsolePage,
) -> None:
    """The version awaiting signatures: the form states each meaning first; the clinician
    chooses "approval", types the password and a fresh one-time code, and the signature is
    listed as valid after the page reloads."""
    seed = page.seed
    clinician = seed.person(Role.CLINICIAN)
    sign_in_as(page, clinician)
    page.goto(f"/models/{seed.model}/versions/{seed.pending_version}")
    form = page.page.locator("form.action", has=page.page.get_by_role("button", name="Sign"))
    for statement in MEANING_STATEMENTS.values():
        assert form.get_by_text(statement).is_visible()
    page.check_accessibility()
    page.shoot("version-before-signing")
    form.get_by_label("Meaning of the signature").select_option("approval")
    form.get_by_label("Comment").fill("Reviewed the subgroup results with the team.")
    form.get_by_label("Your password (re-authentication)").fill(clinician.password)
    form.get_by_label("One-time code").fill(page.server.codes.next(clinician.username))
    with page.page.expect_navigation(wait_until="networkidle"):
        form.get_by_role("button", name="Sign").click()
    signatures = page.page.locator("section#signatures table")
    row = signatures.locator("tr", has_text=clinician.username)
    assert row.get_by_text("approval").is_visible()
    assert row.get_by_text("valid", exact=True).is_visible()
    assert row.get_by_text("Reviewed the subgroup results").is_visible()
    page.shoot("version-signed")


def test_an_auditor_finds_a_patients_records_and_exports_them_as_fhir(
    page: ConsolePage,
) -> None:
    """Search by patient reference lists only that patient's records; a record opens with
    its hashes; the FHIR export for the same filter is a Bundle of as many AuditEvents."""
    patient = "pt-1-7"
    sign_in_as(page, page.seed.person(Role.AUDITOR))
    page.goto("/audit")
    page.check_accessibility()
    page.page.get_by_label("Patient reference").fill(patient)
    with page.page.expect_navigation(wait_until="networkidle"):
        page.page.get_by_role("button", name="Search").click()
    assert f"patient={patient}" in page.page.url
    rows = page.page.locator("main table tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert patient in rows.nth(i).inner_text()
    page.shoot("audit-search-patient")
    export = page.page.get_by_role("link", name="FHIR R4 Bundle of AuditEvent")
    href = export.get_attribute("href")
    assert href is not None
    assert f"patient={patient}" in href
    answer = page.page.request.get(page.server.url + href)
    assert answer.ok
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = json.loads(answer.text())
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == rows.count()
    with page.page.expect_navigation(wait_until="networkidle"):
        rows.first.get_by_role("link").first.click()
    assert urlsplit(page.page.url).path.startswith("/audit/")
    assert page.page.get_by_text("Hash (SHA-256)").is_visible()
    assert page.page.get_by_text("Previous hash").is_visible()
    page.check_accessibility()
    page.shoot("audit-record")


def test_a_clinician_is_refused_the_admin_pages(page: ConsolePage) -> None:
    """The menu offers no admin page to a clinician, and opening one answers a 403 page
    that names the permission it needs."""
    sign_in_as(page, page.seed.person(Role.CLINICIAN))
    menu = page.page.get_by_role("navigation", name="Main")
    assert menu.get_by_role("link", name="Users").count() == 0
    assert menu.get_by_role("link", name="Audit").count() == 0
    page.allow_console_error(r"status of 403")
    for path, permission in (
        ("/admin/users", "users:read"),
        ("/admin/break-glass", "breakglass:review"),
        ("/audit", "audit:read"),
    ):
        answer = page.page.goto(page.server.url + path, wait_until="networkidle")
        assert answer is not None
        assert answer.status == 403
        assert page.page.get_by_role("heading", name="Not permitted").is_visible()
        assert page.page.get_by_text(permission).first.is_visible()
    page.check_accessibility()
    page.shoot("clinician-refused-admin")


def test_an_ml_engineer_finds_the_drift_opens_the_feature_and_rolls_the_canary_back(
    page: ConsolePage,
) -> None:
    """Signed in with a one-time code: the overview shows the drifted latest window; the
    deployment's page marks it; its window page shows a drifted feature's reference and
    current distributions; back on the deployment's page the canary is rolled back (the
    confirmation accepted) and the page shows no canary. Runs last: it ends the seed's
    canary."""
    seed = page.seed
    sign_in_as(page, seed.person(Role.ML_ENGINEER))
    row = page.page.locator("main table tbody tr", has_text=seed.deployment)
    drifted = [w for w in seed.drifted_windows if w.version == seed.production_version]
    assert drifted, "the seed's last day drifts"
    assert row.get_by_text(drifted[-1].verdict).first.is_visible()
    page.shoot("story-overview-drift")

    with page.page.expect_navigation(wait_until="networkidle"):
        row.get_by_role("link", name=seed.deployment, exact=True).click()
    assert page.page.get_by_role("heading", name="Feature drift").is_visible()
    page.check_accessibility()
    page.shoot("story-deployment")

    window = drifted[-1]
    with page.page.expect_navigation(wait_until="networkidle"):
        page.page.locator(f'a[href="{window.href}"]').first.click()
    assert urlsplit(page.page.url).path == window.href
    feature = page.page.locator("h3", has=page.page.locator(".badge.bad", has_text="drift"))
    assert feature.count() >= 1
    name = feature.first.get_attribute("id")
    assert name is not None
    block = page.page.locator(f"#{name} + .window-feature")
    chart = block.locator("figure.chart svg")
    assert chart.first.is_visible()
    assert block.get_by_text("reference", exact=False).first.is_visible()
    page.check_accessibility()
    page.shoot("story-window-drifted-feature")

    with page.page.expect_navigation(wait_until="networkidle"):
        page.page.get_by_role("navigation", name="Breadcrumb").get_by_role(
            "link", name=seed.deployment
        ).click()
    page.page.once("dialog", lambda dialog: dialog.accept())
    rollback = page.page.locator(
        "form.action", has=page.page.get_by_role("button", name="Roll back")
    )
    rollback.get_by_label("Reason (recorded in the audit trail)").fill(
        "drift in the canary's last day; back to the production version"
    )
    with page.page.expect_navigation(wait_until="networkidle"):
        rollback.get_by_role("button", name="Roll back").click()
    facts = page.page.locator("dl.facts")
    assert facts.get_by_text(f"v{seed.canary_version} at").count() == 0
    assert (
        facts.locator("dt", has_text="canary")
        .locator("xpath=following-sibling::dd[1]")
        .inner_text()
        == "none"
    )
    page.shoot("story-canary-rolled-back")


def test_a_clinician_acknowledges_an_alert_from_its_page(page: ConsolePage) -> None:
    """Signed in with a one-time code: the menu's Alerts lists the seeded drift alert as
    firing; its page acknowledges it with a note (a form sent to the API), and the reloaded
    page says who took it, with the note, and offers no second acknowledgement."""
    seed = page.seed
    sign_in_as(page, seed.person(Role.CLINICIAN))
    with page.page.expect_navigation(wait_until="networkidle"):
        page.page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    row = page.page.locator("main table tbody tr", has_text="DriftDetected").first
    assert row.get_by_text("firing").is_visible()
    page.shoot("story-alerts")
    with page.page.expect_navigation(wait_until="networkidle"):
        row.get_by_role("link", name="DriftDetected").click()
    page.check_accessibility()
    ack = page.page.locator("form.action", has=page.page.get_by_role("button", name="Acknowledge"))
    ack.get_by_label("Note").fill("reviewing the new referral population")
    with page.page.expect_navigation(wait_until="networkidle"):
        ack.get_by_role("button", name="Acknowledge").click()
    life = page.page.locator("#life")
    username = seed.person(Role.CLINICIAN).username
    assert life.get_by_text(f"by {username} — reviewing the new referral population").is_visible()
    assert page.page.get_by_role("button", name="Acknowledge").count() == 0
    page.shoot("story-alert-acknowledged")
