"""The medops end-to-end demo (``make demo``): grows with every capability.

Today, on a fresh installation in ./demo-output (or ``MEDOPS_DEMO_DIR``; SQLite), all through
the SDK (the same path as the API and CLI). The installation, the reports and the whole audit
trail stay there after the demo, and it says where:

1. The first admin logs in and, as the MFA policy demands, can do nothing but enroll TOTP;
   the demo plays the authenticator app (pyotp) and gets recovery codes.
2. One user per role; a handful of actions tried by each role; the table of what each role
   may and may not do, checked against the permission matrix.
3. Security in action: a password guesser slows the account down (it is never locked: the
   right password still gets in); a data scientist takes break-glass access with a reason and
   an auditor reviews it.
4. The model registry: a data scientist trains a classifier on data that ships with
   scikit-learn (diabetes progression, binarized at the median; sex and age bands as
   subgroups), registers it as ONNX after a parity check, and has medops compute a validation
   report; a clinician writes the model card; a promotion without signatures is refused with
   the missing conditions listed; a clinician and an ML engineer sign (re-authenticating); the
   promotion succeeds. A second version follows and is rolled back; the history and the
   version in production at a past moment are shown.
5. The audit trail of it all, counted by action as the auditor reads it (the records
   themselves in audit-trail.csv); a signed checkpoint and an offline verification of the
   hash chains.
6. Alerts: a scripted incident on the running deployment (a drift and a latency regression
   injected), with real webhook receivers checking every signature: the right teams are told
   within the rule's ``for`` plus group_wait, nobody acknowledges so the ops lead is paged, the
   on-call engineer acknowledges and escalation stops, recovery sends a resolved notification,
   and the month's SLA report shows the incident and the budget spent.
7. Operations: the version in production's ML bill of materials and its CI gate; a backup of
   the whole installation, verified, a second one that copies only what changed, and a
   restore onto an empty machine whose audit trail verifies.
8. The web console: every user signs in as a browser does (session cookie, CSRF token, a
   one-time code where MFA applies) and opens each console page; which pages each role opens
   is checked against the permission matrix. The demo ends by printing the console's address
   and every user's credentials, and, in a terminal, serves the console until Ctrl-C.

It exits non-zero if any outcome differs from what the rules say.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyotp
from demo_alerts import alerts_demo
from demo_console import console_demo, serve_console
from demo_datasets import datasets_demo, lineage_demo, s3_server
from demo_explanations import explanations_demo
from demo_features import features_demo
from demo_ops import ops_demo
from demo_registry import registry_demo
from demo_retraining import retraining_demo
from demo_serving import serving_demo
from rich.console import Console
from rich.table import Table

from medops import admin
from medops.client import Client
from medops.config import Settings
from medops.core.permissions import ROLE_PERMISSIONS, Permission, Role
from medops.errors import (
    ActionRequiredError,
    AuthenticationError,
    MedopsError,
    MfaRequiredError,
    PermissionDeniedError,
    TooManyAttemptsError,
)

console = Console(width=160)
PASSWORD = "demo-password-not-for-production"
SECOND_ENGINEER = "ml-engineer-2"
FULL_NAMES = {
    Role.DATA_SCIENTIST: "Rosalind Franklin",
    Role.ML_ENGINEER: "Alan Turing",
    Role.CLINICIAN: "Dr. Elizabeth Blackwell",
    Role.AUDITOR: "Florence Nightingale",
    Role.SERVICE: "Scoring Service",
}

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


MARKER = ".medops-demo"


def _output_folder() -> Path:
    """``MEDOPS_DEMO_DIR`` or ./demo-output, emptied first: only a folder an earlier demo
    made (it holds the marker file) is ever removed."""
    folder = Path(os.environ.get("MEDOPS_DEMO_DIR", "demo-output")).resolve()
    if folder.exists():
        if not (folder / MARKER).exists():
            msg = f"{folder} exists and was not made by the demo; set MEDOPS_DEMO_DIR elsewhere"
            raise SystemExit(msg)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    (folder / MARKER).write_text("made by demo/demo.py; removed by its next run\n")
    return folder


def main() -> int:
    folder = _output_folder()
    with s3_server() as endpoint:
        return _run(folder, endpoint)


def _run(folder: Path, s3_endpoint: str) -> int:
    # The installation and every file the demo writes stay in ``folder``; dataset versions
    # are pushed to the S3 server the demo runs on the loopback.
    settings = Settings(
        home=folder / "home",
        admin_password=PASSWORD,  # type: ignore[arg-type]
        serving_refresh_seconds=1.0,  # the demo's clients are separate embedded apps
        # The alert story evaluates and dispatches when it means to (a server does both by
        # itself, every 15 s and 5 s).
        alert_evaluate_seconds=0,
        alert_dispatch_seconds=0,
        data_remote="s3://medops-demo/datasets",
        data_s3_endpoint_url=s3_endpoint,
    )
    init = admin.init(settings)
    console.rule("[bold]medops demo")
    console.print(
        f"Initialized [bold]{init.home}[/] ({init.database}, schema {init.revision}); "
        f"first admin: [bold]{init.admin.username}[/]"
    )
    with Client(settings=settings) as admin_client:
        _enroll_admin(admin_client)
        for role in Role:
            if role is not Role.ADMIN:
                admin_client.create_user(
                    _username(role), role.value, PASSWORD, full_name=FULL_NAMES[role]
                )
        admin_client.create_user(SECOND_ENGINEER, "ml_engineer", PASSWORD, full_name="Grace Hopper")
    console.print(f"Created one user per role: {', '.join(_username(r) for r in Role)}\n")

    mismatches = _try_actions(settings)
    mismatches += _security_in_action(settings)
    mismatches += datasets_demo(settings, _login, folder, PASSWORD)
    mismatches += registry_demo(settings, _login, RECOVERY)
    mismatches += serving_demo(settings, _login)
    mismatches += explanations_demo(settings, _login)
    mismatches += features_demo(settings, _login, folder)
    mismatches += lineage_demo(settings, _login)
    mismatches += alerts_demo(settings, _login, folder)
    mismatches += ops_demo(settings, _login, folder)
    # last of the stories: it promotes a retrained version, which the lineage and alert
    # stories above do not expect
    mismatches += retraining_demo(settings, _login, folder, lambda u: RECOVERY[u].pop())
    _show_audit(settings, folder)
    users = {_username(r): r for r in Role} | {SECOND_ENGINEER: Role.ML_ENGINEER}
    mismatches += console_demo(settings, users, PASSWORD, RECOVERY)
    mismatches += _verify_audit(settings)
    console.rule("files")
    for path in sorted(p for p in folder.rglob("*") if p.suffix in {".html", ".csv", ".jsonl"}):
        console.print(f"  {path}", highlight=False)
    console.print(
        f"  the installation itself: {settings.home} (MEDOPS_HOME={settings.home} medops ...)",
        highlight=False,
    )
    if mismatches:
        console.print(f"[red]{len(mismatches)} outcome(s) differ from the permission table:[/]")
        for line in mismatches:
            console.print(f"  {line}")
        return 1
    console.print("[green]Every outcome matches the role -> permission table.[/]")
    serve_console(settings, users, PASSWORD, SECRETS, RECOVERY)
    return 0


RECOVERY: dict[str, list[str]] = {}  # the demo keeps each enrolled user's recovery codes
SECRETS: dict[str, str] = {}  # and their TOTP secrets, printed at the end for the console
SESSIONS: dict[str, str] = {}  # each MFA user's latest access token


def _resume(client: Client, username: str) -> bool:
    """Use the user's earlier token if it is still valid."""
    token = SESSIONS.get(username)
    if token is None:
        return False
    client.token = token
    try:
        client.whoami()
    except MedopsError:
        client.token = None
        return False
    return True


def _enroll_admin(client: Client) -> None:
    answer = client.login("admin", PASSWORD)
    console.print(f"admin logs in: restriction [bold]{answer.restriction}[/]")
    try:
        client.list_users()
    except ActionRequiredError as exc:
        console.print(f"  listing users first -> 403 action-required: {exc}")
    _enroll(client, "admin")
    client.login("admin", PASSWORD, otp=RECOVERY["admin"].pop())
    console.print(f"  logs in again with a recovery code: {client.whoami().auth_method}")


def _enroll(client: Client, username: str) -> None:
    enrollment = client.mfa_enroll(PASSWORD)  # the password again: a token alone cannot enroll
    app = pyotp.TOTP(enrollment.secret)  # the demo plays the authenticator app
    SECRETS[username] = enrollment.secret
    RECOVERY[username] = client.mfa_confirm(app.now()).codes
    uri = enrollment.otpauth_uri.split("?")[0]
    console.print(f"  {username} enrolled TOTP ({uri}); {len(RECOVERY[username])} recovery codes")


def _login(client: Client, username: str) -> None:
    """Log in as the demo user, with a one-time code or enrolling first where MFA applies."""
    try:
        answer = client.login(username, PASSWORD)
    except MfaRequiredError:
        # The user's earlier login goes on (as `medops login` saves one), so the ten
        # recovery codes last the whole demo; a login that ended costs a code.
        if _resume(client, username):
            return
        answer = client.login(username, PASSWORD, otp=RECOVERY[username].pop())
        SESSIONS[username] = answer.access_token
    if answer.restriction == "mfa-enrollment":
        _enroll(client, username)


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
            _login(client, _username(role))
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


def _security_in_action(settings: Settings) -> list[str]:
    problems = []
    console.rule("security in action")
    with Client(settings=settings) as guesser:
        answers, waits = [], []
        for _ in range(4):
            started = time.monotonic()
            try:
                guesser.login("clinician", "is-it-summer2024")
            except TooManyAttemptsError:
                answers.append("429")
            except AuthenticationError:
                answers.append("401")
            waits.append(time.monotonic() - started)
        shown = ", ".join(f"{w:.1f}" for w in waits)
        console.print(
            f"4 wrong passwords for 'clinician': {' '.join(answers)} (answered after {shown} s)"
        )
        if answers != ["401"] * 4:
            problems.append(f"guessing: {answers}")
        started = time.monotonic()
        guesser.login("clinician", PASSWORD)
        waited = time.monotonic() - started
        console.print(
            f"the right password still gets in, after {waited:.1f} s: failed logins slow an "
            "account and block the guessing address, never lock the account"
        )
        if waited < 1.5:
            problems.append(f"the account was not slowed ({waited:.1f} s)")
    with Client(settings=settings) as data_scientist:
        _login(data_scientist, "data-scientist")
        grant = data_scientist.breakglass(
            "audit:read", "sepsis model alert storm at 03:00; checking recent changes", minutes=30
        )
        page = data_scientist.audit_events(limit=3)
        console.print(
            f"data-scientist takes break-glass {grant.permission} for 30 min "
            f"({grant.id}) and reads {len(page.events)} audit records"
        )
    with Client(settings=settings) as auditor:
        _login(auditor, "auditor")
        pending = auditor.breakglass_grants(pending=True)
        reviewed = auditor.review_breakglass(pending[0].id, "justified by the on-call incident")
        console.print(f"auditor reviews {reviewed.id}: {reviewed.review_note}\n")
        if [g.id for g in pending] != [grant.id]:
            problems.append("break-glass grant not pending review")
    return problems


def _verify_audit(settings: Settings) -> list[str]:
    checkpoint = admin.audit_checkpoint(settings)
    assert checkpoint is not None
    report = admin.audit_verify(settings)
    console.print(
        f"Signed checkpoint of records {checkpoint['from_seq']}..{checkpoint['to_seq']} "
        f"(Merkle root {checkpoint['merkle_root'][:16]}…, key {checkpoint['key_id']}); "
        f"'medops audit verify': {report.records} records in {report.chains} chains, "
        f"{report.checkpoints} checkpoint(s): {'OK' if report.ok else report.first}"
    )
    return [] if report.ok else [f"audit verify: {report.first}"]


def _show_audit(settings: Settings, folder: Path) -> None:
    """The audit trail counted by action and outcome; the whole trail goes to a file."""
    with Client(settings=settings) as auditor:
        _login(auditor, "auditor")
        trail = folder / "audit-trail.csv"
        trail.write_bytes(auditor.audit_export("csv"))
    with trail.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    counted = Counter((r["action"], r["outcome"]) for r in records)
    table = Table(
        title=f"Audit trail: {len(records)} records",
        title_justify="left",
    )
    for column in ("action", "outcome", "records"):
        table.add_column(column)
    shown = counted.most_common(SHOWN_ACTIONS)
    for (action, outcome), count in shown:
        style = {"success": "green", "denied": "red", "failure": "yellow"}.get(outcome, "")
        table.add_row(action, f"[{style}]{outcome}[/]" if style else outcome, str(count))
    console.print(table)
    rest = len(counted) - len(shown)
    if rest > 0:
        console.print(
            f"  and {rest} more kinds of record; the whole trail: {trail}", highlight=False
        )


SHOWN_ACTIONS = 12


if __name__ == "__main__":
    sys.exit(main())
