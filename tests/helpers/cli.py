"""Setting up people through the CLI, as an admin would at a terminal."""

from __future__ import annotations

from collections.abc import Iterable

from tests.cli.conftest import Cli

ADMIN_PW = "tidal-granite-sketch"
USER_PW = "a-long-user-password"


def log_in(cli: Cli, user: str, password: str | None = None) -> None:
    """`medops login` as ``user`` (the admin's password for admin, else the users')."""
    secret = password or (ADMIN_PW if user == "admin" else USER_PW)
    cli.ok("login", "--username", user, "--password-stdin", stdin=secret + "\n")


def init_with_people(cli: Cli, people: Iterable[tuple[str, str, str]]) -> None:
    """`medops init`, then the admin creates each (username, role, full name) with USER_PW."""
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    log_in(cli, "admin")
    for user, role, name in people:
        cli.ok(
            "users", "create", user, "--role", role, "--full-name", name, "--password-stdin",
            stdin=USER_PW + "\n",
        )  # fmt: skip
