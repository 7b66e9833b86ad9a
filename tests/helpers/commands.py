"""The `medops` command tree as click resolves it (command groups are imported lazily, so a
walk asks each group for its commands instead of reading what it has loaded)."""

from __future__ import annotations

from typing import Any

import typer
import typer.main

from medops.cli.main import app


def command_tree() -> list[tuple[str, Any]]:
    """Every command of `medops` with its full name (``"medops users create"``), groups
    included, loading each lazily imported group on the way."""
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [("medops", root)]
    while stack:
        name, command = stack.pop()
        found.append((name, command))
        if hasattr(command, "list_commands"):
            ctx = typer.Context(command, info_name=name.rsplit(" ", 1)[-1])
            for sub in command.list_commands(ctx):
                stack.append((f"{name} {sub}", command.get_command(ctx, sub)))
    return sorted(found, key=lambda item: item[0])


def leaf_commands() -> list[tuple[str, Any]]:
    """The commands that run something (not groups), with their full names."""
    return [(n, c) for n, c in command_tree() if not hasattr(c, "list_commands")]
