"""The medops end-to-end demo (``make demo``): grows with every capability.

Today: a fresh installation in a temporary folder (SQLite), one user per role, a handful of
actions tried by each role through the SDK (the same path as the API and CLI), the table of
what each role may and may not do, and the audit trail of it all. The demo checks that what
happened matches the permission table and exits non-zero if not.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medops import admin
from medops.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from medops.client import Client
from medops.config import Settings
from medops.errors import MedopsError, PermissionDeniedError

console = Console(width=160)
PASSWORD = "demo-password-not-for-production"

Action = tuple[str, Permission, Callable[[Client, Role], object]]
ACTIONS: list[Action] = [
    ("see own identity", Permission.SELF, lambda c, _r: c.whoami()),
    ("create own API token", Permission.TOKENS_CREATE, lambda c, _r: c.create_token("demo")),
    ("list users", Permission.USERS_READ, lambda c, _r: c.list_users()),
    (
        "create a user",
        Permission.USERS_MANAGE,
        lambda c, r: c.create_user(f"made-by-{r.value.replace('_', '-')}", "clinician", PASSWORD),
    ),
    ("read the audit trail", Permission.AUDIT_READ, lambda c, _r: c.audit_events(limit=5)),
]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="medops-demo-") as folder:
        settings = Settings(home=Path(folder) / "home", admin_password=PASSWORD)  # type: ignore[arg-type]
        init = admin.init(settings)
        console.rule("[bold]medops demo")
        console.print(
            f"Initialized [bold]{init.home}[/] ({init.database}, schema {init.revision}); "
            f"first admin: [bold]{init.admin.username}[/]"
        )
        with Client(settings=settings) as admin_client:
            admin_client.login("admin", PASSWORD)
            for role in Role:
                if role is not Role.ADMIN:
                    admin_client.create_user(_username(role), role.value, PASSWORD)
        console.print(f"Created one user per role: {', '.join(_username(r) for r in Role)}\n")

        mismatches = _try_actions(settings)
        _show_audit(settings)
    if mismatches:
        console.print(f"[red]{len(mismatches)} outcome(s) differ from the permission table:[/]")
        for line in mismatches:
            console.print(f"  {line}")
        return 1
    console.print("[green]Every outcome matches the role -> permission table.[/]")
    return 0


def _username(role: Role) -> str:
    return "admin" if role is Role.ADMIN else role.value.replace("_", "-")


def _try_actions(settings: Settings) -> list[str]:
    table = Table(
        title="What each role may do (tried through the SDK -> API)", title_justify="left"
    )
    table.add_column("action")
    table.add_column("permission")
    for role in Role:
        table.add_column(role.value)
    outcomes: dict[tuple[str, Role], bool] = {}
    for role in Role:
        with Client(settings=settings) as client:
            client.login(_username(role), PASSWORD)
            for name, _permission, call in ACTIONS:
                try:
                    call(client, role)
                    outcomes[name, role] = True
                except PermissionDeniedError:
                    outcomes[name, role] = False
                except MedopsError as exc:  # anything else is a demo failure
                    console.print(f"[red]{role.value} / {name}: {exc}[/]")
                    outcomes[name, role] = False
    mismatches = []
    for name, permission, _call in ACTIONS:
        cells = []
        for role in Role:
            allowed = outcomes[name, role]
            cells.append("[green]allowed[/]" if allowed else "[red]denied (403)[/]")
            if allowed != (permission in ROLE_PERMISSIONS[role]):
                mismatches.append(f"{role.value} / {name}: allowed={allowed}")
        table.add_row(name, permission.value, *cells)
    console.print(table)
    return mismatches


def _show_audit(settings: Settings) -> None:
    with Client(settings=settings) as auditor:
        auditor.login("auditor", PASSWORD)
        page = auditor.audit_events(limit=1000)
    table = Table(
        title=f"Audit trail ({len(page.events)} records, oldest first; read as the auditor)",
        title_justify="left",
    )
    for column in ("seq", "time (UTC)", "actor", "role", "via", "action", "resource", "outcome"):
        table.add_column(column)
    for event in reversed(page.events):
        outcome = event.outcome
        style = {"success": "green", "denied": "red", "failure": "yellow"}.get(outcome, "")
        table.add_row(
            str(event.seq),
            event.occurred_at.strftime("%H:%M:%S.%f")[:-3],
            event.actor_name or "(anonymous)",
            event.actor_role or "",
            event.auth_method or "",
            event.action,
            f"{event.resource_type or ''} {event.resource_id or ''}".strip(),
            f"[{style}]{outcome}[/]" if style else outcome,
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
