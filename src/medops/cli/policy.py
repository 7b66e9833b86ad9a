"""``medops models policy-change``: governed changes that loosen a promotion policy.

Tightening a policy is ``medops models policy NAME --set FILE``; loosening one is proposed
here and applies once two people, one of them a clinician, have signed it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medops.cli.common import (
    PasswordStdinOption,
    client,
    read_json_file,
    read_password,
    with_one_time_code,
)
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.registry.schemas import PolicyChangeOut

app = typer.Typer(
    help="Changes that loosen a promotion policy: propose, sign (two people, one a "
    "clinician), withdraw.",
    no_args_is_help=True,
)


def _show(change: PolicyChangeOut, json_output: bool, title: str) -> None:
    if json_output:
        print_json(change)
        return
    print_record(
        title,
        {
            "id": change.id,
            "model": change.model,
            "status": change.status,
            "reason": change.reason,
            "proposed": f"{change.proposed_at:%Y-%m-%d %H:%M:%S}Z by {change.proposed_by}",
            "decided": (
                f"{change.decided_at:%Y-%m-%d %H:%M:%S}Z by {change.decided_by}"
                if change.decided_at
                else ""
            ),
            "signatures": ", ".join(
                f"{s.printed_name} ({s.role}{'' if s.valid else ', INVALID'})"
                for s in change.signatures
            ),
        },
    )
    for line in change.loosenings:
        console.print(f"loosens: {line}", markup=False, highlight=False)
    for line in change.needs:
        console.print(f"still needs: {line}", markup=False, highlight=False)


@app.command("propose")
def propose(
    name: str = typer.Argument(..., help="Model name."),
    policy_file: Path = typer.Argument(..., help="The proposed policy, a JSON file."),
    reason: str = typer.Option(..., "--reason", help="Why the policy should be loosened."),
    json_output: bool = JsonOption,
) -> None:
    """Propose a policy that loosens the current one (needs models:policy)."""
    with client() as c:
        change = c.propose_policy_change(name, read_json_file(policy_file, "policy"), reason)
    _show(change, json_output, f"proposed policy change {change.id}")
    if not json_output:
        console.print(
            f"next: two people, one a clinician, sign it with "
            f"'medops models policy-change sign {name} {change.id}'",
            markup=False,
            highlight=False,
        )


@app.command("list")
def list_(
    name: str = typer.Argument(..., help="Model name."),
    json_output: bool = JsonOption,
) -> None:
    """Every policy change of a model, newest first."""
    with client() as c:
        changes = c.policy_changes(name)
    if json_output:
        print_json(changes)
        return
    print_table(
        f"policy changes of {name}",
        ("id", "status", "proposed by", "proposed at", "signatures", "loosens"),
        [
            (
                ch.id,
                ch.status,
                ch.proposed_by,
                f"{ch.proposed_at:%Y-%m-%d %H:%M}Z",
                sum(s.valid for s in ch.signatures),
                len(ch.loosenings),
            )
            for ch in changes
        ],
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name."),
    change_id: str = typer.Argument(..., help="The change's id (pc_...)."),
    json_output: bool = JsonOption,
) -> None:
    """One policy change: what it loosens, its signatures and what it still needs."""
    with client() as c:
        change = c.policy_change(name, change_id)
    _show(change, json_output, f"policy change {change.id}")


@app.command("sign")
def sign(
    name: str = typer.Argument(..., help="Model name."),
    change_id: str = typer.Argument(..., help="The change's id (pc_...)."),
    comment: str | None = typer.Option(None, "--comment", help="A note kept with the signature."),
    otp: str | None = typer.Option(None, "--otp", help="One-time code, where MFA is enrolled."),
    password_stdin: bool = PasswordStdinOption,
    json_output: bool = JsonOption,
) -> None:
    """Sign a pending policy change: re-enter your password (and one-time code)."""
    password = read_password(from_stdin=password_stdin, prompt="Password (to sign)")
    with client() as c:
        change = with_one_time_code(
            lambda code: c.sign_policy_change(name, change_id, password, otp=code, comment=comment),
            otp,
            from_stdin=password_stdin,
        )
    title = "applied" if change.status == "applied" else "signed"
    _show(change, json_output, f"{title} policy change {change.id}")


@app.command("withdraw")
def withdraw(
    name: str = typer.Argument(..., help="Model name."),
    change_id: str = typer.Argument(..., help="The change's id (pc_...)."),
    reason: str = typer.Option(..., "--reason", help="Why it is withdrawn."),
    json_output: bool = JsonOption,
) -> None:
    """Withdraw a pending policy change (needs models:policy)."""
    with client() as c:
        change = c.withdraw_policy_change(name, change_id, reason)
    _show(change, json_output, f"withdrew policy change {change.id}")
