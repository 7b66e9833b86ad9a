"""The CLI's access-control commands: MFA, sessions, password, break-glass, grants, roles."""

from __future__ import annotations

import time

import pyotp

from tests.helpers.cli import (
    ADMIN_PW,
    assert_one_line_error,
    init_admin,
    login_as,
)
from tests.helpers.cli_runner import Cli

NURSE_PW = "gentle-spruce-window"


def _with_nurse(cli: Cli) -> None:
    init_admin(cli)
    login_as(cli)
    cli.ok("users", "create", "nurse", "--role", "clinician", "--password-stdin", stdin=NURSE_PW)


def test_mfa_policy_enroll_and_login_with_a_code(cli: Cli) -> None:
    """Under the policy the admin must enroll first; then logins need --otp."""
    policy = {"MEDOPS_MFA_REQUIRED_ROLES": "admin"}
    cli.ok("init", MEDOPS_ADMIN_PASSWORD=ADMIN_PW, **policy)
    login = cli.ok("login", "-u", "admin", "--password-stdin", "--json", stdin=ADMIN_PW, **policy)
    assert login.json()["restriction"] == "mfa-enrollment"
    assert_one_line_error(cli("users", "list", **policy), "enroll first")
    enrollment = cli.ok(
        "mfa", "enroll", "--password-stdin", "--json", stdin=ADMIN_PW, **policy
    ).json()
    totp = pyotp.TOTP(enrollment["secret"])
    codes = cli.ok("mfa", "confirm", totp.now(), "--json", **policy).json()["codes"]
    assert len(codes) == 10
    cli.ok("users", "list", **policy)
    no_code = cli("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW, **policy)
    assert_one_line_error(no_code, "one-time code")
    with_code = cli.ok(
        "login", "-u", "admin", "--password-stdin", "--otp", codes[0], stdin=ADMIN_PW, **policy
    )
    assert "logged in as admin" in with_code.out
    assert cli.ok("whoami", "--json", **policy).json()["auth_method"] == "password+totp"


def test_sessions_list_and_revoke_all(cli: Cli) -> None:
    """sessions list shows this login; revoke --all ends it."""
    init_admin(cli)
    login_as(cli)
    sessions = cli.ok("sessions", "list", "--json").json()
    assert [s["kind"] for s in sessions] == ["login"]
    assert cli.ok("sessions", "revoke", "--all", "--json").json() == {"sessions_ended": 1}
    assert_one_line_error(cli("whoami"), "authentication required")  # token forgotten too
    assert_one_line_error(cli("sessions", "revoke"), "give a session id or --all")


def test_password_change_reset_and_unlock(cli: Cli) -> None:
    """Admin resets the nurse; the nurse must change it; an admin clears a slowed name."""
    _with_nurse(cli)
    cli.ok("users", "reset-password", "nurse", "--password-stdin", stdin="temp-maple-bridge")
    login_as(cli, "nurse", "temp-maple-bridge")
    assert_one_line_error(cli("tokens", "create"), "change your password first")
    cli.ok("password", "--password-stdin", stdin="temp-maple-bridge\nnew-cedar-lantern\n")
    cli.ok("tokens", "create")
    login_as(cli)
    fast = {"MEDOPS_LOGIN_DELAY_BASE_SECONDS": "0.01"}
    for _ in range(5):
        cli("login", "-u", "nurse", "--password-stdin", stdin="wrong-guess-000", **fast)
    assert cli.ok("users", "unlock", "nurse", "--json").json() == {
        "username": "nurse",
        "unlocked": True,
    }
    assert_one_line_error(cli("users", "unlock", "nurse"), "neither slowed nor locked")
    login_as(cli, "nurse", "new-cedar-lantern")


def test_breakglass_and_review(cli: Cli) -> None:
    """The nurse takes audit:read with a reason; the admin sees it pending and reviews it."""
    _with_nurse(cli)
    login_as(cli, "nurse", NURSE_PW)
    grant = cli.ok(
        "breakglass", "audit:read", "--reason", "code blue in ward 7, tracing model use", "--json"
    ).json()
    assert grant["active"] is True
    assert cli.ok("whoami", "--json").json()["emergency_permissions"] == ["audit:read"]
    login_as(cli)
    pending = cli.ok("grants", "list", "--pending", "--json").json()
    assert [g["id"] for g in pending] == [grant["id"]]
    cli.ok("grants", "review", grant["id"], "--note", "justified")
    assert cli.ok("grants", "list", "--pending", "--json").json() == []


def test_roles_matrix_and_scoped_tokens(cli: Cli) -> None:
    """users roles prints the matrix; tokens create --scope narrows a token."""
    init_admin(cli)
    login_as(cli)
    matrix = cli.ok("users", "roles", "--json").json()
    assert "users:manage" in matrix["roles"]["admin"]
    assert "users:manage" not in matrix["roles"]["auditor"]
    human = cli.ok("users", "roles").out
    assert "breakglass:use" in human
    token = cli.ok("tokens", "create", "--scope", "self", "--json").json()
    assert token["scopes"] == ["self"]
    assert_one_line_error(cli("users", "list", MEDOPS_TOKEN=token["token"]), "lacks permission")


def test_users_enable_and_keep_tokens_on_a_service_reset(cli: Cli) -> None:
    """users enable brings a disabled account back; --keep-tokens keeps a service's tokens
    and is refused for a person in one line."""
    _with_nurse(cli)
    cli.ok("users", "disable", "nurse")
    enabled = cli.ok("users", "enable", "nurse", "--json").json()
    assert enabled["active"] is True
    assert_one_line_error(cli("users", "enable", "nurse"), "not disabled")
    cli.ok("users", "create", "robot", "--role", "service", "--password-stdin", stdin=NURSE_PW)
    token = cli.ok("tokens", "create", "--for", "robot", "--json").json()["token"]
    cli.ok(
        "users", "reset-password", "robot", "--keep-tokens", "--password-stdin",
        stdin="fresh-granite-owl",
    )  # fmt: skip
    assert cli.ok("whoami", "--json", MEDOPS_TOKEN=token).json()["username"] == "robot"
    refused = cli(
        "users", "reset-password", "nurse", "--keep-tokens", "--password-stdin",
        stdin="fresh-granite-owl",
    )  # fmt: skip
    assert_one_line_error(refused, "keep_tokens")


def test_mfa_rotate_key_reencrypts_and_logins_go_on(cli: Cli) -> None:
    """mfa rotate-key (local) re-encrypts the enrolled secret; the code still logs in."""
    _with_nurse(cli)
    login_as(cli, "nurse", NURSE_PW)
    enrollment = cli.ok("mfa", "enroll", "--password-stdin", "--json", stdin=NURSE_PW).json()
    totp = pyotp.TOTP(enrollment["secret"])
    cli.ok("mfa", "confirm", totp.now())
    rotated = cli.ok("mfa", "rotate-key", "--json").json()
    assert rotated["secrets_reencrypted"] == 1
    assert rotated["key_id"] not in rotated["retired_key_ids"]
    assert "TOTP secrets re-encrypted" in cli.ok("mfa", "rotate-key").out
    next_step = totp.at(time.time() + 30)  # the confirmed step is spent; one step ahead is allowed
    command = ("login", "-u", "nurse", "--password-stdin", "--otp", next_step)
    assert "logged in as nurse" in cli.ok(*command, stdin=NURSE_PW).out
