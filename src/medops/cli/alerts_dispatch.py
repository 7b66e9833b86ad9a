"""``medops alerts dispatch`` and ``medops alerts notifications``: send the due alert
notifications now (the job the server runs every ``MEDOPS_ALERT_DISPATCH_SECONDS``; a
Kubernetes CronJob can run this instead), and read the outbox. Plain functions, registered
under the ``alerts`` group (``app.command("dispatch")(dispatch)``)."""

from __future__ import annotations

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, print_json, print_record, print_table
from medops.core.canonical import utc_text

StatusOption = typer.Option(None, "--status", help="Only rows in this status: queued, sent, dead.")
ReceiverOption = typer.Option(None, "--receiver", help="Only rows for this receiver.")
LimitOption = typer.Option(100, "--limit", min=1, max=1000, help="At most this many rows.")


def dispatch(json_output: bool = JsonOption) -> None:
    """Send the queued alert notifications that are due (needs alerts:run)."""
    with client() as api:
        summary = api.dispatch_alerts()
    if json_output:
        print_json(summary)
        return
    print_record("Alert dispatch", summary.model_dump(mode="json"))


def notifications(
    status: str | None = StatusOption,
    receiver: str | None = ReceiverOption,
    limit: int = LimitOption,
    json_output: bool = JsonOption,
) -> None:
    """The outbox: each notification's receiver, status, attempts and last error."""
    with client() as api:
        rows = api.alert_notifications(status, receiver, limit=limit)
    if json_output:
        print_json(rows)
        return
    print_table(
        "Alert notifications",
        ["created", "receiver", "kind", "status", "attempts", "next attempt", "last error"],
        [[utc_text(r.created_at), r.receiver, r.kind, r.status, str(r.attempts),
          utc_text(r.next_attempt_at) if r.status == "queued" else "", r.last_error or ""]
         for r in rows],
    )  # fmt: skip
