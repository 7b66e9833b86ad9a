"""Every command of the `medops` tree answers `--json` (a person at a terminal reads tables; a
script reads JSON), and the ones that had none now say what they did in JSON."""

from __future__ import annotations

import re

from tests.helpers.cli_runner import Cli
from tests.helpers.commands import leaf_commands

ADMIN_PW = "tidal-granite-sketch"


def test_every_command_takes_json() -> None:
    """A walk of the whole command tree finds no command without --json."""
    found = leaf_commands()
    assert len(found) > 60
    without = [
        name
        for name, command in found
        if "--json" not in {o for p in command.params for o in getattr(p, "opts", [])}
    ]
    assert without == []


def test_the_commands_that_lacked_json_answer_it(cli: Cli) -> None:
    """`audit public-key`, `password` and `audit export --output` answer JSON."""
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    key = cli.ok("audit", "public-key", "--json").json()
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    cli.ok("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW)
    changed = cli.ok(
        "password", "--password-stdin", "--json", stdin=f"{ADMIN_PW}\nnew-granite-sketch-2\n"
    )
    assert changed.json() == {"changed": True}


def test_tables_show_values_not_python_reprs_and_colour_only_where_allowed(cli: Cli) -> None:
    """`models create` prints its policy as fields, not a dict repr; a verdict word is green
    on a colour terminal, and plain under NO_COLOR."""
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW, MEDOPS_MFA_REQUIRED_ROLES="")
    cli.ok("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW)
    cli.ok(
        "users", "create", "eli", "--role", "ml_engineer", "--full-name", "Eli Whitney",
        "--password-stdin", stdin="a-long-user-password\n",
    )  # fmt: skip
    cli.ok("login", "-u", "eli", "--password-stdin", stdin="a-long-user-password")
    created = cli.ok("models", "create", "risk").out
    assert "{'" not in created
    assert "protected_aliases: production" in " ".join(created.split())
    coloured = cli.subprocess("profiles", FORCE_COLOR="1")
    assert coloured.code == 0, coloured.err
    assert "\x1b[32m" in coloured.out  # "yes" in use, in green
    plain = cli.subprocess("profiles", FORCE_COLOR="1", NO_COLOR="1")
    assert not re.search(r"\x1b\[(3[0-7]|9[0-7])m", plain.out)  # no foreground colour
