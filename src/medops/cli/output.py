"""How the CLI speaks: rich tables for people, JSON on stdout with --json, one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.segment import Segments
from rich.status import Status
from rich.table import Table
from rich.text import Text

from medops.errors import MedopsError

# The environment variables rich reads when it builds a Console: its width and height, whether
# the output is a terminal, and its colours.
TERMINAL_ENVIRONMENT = (
    "COLUMNS", "LINES", "TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)  # fmt: skip


class TerminalConsole:
    """stdout's (or stderr's) rich Console as the terminal is when something is printed.

    A rich ``Console`` reads ``COLUMNS``, ``NO_COLOR`` and the like once, when it is built;
    built at import it would keep the terminal of whoever imported this module first (a test
    run's first CLI test, say) for the life of the process. This one builds its Console again
    whenever the stream or one of those variables has changed since the last use, so every
    command sees its own terminal. ``current`` gives the Console itself for anything not
    forwarded here.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._built: tuple[object, tuple[str | None, ...], Console] | None = None

    @property
    def current(self) -> Console:
        stream = sys.stderr if self._stderr else sys.stdout
        environment = tuple(os.environ.get(name) for name in TERMINAL_ENVIRONMENT)
        built = self._built
        if built is None or built[0] is not stream or built[1] != environment:
            built = (stream, environment, Console(stderr=self._stderr))
            self._built = built
        return built[2]

    def print(self, *objects: Any, **options: Any) -> None:
        self.current.print(*objects, **options)

    def status(self, message: str) -> Status:
        return self.current.status(message)

    @property
    def width(self) -> int:
        return self.current.width

    @property
    def is_terminal(self) -> bool:
        return self.current.is_terminal

    @property
    def is_interactive(self) -> bool:
        return self.current.is_interactive


console = TerminalConsole()
err_console = TerminalConsole(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


def _is_model(value: Any) -> bool:
    """A pydantic model? (pydantic is imported only once a command has made one.)"""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def to_jsonable(value: Any) -> Any:
    if _is_model(value):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


# Words that carry a verdict, and their colour (rich leaves colour out under NO_COLOR, when
# the output is not a terminal, or with TERM=dumb).
VERDICT_STYLES = {
    **dict.fromkeys(
        ("passed", "pass", "yes", "ok", "stable", "success", "allowed", "valid", "applied",
         "complete"),
        "green",
    ),
    **dict.fromkeys(
        ("failed", "fail", "no", "drift", "drifted", "denied", "failure", "invalid", "blocked",
         "incomplete", "refused"),
        "red",
    ),
    **dict.fromkeys(("warn", "warning", "pending", "insufficient-data", "superseded"), "yellow"),
}  # fmt: skip


def readable(value: Any) -> str:
    """A value as a person reads it in a table: never a Python repr."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_model(value):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return "; ".join(f"{k}: {readable(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(readable(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _cell(value: Any) -> Text:
    text = readable(value)
    style = VERDICT_STYLES.get(text.strip().lower())
    return Text(text, style=style or "")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout whose cells are never cut: identifiers (columns named ``id``,
    ``... id`` or ``patient``) stay on one line, other cells wrap, and a table that cannot
    fit the terminal that way is printed wider (the terminal wraps its lines) rather than
    shortening a cell to ``…``."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        whole = column in WHOLE_COLUMNS or column.endswith(" id")
        table.add_column(column, no_wrap=whole, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    out = console.current
    unbounded = out.options.update_width(TABLE_MAX_WIDTH)
    needed = min(out.measure(table, options=unbounded).minimum, TABLE_MAX_WIDTH)
    if needed <= out.width:
        out.print(table)
        return
    # rich never prints wider than the console: render at the needed width and print the
    # lines as they are (neither cropped nor wrapped by rich).
    lines = out.render(table, out.options.update_width(needed))
    out.print(Segments(lines), crop=False, soft_wrap=True)


TABLE_MAX_WIDTH = 10_000  # how wide a table may be printed so that no cell is cut
WHOLE_COLUMNS = frozenset({"id", "patient"})  # identifiers: never wrapped, never cut


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner with ``message`` on stderr while work that may take seconds runs (only on a
    terminal: nothing in pipes, scripts or with --json)."""
    if not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield


def print_record(title: str, record: dict[str, Any]) -> None:
    print_table(title, ("field", "value"), record.items())


def error_line(exc: MedopsError) -> str:
    """The one line printed for an error: its message and the fields it names."""
    line = exc.message
    extra = [f"{e.field}: {e.reason}" for e in exc.errors if e.reason not in line]
    if len(extra) > SHOWN_FIELDS:
        extra = [*extra[:SHOWN_FIELDS], f"and {len(extra) - SHOWN_FIELDS} more"]
    if extra:
        line += " (" + "; ".join(extra) + ")"
    return " ".join(line.split())


SHOWN_FIELDS = 5  # the line names at most this many fields (each cut short by the error)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)
