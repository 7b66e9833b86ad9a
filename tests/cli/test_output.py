"""The CLI's consoles follow the terminal of each command, not that of the first import."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import textwrap

import pytest

from medops.cli.output import console, err_console, print_table

WORDS = " ".join(f"word{i}" for i in range(40))  # about 280 characters: wraps in any terminal


def _table_lines(columns: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("COLUMNS", columns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_table("notes", ("id", "note"), [("n-1", WORDS)])
    return out.getvalue().splitlines()


def test_a_table_takes_the_width_of_the_terminal_it_is_printed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same process prints a table 200 columns wide, then 60, then 200 again."""
    wide = _table_lines("200", monkeypatch)
    narrow = _table_lines("60", monkeypatch)
    again = _table_lines("200", monkeypatch)
    assert max(map(len, wide)) == 200
    assert max(map(len, narrow)) == 60
    assert len(narrow) > len(wide)
    assert again == wide


def test_the_width_at_import_does_not_stick() -> None:
    """A fresh process imports the CLI's output under COLUMNS=200 (as the first CLI test of
    a run does), then prints under COLUMNS=60: the table is 60 wide."""
    script = textwrap.dedent(
        f"""
        import os
        os.environ["COLUMNS"] = "200"
        from medops.cli.output import print_table
        print_table("first", ("id",), [("a",)])
        os.environ["COLUMNS"] = "60"
        print("--")
        print_table("notes", ("id", "note"), [("n-1", {WORDS!r})])
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    second = run.stdout.split("--\n", 1)[1].splitlines()
    assert max(map(len, second)) == 60


def test_the_consoles_write_to_the_streams_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output goes to whatever sys.stdout / sys.stderr are when printing, uncoloured under
    NO_COLOR even when colour is forced, and coloured when only forced."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        console.print("[red]to stdout[/red]")
        err_console.print("[red]to stderr[/red]")
    assert out.getvalue() == "to stdout\n"
    assert err.getvalue() == "to stderr\n"
    monkeypatch.delenv("NO_COLOR")
    coloured = io.StringIO()
    with contextlib.redirect_stdout(coloured):
        console.print("[red]to stdout[/red]")
    assert "\x1b[31m" in coloured.getvalue()
    assert console.is_terminal
