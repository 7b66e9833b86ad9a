"""Command groups that are imported only when they run.

``medops --help`` lists twenty commands, but a run uses one. Importing every command module up
front costs what the heaviest of them imports (the SDK, its schemas, rich's progress bars): 1.8 s
and 100 MB before this module existed. A :class:`LazyGroup` knows each lazy command by its name,
the module and attribute that define it and its one-line help, so listing the commands imports
nothing, and running one imports only its own module (click's "lazy group" pattern, made to fit
Typer's group class).

The one-line help here repeats the command's docstring or ``help=``; ``tests/cli/test_startup.py``
checks that the two stay equal, so ``--help`` can never describe a command differently from the
command's own help.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup, TyperOption


@dataclass(frozen=True)
class Lazy:
    """A command defined as ``attribute`` in ``module``: a ``typer.Typer`` (a command group) or
    a function (a single command); ``help`` is its one-line help for the listing."""

    module: str
    attribute: str
    help: str
    first: bool = False  # listed before the commands defined in the group itself

    def load(self, name: str) -> Any:
        """The command, built by Typer from the module that defines it (imported now)."""
        target = getattr(importlib.import_module(self.module), self.attribute)
        command: Any
        if isinstance(target, typer.Typer):
            command = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False)
            single.command(name)(target)
            command = typer.main.get_command(single)
        command.name = name
        return command


class _Listed(TyperCommand):
    """What the help listing shows of a lazy command that has not been imported."""


class LazyGroup(TyperGroup):
    """A Typer group whose ``lazy`` commands are imported the first time they are resolved,
    and never for the group's own ``--help``."""

    lazy: ClassVar[dict[str, Lazy]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listed = {name: _Listed(name=name, help=entry.help) for name, entry in self.lazy.items()}
        first = {name: cmd for name, cmd in listed.items() if self.lazy[name].first}
        rest = {name: cmd for name, cmd in listed.items() if not self.lazy[name].first}
        self.commands = {**first, **self.commands, **rest}
        self._listing = False

    def get_command(
        self,
        ctx: Any,  # noqa: ARG002 - click's signature
        cmd_name: str,
    ) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Listed) and not self._listing:
            command = self.lazy[cmd_name].load(cmd_name)
            self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:  # noqa: ARG002 - click's signature
        """The group's help in Typer's panels, drawn here with rich's console, panel and table:
        Typer's own help renderer imports rich's Markdown, Markdown-it and Pygments on the way,
        which alone take longer (about 0.2 s) than ``medops --help`` may take."""
        self._listing = True
        try:
            print_group_help(self, ctx)
        finally:
            self._listing = False


def print_group_help(group: LazyGroup, ctx: Any) -> None:
    """Usage, the group's help, its options and its commands, as Typer draws them."""
    from rich import box
    from rich.console import Console
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Padding(Text(group.get_usage(ctx)), 1), style="bold")
    if group.help:
        console.print(Padding(Text(group.help), (0, 1, 1, 1)))

    def panel(title: str, rows: list[tuple[Text, ...]]) -> None:
        table = Table(highlight=False, show_header=False, expand=True, box=None)
        table.pad_edge = False
        table.padding = (0, 1)
        for row in rows:
            table.add_row(*row)
        console.print(
            Panel(table, border_style="dim", title=title, title_align="left", box=box.ROUNDED)
        )

    options: list[tuple[Text, ...]] = []
    for param in group.get_params(ctx):
        if not isinstance(param, TyperOption) or param.hidden:
            continue
        names = ", ".join([*param.opts, *param.secondary_opts])
        options.append(
            (
                Text(names, style="bold cyan"),
                Text(param.display_type_rich(ctx=ctx) or "", style="bold yellow"),
                Text(getattr(param, "help", None) or ""),
            )
        )
    panel("Options", options)
    commands: list[tuple[Text, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        summary = (command.help or "").split("\n\n")[0]
        commands.append((Text(name, style="bold cyan"), Text(" ".join(summary.split()))))
    panel("Commands", commands)
