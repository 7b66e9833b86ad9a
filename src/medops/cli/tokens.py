"""``medops tokens``: the caller's API tokens."""

from __future__ import annotations

import typer

from medops.cli.common import client, parse_expiry
from medops.cli.output import JsonOption, console, print_json, print_record, print_table

app = typer.Typer(help="Create, list and revoke your API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Option("api", "--name", help="A label to recognise the token by."),
    expires: str | None = typer.Option(
        None,
        "--expires",
        help="Lifetime (30d, 12h, 90m, 2w) or ISO date; default 90 days.",
    ),
    for_user: str | None = typer.Option(
        None, "--for", help="Issue it to this account instead (needs users:manage)."
    ),
    scope: list[str] | None = typer.Option(
        None, "--scope", help="Limit the token to this permission (repeat for several)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Create an API token for yourself (or, with --for, a service account); shown once."""
    expires_at = parse_expiry(expires) if expires else None
    with client() as c:
        issued = c.create_token(name, expires_at, for_user=for_user, scopes=scope or None)
    if json_output:
        print_json(issued)
        return
    record = issued.model_dump(mode="json")
    secret = record.pop("token")
    print_record(f"created token {issued.id}", record)
    console.print("Token (shown once; store it now):", style="bold")
    console.print(secret, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List your tokens (never their secrets)."""
    with client() as c:
        tokens = c.list_tokens()
    if json_output:
        print_json(tokens)
        return
    print_table(
        "tokens",
        ("id", "name", "kind", "created", "expires", "revoked"),
        [
            (
                t.id,
                t.name,
                t.kind,
                t.created_at.isoformat(timespec="seconds"),
                t.expires_at.isoformat(timespec="seconds"),
                t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
            )
            for t in tokens
        ],
    )


@app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="Token id (tok_...)."),
    json_output: bool = JsonOption,
) -> None:
    """Revoke a token; it stops working on the next request."""
    with client() as c:
        token = c.revoke_token(token_id)
    if json_output:
        print_json(token)
    else:
        print_record(f"revoked token {token.id}", token.model_dump(mode="json"))
