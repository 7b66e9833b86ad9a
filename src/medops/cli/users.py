"""``medops users``: create, list and disable accounts."""

from __future__ import annotations

import typer

from medops.cli.common import PasswordStdinOption, client, read_password
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.core.permissions import Role

app = typer.Typer(
    help="Manage user accounts (needs users:manage or users:read).",
    no_args_is_help=True,
)
KeepTokensOption = typer.Option(
    False,
    "--keep-tokens",
    help="Keep the account's API tokens (service accounts only); by default they are revoked.",
)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Login name: lower case, 2-64 characters."),
    role: Role = typer.Option(..., "--role", help="The account's one role."),
    full_name: str | None = typer.Option(
        None, "--full-name", help="Full name, printed with the user's electronic signatures."
    ),
    password_stdin: bool = PasswordStdinOption,
    json_output: bool = JsonOption,
) -> None:
    """Create an account with one role; prompts for its initial password."""
    password = read_password(from_stdin=password_stdin, prompt=f"Password for {name}", confirm=True)
    with client() as c:
        user = c.create_user(name, role.value, password, full_name=full_name)
    if json_output:
        print_json(user)
    else:
        print_record(f"created user {user.username}", user.model_dump(mode="json"))


@app.command("set-name")
def set_name(
    name: str = typer.Argument(..., help="Login name."),
    full_name: str = typer.Argument(..., help="Full name, printed with electronic signatures."),
    json_output: bool = JsonOption,
) -> None:
    """Set the full name printed with a user's electronic signatures."""
    with client() as c:
        user = c.set_full_name(name, full_name)
    if json_output:
        print_json(user)
    else:
        print_record(f"full name of {user.username} set", user.model_dump(mode="json"))


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List accounts with role and status."""
    with client() as c:
        users = c.list_users()
    if json_output:
        print_json(users)
        return
    print_table(
        "users",
        ("username", "role", "active", "created", "id"),
        [
            (
                u.username,
                u.role.value,
                "yes" if u.active else "no",
                u.created_at.isoformat(timespec="seconds"),
                u.id,
            )
            for u in users
        ],
    )


@app.command("disable")
def disable(
    name: str = typer.Argument(..., help="Login name."), json_output: bool = JsonOption
) -> None:
    """Disable an account; its tokens stop working at once."""
    with client() as c:
        user = c.disable_user(name)
    if json_output:
        print_json(user)
    else:
        print_record(f"disabled user {user.username}", user.model_dump(mode="json"))


@app.command("enable")
def enable(
    name: str = typer.Argument(..., help="Login name."), json_output: bool = JsonOption
) -> None:
    """Re-enable a disabled account; its old tokens stay revoked (it logs in again)."""
    with client() as c:
        user = c.enable_user(name)
    if json_output:
        print_json(user)
    else:
        print_record(f"enabled user {user.username}", user.model_dump(mode="json"))


@app.command("roles")
def roles(json_output: bool = JsonOption) -> None:
    """Show the role -> permission matrix the server enforces."""
    with client() as c:
        matrix = c.roles()
    if json_output:
        print_json(matrix)
        return
    names = list(matrix.roles)
    print_table(
        "permissions by role",
        ("permission", *names),
        [
            (perm, *("yes" if perm in matrix.roles[r] else "-" for r in names))
            for perm in matrix.permissions
        ],
    )


@app.command("unlock")
def unlock(
    name: str = typer.Argument(..., help="Login name."), json_output: bool = JsonOption
) -> None:
    """Clear the slowing of an account's logins and the lock of its re-authentication."""
    with client() as c:
        c.unlock(name)
    if json_output:
        print_json({"username": name, "unlocked": True})
    else:
        console.print(f"unlocked {name}")


@app.command("reset-password")
def reset_password(
    name: str = typer.Argument(..., help="Login name."),
    password_stdin: bool = PasswordStdinOption,
    keep_tokens: bool = KeepTokensOption,
    json_output: bool = JsonOption,
) -> None:
    """Give a user a temporary password they must change at next login; their logins end
    and their API tokens are revoked (unless --keep-tokens, for a service account)."""
    temporary = read_password(
        from_stdin=password_stdin, prompt=f"Temporary password for {name}", confirm=True
    )
    with client() as c:
        user = c.reset_password(name, temporary, keep_tokens=keep_tokens)
    if json_output:
        print_json(user)
    else:
        console.print(f"password of {name} reset; they must change it at next login")


@app.command("reset-mfa")
def reset_mfa(
    name: str = typer.Argument(..., help="Login name."),
    keep_tokens: bool = KeepTokensOption,
    json_output: bool = JsonOption,
) -> None:
    """Remove a user's TOTP and recovery codes (a lost phone); they enroll again. Their
    logins end and their API tokens are revoked (unless --keep-tokens, for a service account)."""
    with client() as c:
        user = c.reset_mfa(name, keep_tokens=keep_tokens)
    if json_output:
        print_json(user)
    else:
        console.print(f"MFA of {name} removed; they must enroll again")
