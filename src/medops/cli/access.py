"""``medops mfa``, ``medops sessions``, ``medops breakglass`` and ``medops grants``."""

from __future__ import annotations

import sys

import typer

from medops.auth.mfa import terminal_qr
from medops.cli.common import PasswordStdinOption, client, read_password, settings
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.errors import InvalidInputError

mfa_app = typer.Typer(
    help="Multi-factor authentication (TOTP) for your account; rotate-key is local "
    "administration of the server's key.",
    no_args_is_help=True,
)
sessions_app = typer.Typer(help="Your logins (CLI and browser sessions).", no_args_is_help=True)
grants_app = typer.Typer(
    help="Review break-glass grants (needs breakglass:review).", no_args_is_help=True
)


@mfa_app.command("enroll")
def enroll(password_stdin: bool = PasswordStdinOption, json_output: bool = JsonOption) -> None:
    """Start TOTP enrollment (asks for your password again): shows a QR code to scan, then
    asks for the first code."""
    password = read_password(from_stdin=password_stdin, prompt="Your password")
    with client() as c:
        enrollment = c.mfa_enroll(password)
        if json_output:
            print_json(enrollment)
            return
        console.print(terminal_qr(enrollment.otpauth_uri), markup=False, highlight=False)
        console.print(f"Secret (if you cannot scan): {enrollment.secret}", markup=False)
        if not sys.stdin.isatty():
            console.print("Then run: medops mfa confirm CODE")
            return
        code = typer.prompt("Code from your authenticator app")
        try:
            codes = c.mfa_confirm(code)
        except InvalidInputError:
            console.print("That code did not match; try the next one.", markup=False)
            code = typer.prompt("Code from your authenticator app")
            codes = c.mfa_confirm(code)
    _show_recovery(codes.codes)


@mfa_app.command("confirm")
def confirm(
    code: str = typer.Argument(..., help="The current 6-digit code."),
    json_output: bool = JsonOption,
) -> None:
    """Finish enrollment with the current code; prints ten one-time recovery codes."""
    with client() as c:
        codes = c.mfa_confirm(code)
    if json_output:
        print_json(codes)
    else:
        _show_recovery(codes.codes)


@mfa_app.command("rotate-key")
def rotate_key(json_output: bool = JsonOption) -> None:
    """Re-encrypt every stored TOTP secret with a new key (local: run where the server's key
    and database are); the old key stays readable until every secret is done."""
    from medops import admin

    result = admin.mfa_rotate_key(settings())
    record = {
        "key_id": result.key_id,
        "retired_key_ids": result.retired_key_ids,
        "secrets_reencrypted": result.secrets_reencrypted,
        "key_source": result.key_source,
    }
    if json_output:
        print_json(record)
        return
    print_record("TOTP secrets re-encrypted", record)
    if result.key_source == "MEDOPS_MFA_KEY" and result.retired_key_ids:
        console.print(
            "Now remove the retired keys from MEDOPS_MFA_KEY on every replica.", markup=False
        )


def _show_recovery(codes: list[str]) -> None:
    console.print("MFA is on. Recovery codes (each works once; shown only now):", style="bold")
    for code in codes:
        console.print(f"  {code}", markup=False, highlight=False)


@sessions_app.command("list")
def list_sessions(json_output: bool = JsonOption) -> None:
    """List your live logins with start, last use and end."""
    with client() as c:
        sessions = c.sessions()
    if json_output:
        print_json(sessions)
        return
    print_table(
        "sessions",
        ("id", "kind", "started", "last used", "ends by"),
        [
            (
                t.id,
                t.kind,
                t.created_at.isoformat(timespec="seconds"),
                t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "",
                t.expires_at.isoformat(timespec="seconds"),
            )
            for t in sessions
        ],
    )


@sessions_app.command("revoke")
def revoke_session(
    session_id: str | None = typer.Argument(None, help="Session id (tok_...)."),
    all_sessions: bool = typer.Option(
        False, "--all", help="End all your sessions (log out everywhere)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """End one of your sessions, or all of them with --all."""
    if (session_id is None) == (not all_sessions):
        raise typer.BadParameter("give a session id or --all, not both")
    with client() as c:
        if all_sessions:
            ended = c.logout_everywhere()
        else:
            assert session_id is not None
            c.revoke_token(session_id)
            ended = 1
    if json_output:
        print_json({"sessions_ended": ended})
    else:
        console.print(f"{ended} session(s) ended")


def breakglass(
    permission: str = typer.Argument(..., help="The permission to take, e.g. audit:read."),
    reason: str = typer.Option(
        ..., "--reason", help="Why (at least 10 characters); reviewed later."
    ),
    minutes: int = typer.Option(60, "--minutes", help="How long the access lasts."),
    resource: str | None = typer.Option(None, "--resource", help="What it is for (e.g. an id)."),
    json_output: bool = JsonOption,
) -> None:
    """Take emergency access to a permission now; audited as break-glass, reviewed later."""
    with client() as c:
        grant = c.breakglass(permission, reason, minutes=minutes, resource=resource)
    if json_output:
        print_json(grant)
    else:
        print_record(f"break-glass grant {grant.id}", grant.model_dump(mode="json"))


@grants_app.command("list")
def list_grants(
    pending: bool = typer.Option(False, "--pending", help="Only grants not yet reviewed."),
    json_output: bool = JsonOption,
) -> None:
    """List break-glass grants, newest first."""
    with client() as c:
        grants = c.breakglass_grants(pending=pending)
    if json_output:
        print_json(grants)
        return
    print_table(
        "break-glass grants",
        ("id", "user", "permission", "granted", "active", "reason", "reviewed by"),
        [
            (
                g.id,
                g.username,
                g.permission,
                g.granted_at.isoformat(timespec="seconds"),
                "yes" if g.active else "no",
                g.reason,
                g.reviewed_by or "(pending)",
            )
            for g in grants
        ],
    )


@grants_app.command("review")
def review_grant(
    grant_id: str = typer.Argument(..., help="Grant id (bg_...)."),
    note: str = typer.Option(..., "--note", help="What the review concluded."),
    json_output: bool = JsonOption,
) -> None:
    """Record your review of a break-glass grant."""
    with client() as c:
        grant = c.review_breakglass(grant_id, note)
    if json_output:
        print_json(grant)
    else:
        print_record(f"reviewed {grant.id}", grant.model_dump(mode="json"))
