"""Run the ``medops`` CLI as a user's shell would (the ``cli`` fixture is in tests/cli/conftest.py).

``Cli.__call__`` runs the real entry point (``medops.cli.main.main``) in this process with
its own argv, environment and stdin, which keeps the suite fast; ``Cli.subprocess`` runs the
installed console script in a child process for the checks that need a real process
(exit status, nothing but one line on stderr).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medops.cli.main import main

MEDOPS = str(Path(sys.executable).with_name("medops"))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    root = logging.getLogger()
    saved_logging = (root.handlers[:], root.level)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        root.handlers[:], level = saved_logging
        root.setLevel(level)


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with (
            _environment({**self.env, **env}),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            saved_argv, saved_stdin = sys.argv, sys.stdin
            sys.argv = ["medops", *args]
            sys.stdin = io.StringIO(stdin or "")
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            finally:
                sys.argv, sys.stdin = saved_argv, saved_stdin
        return Result(code, out.getvalue(), err.getvalue())

    def ok(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        result = self(*args, stdin=stdin, **env)
        assert result.code == 0, (args, result.err)
        return result

    def subprocess(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        proc = subprocess.run(
            [MEDOPS, *args],
            input=stdin or "",
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=60,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}
    env["COLUMNS"] = "200"
    env["MEDOPS_MFA_REQUIRED_ROLES"] = ""  # tests/cli/test_access.py turns the policy on
    env["MEDOPS_ALERT_EVALUATE_SECONDS"] = "0"  # tests/alerting/test_alerting_loop.py turns it on
    env["MEDOPS_ALERT_DISPATCH_SECONDS"] = "0"
    return {**env, **extra}
