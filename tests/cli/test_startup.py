"""The `medops` command starts light: its entry point, `--help`, `--version` and a remote
command import none of the numerical, database or server libraries, and the listing of the
lazily imported command groups says what each group says of itself.

Speed itself is measured by benchmarks/startup.py, not asserted here; what is pinned is what
makes it fast (which modules a run imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from medops.cli.main import MedopsGroup, app
from tests.helpers.commands import command_tree

HEAVY = ("numpy", "scipy", "sqlalchemy", "onnxruntime", "sklearn", "fastapi", "uvicorn", "onnx")

# Runs the entry point with the given argv in a fresh interpreter, then writes the heavy
# modules it imported (as JSON) to the file named by the first argument.
PROBE = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["medops", *argv]
from medops.cli.main import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
with open(out, "w") as f:
    json.dump(sorted({{m.split(".")[0] for m in heavy}}), f)
"""


def _heavy_modules_after(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> list[str]:
    out = tmp_path / "modules.json"
    base = {"PATH": "/usr/bin:/bin", "MEDOPS_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), str(out), *argv],
        env={**base, **(env or {})},
        capture_output=True,
        check=True,
        timeout=60,
    )
    found: list[str] = json.loads(out.read_text())
    return found


def test_importing_the_entry_point_loads_no_heavy_module(tmp_path: Path) -> None:
    """`import medops.cli.main` imports none of numpy, scipy, SQLAlchemy, ONNX Runtime,
    scikit-learn, FastAPI or uvicorn."""
    assert _heavy_modules_after(tmp_path) == []


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("deploy", "--help"), ()])
def test_help_and_version_load_no_heavy_module(tmp_path: Path, argv: tuple[str, ...]) -> None:
    """`medops --help`, `medops --version`, a group's help and a bare `medops` stay light."""
    assert _heavy_modules_after(tmp_path, *argv) == []


def test_a_remote_command_loads_no_server_code(tmp_path: Path) -> None:
    """With MEDOPS_URL set, `medops deploy status NAME` imports the SDK and its schemas only:
    no database, no numerical library, no server (the server here is not even listening)."""
    env = {"MEDOPS_URL": "http://127.0.0.1:9", "MEDOPS_TOKEN": "not-a-real-token"}
    assert _heavy_modules_after(tmp_path, "deploy", "status", "diabetes", env=env) == []


def test_the_heavy_list_would_catch_a_heavy_import(tmp_path: Path) -> None:
    """The probe sees what a command imports: a local `medops db` command reaches the
    database, so SQLAlchemy shows up (the check above cannot pass by looking nowhere)."""
    assert "sqlalchemy" in _heavy_modules_after(tmp_path, "db", "status")


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", sorted(MedopsGroup.lazy))
def test_the_listing_says_what_each_lazy_command_says(name: str) -> None:
    """The one-line help `medops --help` shows for a lazily imported command is the first
    paragraph of that command's own help, word for word."""
    loaded = MedopsGroup.lazy[name].load(name)
    assert MedopsGroup.lazy[name].help == _first_paragraph(loaded.help)


def test_root_help_lists_every_command(tmp_path: Path) -> None:
    """`medops --help` names each top-level command once, lazy or not, with its help."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("medops")), "--help"],
        env={"PATH": "/usr/bin:/bin", "MEDOPS_HOME": str(tmp_path), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="medops")
    names = [n for n, _ in command_tree() if n.count(" ") == 1]
    assert len(names) == len(root.list_commands(ctx)) >= 20  # type: ignore[attr-defined]
    for full in names:
        name = full.split(" ")[1]
        listed = [line for line in done.stdout.splitlines() if f"│ {name} " in line]
        assert len(listed) == 1, name
        help_text = _first_paragraph(root.get_command(ctx, name).help)  # type: ignore[attr-defined]
        assert help_text.split(" ")[0] in listed[0]
