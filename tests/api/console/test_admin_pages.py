"""The admin pages: accounts with their state and last login, actions only for those who
manage users, the role matrix, and the review of break-glass grants. On SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx

from medops.api.console.layout import when
from medops.auth.schemas import BreakGlassOut, TokenIssued
from medops.core.permissions import Permission, Role
from medops.testing import FixedClock
from tests.helpers.http import PASSWORD, bearer, login


def test_an_admin_sees_every_account_and_the_create_form(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Each account with its role and a last login; the create form posts to the API; the
    matrix names every permission."""
    answer = http.get("/admin/users", headers=bearer(tokens[Role.ADMIN]))
    assert answer.status_code == 200, answer.text
    for role in Role:
        username = f"user-{role.value}".replace("_", "-")
        assert f'<a href="/admin/users/{username}">{username}</a>' in answer.text
    assert 'data-api="/api/v1/users"' in answer.text
    for permission in Permission:
        assert f"<code>{permission.value}</code>" in answer.text


def _row(page: str, username: str) -> str:
    start = page.index(f'<a href="/admin/users/{username}">')
    return page[start : page.index("</tr>", start)]


def test_last_login_is_the_latest_sign_in(
    http: httpx.Client, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """A new account shows no last login; after it signs in, the time it did."""
    admin = bearer(tokens[Role.ADMIN])
    made = http.post(
        "/api/v1/users",
        json={"username": "newcomer", "role": "auditor", "password": PASSWORD},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    created = when(clock.now())
    assert _row(http.get("/admin/users", headers=admin).text, "newcomer").count("—") >= 1
    clock.advance(timedelta(minutes=5))  # within the idle timeout
    assert login(http, "newcomer", PASSWORD).status_code == 200
    row = _row(http.get("/admin/users", headers=admin).text, "newcomer")
    assert f"<td>{when(clock.now())}</td><td>{created}</td>" in row


def test_an_auditor_reads_accounts_without_any_action(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """users:read without users:manage: the lists and a user's page, no form at all."""
    auditor = bearer(tokens[Role.AUDITOR])
    for address in ("/admin/users", "/admin/users/user-clinician"):
        answer = http.get(address, headers=auditor)
        assert answer.status_code == 200, answer.text
        assert "data-api=" not in answer.text.replace('data-api="/api/v1/auth/logout"', "")
        assert 'data-show="token"' not in answer.text


def test_a_clinician_gets_the_403_page_for_the_admin_pages(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """No users:read, no breakglass:review: 403 pages naming the permission."""
    clinician = bearer(tokens[Role.CLINICIAN])
    for address, permission in (
        ("/admin/users", "users:read"),
        ("/admin/users/user-admin", "users:read"),
        ("/admin/break-glass", "breakglass:review"),
    ):
        answer = http.get(address, headers=clinician)
        assert answer.status_code == 403
        assert permission in answer.text


def test_a_users_page_offers_the_actions_and_issues_a_token_shown_once(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """The admin sees disable, password and name forms, and the token form whose address
    issues a token with its secret (what console.js writes into the form)."""
    admin = bearer(tokens[Role.ADMIN])
    answer = http.get("/admin/users/user-service", headers=admin)
    assert answer.status_code == 200, answer.text
    for action in ("disable", "password-reset", "full-name"):
        assert f'data-api="/api/v1/users/user-service/{action}"' in answer.text
    found = re.search(r'data-api="([^"]+)" data-method="POST" data-show="token"', answer.text)
    assert found is not None
    issued = http.post(html.unescape(found.group(1)), json={"name": "ehr"}, headers=admin)
    assert issued.status_code == 201, issued.text
    assert TokenIssued.model_validate(issued.json()).token
    assert 'data-api="/api/v1/users/user-service/unlock"' not in answer.text
    assert http.get("/admin/users/nobody", headers=admin).status_code == 404


def test_failed_logins_show_and_offer_unlock(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """After a wrong password the account shows its failed logins and an Unlock form."""
    assert login(http, "user-clinician", PASSWORD + "-wrong").status_code == 401
    admin = bearer(tokens[Role.ADMIN])
    answer = http.get("/admin/users/user-clinician", headers=admin)
    assert "1 failed login(s)" in answer.text
    assert 'data-api="/api/v1/users/user-clinician/unlock"' in answer.text
    assert "1 failed login(s)" in http.get("/admin/users", headers=admin).text


def test_break_glass_grants_are_listed_with_a_review_form_until_reviewed(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A pending grant shows its holder, reason and a review form posting ``note`` to the
    API; once reviewed, the note replaces the form. Auditors get a link to its uses."""
    taken = http.post(
        "/api/v1/breakglass",
        json={"permission": "audit:read", "reason": "night shift incident 42"},
        headers=bearer(tokens[Role.CLINICIAN]),
    )
    assert taken.status_code == 201, taken.text
    grant = BreakGlassOut.model_validate(taken.json())
    admin = bearer(tokens[Role.ADMIN])
    answer = http.get("/admin/break-glass", headers=admin)
    assert answer.status_code == 200, answer.text
    assert "night shift incident 42" in answer.text
    review = f'data-api="/api/v1/breakglass/{grant.id}/review"'
    assert review in answer.text
    assert 'name="note"' in answer.text
    assert "breakglass.use" not in answer.text  # admins do not read the audit trail
    auditor = http.get("/admin/break-glass", headers=bearer(tokens[Role.AUDITOR])).text
    assert "action=breakglass.use" in auditor

    done = http.post(
        f"/api/v1/breakglass/{grant.id}/review", json={"note": "justified"}, headers=admin
    )
    assert done.status_code == 200, done.text
    after = http.get("/admin/break-glass", headers=admin).text
    assert review not in after
    assert "justified" in after
