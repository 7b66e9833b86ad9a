"""The README's snippets run as written, so they cannot drift from the product.

The shell block runs line by line through the real CLI on a fresh home. What a person types at
a prompt, the test types on standard input: each password-taking command gets
``--password-stdin`` and the password (and the one-time code, from the test's authenticator,
on the next line); an enrolment is confirmed with the code the person would read off their
phone (``mfa confirm``); ``medops server`` is started, answers ``/healthz`` and is stopped. The
files the block names are made first from the data that ships with scikit-learn. The Python
block then runs in a child process with a data scientist's API token."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
import pyotp
import pytest

from tests.helpers import model_data
from tests.helpers.cli_runner import MEDOPS, Cli, clean_env

README = Path(__file__).parents[2] / "README.md"
ADMIN_PW = "tidal-granite-sketch"
USER_PW = "a-long-user-password"
# Commands that ask for the caller's password (and, where enrolled, a code) at a prompt.
ASKS_PASSWORD = {("login",), ("mfa", "enroll"), ("users", "create"), ("models", "approve")}


def _block(language: str, after: str) -> str:
    """The first ```language block of the README after the heading ``after``."""
    text = README.read_text()
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert found is not None, f"no {language} block after {after!r}"
    return found.group(1)


def _commands(block: str) -> list[list[str]]:
    """The block's lines as argument lists: continuations joined, comments dropped."""
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if shlex.split(line, comments=True)]


def _files(folder: Path) -> None:
    """The files the README names, from the data that ships with scikit-learn."""
    x_train, x_eval, _, _ = model_data.frames()
    joblib.dump(model_data.pipeline(), folder / "model.joblib")
    x_train.to_csv(folder / "train.csv", index=False)
    (folder / "eval.csv").write_bytes(model_data.eval_csv())
    (folder / "card.json").write_text(json.dumps(model_data.CARD))
    # The >=60 age band (24 patients) fails the default gap by estimate, not by interval.
    (folder / "policy.json").write_text(json.dumps({"gap_judged_by": "interval"}))
    record = {"features": x_eval.iloc[0].to_dict()}
    (folder / "record.json").write_text(json.dumps(record))


class Person:
    """Who types at the prompts: passwords, and codes off each enrolled authenticator."""

    def __init__(self) -> None:
        self.passwords = {"admin": ADMIN_PW}
        self.authenticators: dict[str, pyotp.TOTP] = {}
        self.recovery: dict[str, list[str]] = {}
        self.current: str | None = None

    def answer(self, command: list[str], user: str | None) -> str:
        """Standard input for ``command`` run as ``user``: the password, then a code where
        the account has MFA (a recovery code to log in, so the authenticator's next code is
        left for a signature)."""
        who = user or self.current or "admin"
        if command[0] == "login":
            who = command[command.index("-u") + 1]
        lines = [self.passwords.get(who, USER_PW)]
        if command[0] == "users":
            self.passwords.setdefault(command[2], USER_PW)
            return USER_PW + "\n"
        if who in self.authenticators and command[0] == "login":
            lines.append(self.recovery[who].pop())
        elif who in self.authenticators and command[:2] == ["models", "approve"]:
            lines.append(self.authenticators[who].at(time.time() + 30))
        return "\n".join(lines) + "\n"


def test_the_readme_shell_block_runs_as_written(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line of the README's first-day block succeeds: an empty home to a prediction
    and its outcome, an API token, a verified audit trail and a server that answers."""
    _files(tmp_path)
    env = {"MEDOPS_ADMIN_PASSWORD": ADMIN_PW, "MEDOPS_MFA_REQUIRED_ROLES": "admin,ml_engineer"}
    monkeypatch.chdir(tmp_path)  # the block names its files relative to where it runs
    person = Person()
    predictions: list[dict[str, Any]] = []
    for args in _commands(_block("sh", "## Using it")):
        if args[0] in {"source"}:
            continue
        if args[0] == "export":
            name, value = args[1].split("=", 1)
            env[name] = str(tmp_path / value) if value.startswith("./") else value
            continue
        assert args[0] == "medops", args
        rest = args[1:]
        user = None
        if rest[:1] == ["--as"]:
            user, rest = rest[1], rest[2:]
        if rest[:1] == ["server"]:
            _serve(rest, env | cli.env)
            continue
        if rest[:2] == ["outcomes", "upload"]:
            rows = "".join(f"{p['id']},{p['label']}\n" for p in predictions)
            (tmp_path / rest[2]).write_text("prediction_id,label\n" + rows)
        stdin = None
        if tuple(rest[:2]) in ASKS_PASSWORD or tuple(rest[:1]) in ASKS_PASSWORD:
            stdin = person.answer(rest, user)
            rest = [*rest, "--password-stdin"]
        if rest[:2] == ["mfa", "enroll"] or rest[:1] == ["predict"]:
            rest = [*rest, "--json"]
        result = cli.ok(*_prefix(user), *rest, stdin=stdin, **env)
        if rest[:1] == ["login"]:
            person.current = rest[rest.index("-u") + 1]
        if rest[:2] == ["mfa", "enroll"]:
            who = user or person.current or "admin"
            authenticator = pyotp.TOTP(result.json()["secret"])
            person.authenticators[who] = authenticator
            confirm = ("mfa", "confirm", authenticator.now(), "--json")
            codes = cli.ok(*_prefix(user), *confirm, **env).json()["codes"]
            person.recovery[who] = codes
        if rest[:1] == ["predict"]:
            predictions = result.json()["predictions"]
    assert predictions
    assert predictions[0]["version"] == 1


def _prefix(user: str | None) -> list[str]:
    return ["--as", user] if user else []


def _serve(args: list[str], env: dict[str, str]) -> None:
    """``medops server --port N`` as the README starts it: answers /healthz, then stops."""
    port = int(args[args.index("--port") + 1])
    port = _free(port)
    command = [MEDOPS, "server", "--port", str(port)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        return
                except httpx.TransportError:
                    time.sleep(0.1)
            raise AssertionError(proc.stderr.read() if proc.stderr else "no answer")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _free(port: int) -> int:
    """The README's port when it is free here, else any free one (CI machines share ports)."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_python_block_runs_as_written(cli: Cli, tmp_path: Path) -> None:
    """The SDK snippet registers and validates a model with a data scientist's API token."""
    env = {"MEDOPS_ADMIN_PASSWORD": ADMIN_PW}
    cli.ok("init", **env)
    cli.ok("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW, **env)
    cli.ok("users", "create", "dana", "--role", "data_scientist", "--full-name", "Dana Scully",
           "--password-stdin", stdin=USER_PW, **env)  # fmt: skip
    cli.ok("login", "-u", "dana", "--password-stdin", stdin=USER_PW, **env)
    cli.ok("models", "create", "diabetes-risk", **env)
    token = cli.ok("tokens", "create", "--expires", "1d", "--json", **env).json()["token"]
    snippet = tmp_path / "snippet.py"
    snippet.write_text(_block("python", "## Using it"))
    child = clean_env(MEDOPS_HOME=cli.env["MEDOPS_HOME"], MEDOPS_TOKEN=token)
    child["MEDOPS_DATABASE_URL"] = cli.env["MEDOPS_DATABASE_URL"]
    done = subprocess.run(
        [sys.executable, str(snippet)], env=child, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dana may" in done.stdout
    assert "diabetes-risk/1" in done.stdout
