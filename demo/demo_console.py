"""The demo's last part: the web console. Every user signs in the way a browser does (the
session cookie and its CSRF token, with a one-time code where MFA applies) and opens each
console page; what each role may open is checked against the permission table. Then the
console's address and every user's credentials are printed, and, when the demo runs in a
terminal, the console keeps serving until Ctrl-C."""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping

import httpx
from rich.console import Console
from rich.table import Table

from medops.api.app import create_app
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import ROLE_PERMISSIONS, Permission, Role

console = Console(highlight=False)
NAME = "diabetes-risk"
DEPLOYMENT = "diabetes"
PAGES: dict[str, tuple[str, Permission]] = {
    "/deployments": ("overview", Permission.DEPLOYMENTS_READ),
    f"/deployments/{DEPLOYMENT}": ("monitoring", Permission.MONITORING_READ),
    "/alerts": ("alerts", Permission.ALERTS_READ),
    "/slo": ("service levels", Permission.SLO_READ),
    "/models": ("models", Permission.MODELS_READ),
    f"/models/{NAME}/versions/1": ("a version", Permission.MODELS_READ),
    "/datasets": ("datasets", Permission.DATA_READ),
    "/datasets/chest-ct/1": ("a dataset version", Permission.DATA_READ),
    "/lineage?ref=diabetes@1": ("lineage", Permission.LINEAGE_READ),
    "/audit": ("audit", Permission.AUDIT_READ),
    "/admin/users": ("users", Permission.USERS_READ),
    "/admin/break-glass": ("break-glass", Permission.BREAKGLASS_REVIEW),
}


def console_demo(
    settings: Settings,
    users: Mapping[str, Role],
    password: str,
    recovery: dict[str, list[str]],
) -> list[str]:
    """Each user opens every page through a browser session; returns the answers that
    differ from the permission table (and the user's running break-glass grants)."""
    console.rule("web console")
    problems: list[str] = []
    table = Table(
        title="Console pages each user opens (200) or is refused (403)", title_justify="left"
    )
    table.add_column("user")
    for label, _ in PAGES.values():
        table.add_column(label)
    app = create_app(settings)
    for username, role in users.items():
        transport = EmbeddedTransport(app)
        with httpx.Client(transport=transport, base_url="https://127.0.0.1") as browser:
            form = {"username": username, "password": password}
            signed = browser.post("/api/v1/auth/session", data=form)
            if signed.status_code == 401 and recovery.get(username):
                signed = browser.post(
                    "/api/v1/auth/session", data=form | {"otp": recovery[username].pop()}
                )
            if signed.status_code != 200:
                problems.append(f"{username} could not sign in: {signed.status_code}")
                continue
            # A running break-glass grant (the data scientist took one earlier) opens what it
            # grants, and the use is recorded: expected, and marked in the table.
            me = browser.get("/api/v1/auth/me").json()
            emergency = set(me["emergency_permissions"])
            cells = []
            for path, (_, permission) in PAGES.items():
                status = browser.get(path).status_code
                glass = permission not in ROLE_PERMISSIONS[role] and permission in emergency
                expected = 200 if permission in ROLE_PERMISSIONS[role] or glass else 403
                style = "green" if status == 200 else "red"
                shown = f"[{style}]{status}[/]" + (" (break-glass)" if glass else "")
                cells.append(shown if status == expected else f"[bold]{status}!")
                if status != expected:
                    problems.append(f"{username} {path}: {status}, expected {expected}")
        table.add_row(username, *cells)
    console.print(table)
    return problems


def _port(preferred: int = 8000) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_console(
    settings: Settings,
    users: Mapping[str, Role],
    password: str,
    secrets: Mapping[str, str],
    recovery: Mapping[str, list[str]],
) -> None:
    """Print the console's address and the credentials; serve it when in a terminal."""
    port = _port()
    url = f"http://127.0.0.1:{port}/"
    table = Table(
        title=f"Sign in at {url} (every user's password: {password})", title_justify="left"
    )
    for column in ("user", "role", "TOTP secret (authenticator app)", "a recovery code"):
        table.add_column(column, overflow="fold")
    for username, role in users.items():
        codes = recovery.get(username) or []
        table.add_row(
            username, role.value, secrets.get(username, "no MFA"), codes[0] if codes else "-"
        )
    console.print(table)
    console.print(
        "A one-time code: python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\" "
        "or any authenticator app; each recovery code works once."
    )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        console.print(
            f"Not a terminal: the demo ends here. Serve the console again with "
            f"MEDOPS_HOME={settings.home} medops console --port {port}"
        )
        return
    import uvicorn

    console.print(f"[bold]The console serves at {url}: Ctrl-C stops it.[/]")
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
