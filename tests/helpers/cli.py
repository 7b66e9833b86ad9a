"""Setting up people, models and deployments through the CLI, as people would at a terminal,
and what a CLI error must look like."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]

from tests.helpers import model_data
from tests.helpers.cli_runner import Cli, Result

ADMIN_PW = "tidal-granite-sketch"
USER_PW = "a-long-user-password"
MODEL = "diabetes-risk"
DEPLOYMENT = "diabetes"


def init_admin(cli: Cli) -> Result:
    """`medops init` with the tests' admin password."""
    return cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)


def login_as(cli: Cli, user: str = "admin", password: str = ADMIN_PW) -> Result:
    """`medops login` as ``user`` with ``password`` (the admin by default); its result."""
    return cli.ok("login", "--username", user, "--password-stdin", stdin=password + "\n")


def log_in(cli: Cli, user: str, password: str | None = None) -> None:
    """`medops login` as ``user`` (the admin's password for admin, else the users')."""
    secret = password or (ADMIN_PW if user == "admin" else USER_PW)
    cli.ok("login", "--username", user, "--password-stdin", stdin=secret + "\n")


def init_with_people(cli: Cli, people: Iterable[tuple[str, str, str]]) -> None:
    """`medops init`, then the admin creates each (username, role, full name) with USER_PW."""
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    log_in(cli, "admin")
    for user, role, name in people:
        cli.ok(
            "users", "create", user, "--role", role, "--full-name", name, "--password-stdin",
            stdin=USER_PW + "\n",
        )  # fmt: skip


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Non-zero exit, nothing on stdout, exactly one stderr line naming the problem."""
    assert result.code != 0
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]


def setup_people_and_files(cli: Cli, tmp_path: Path) -> dict[str, Path]:
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    log_in(cli, "admin")
    for user, role, name in (
        ("dana", "data_scientist", "Dana Scully"),
        ("eli", "ml_engineer", "Eli Whitney"),
        ("mae", "ml_engineer", "Mae Jemison"),
        ("cora", "clinician", "Dr. Cora Lee"),
    ):
        cli.ok(
            "users",
            "create",
            user,
            "--role",
            role,
            "--full-name",
            name,
            "--password-stdin",
            stdin=USER_PW + "\n",
        )
    x_train, _, _, _ = model_data.frames()
    files = {
        "model": tmp_path / "model.joblib",
        "train": tmp_path / "train.csv",
        "eval": tmp_path / "eval.csv",
        "card": tmp_path / "card.json",
    }
    joblib.dump(model_data.pipeline(), files["model"])
    x_train.to_csv(files["train"], index=False)
    files["eval"].write_bytes(model_data.eval_csv())
    files["card"].write_text(json.dumps(model_data.CARD))
    return files


def ready_version(cli: Cli, files: dict[str, Path], c: float) -> int:
    """Register (data scientist), validate and card (clinician) a version; its number."""
    model_file = files["train"].with_name(f"model-{c}.joblib")
    joblib.dump(model_data.pipeline(c), model_file)
    log_in(cli, "dana")
    version = cli.ok(
        "models",
        "register",
        MODEL,
        str(model_file),
        "--sample",
        str(files["train"]),
        "--demographic",
        "sex",
        "--demographic",
        "age",
        "--bands",
        "age=40,60",
        "--range",
        "age=18,110",
        "--range",
        "bmi=10,80",
        "--training-data",
        "file:///data/train.csv",
        "--json",
    ).json()["version"]
    data = ("--data", str(files["eval"]), "--label", model_data.LABEL, "--bootstrap", "100")
    cli.ok("models", "validate", f"{MODEL}/{version}", *data)
    log_in(cli, "cora")
    cli.ok("models", "card", f"{MODEL}/{version}", "--set", str(files["card"]))
    return int(version)


def approve_version(cli: Cli, version: int) -> None:
    for user in ("cora", "mae"):
        log_in(cli, user)
        cli.ok("models", "approve", f"{MODEL}/{version}", "--password-stdin", stdin=USER_PW + "\n")


def in_production(cli: Cli, tmp_path: Path) -> dict[str, Path]:
    """Users of every role, and diabetes-risk version 1 approved and in production."""
    files = setup_people_and_files(
        cli, tmp_path
    )  # users of every role; training, evaluation, card files
    files["policy"] = tmp_path / "policy.json"
    files["policy"].write_text(json.dumps(model_data.POLICY))
    log_in(cli, "eli")
    cli.ok("models", "create", MODEL, "--policy", str(files["policy"]))
    approve_version(cli, ready_version(cli, files, 1.0))
    log_in(cli, "eli")
    cli.ok("models", "promote", f"{MODEL}/1", "--reason", "first release")
    return files


def eval_records(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Feature rows of the evaluation split (valid input)."""
    _, x_eval, _, _ = model_data.frames()
    rows = x_eval.iloc[start : start + n].to_dict("records")
    return [{k: float(v) for k, v in row.items()} for row in rows]


def serving(cli: Cli, tmp_path: Path) -> None:
    """The model in production and served by DEPLOYMENT (created by the engineer eli)."""
    in_production(cli, tmp_path)
    log_in(cli, "eli")
    cli.ok(
        "deploy",
        "create",
        DEPLOYMENT,
        "--model",
        f"{MODEL}@production",
        "--reason",
        "first serving",
    )
