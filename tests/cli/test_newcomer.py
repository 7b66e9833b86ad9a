"""A newcomer's first day, scripted: the README's path through the CLI on one MEDOPS_HOME, with
MFA required of the admin, the ML engineer and the clinician, each switching role with
`--as` instead of logging in again, and the one-time code asked for when a signature needs it.
No manual step."""

from __future__ import annotations

import json
import time
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import pyotp

from tests.helpers import model_data
from tests.helpers.cli_runner import Cli

ADMIN_PW = "tidal-granite-sketch"
USER_PW = "a-long-user-password"
MFA = {"MEDOPS_MFA_REQUIRED_ROLES": "admin,ml_engineer,clinician"}


def _enroll(cli: Cli, user: str, password: str) -> tuple[pyotp.TOTP, list[str]]:
    """Log in (restricted to enrolment), enroll TOTP, confirm it, log in again with a recovery
    code on the line after the password (so no TOTP step is spent on it); returns the
    authenticator and the remaining recovery codes."""
    first = cli.ok("login", "-u", user, "--password-stdin", "--json", stdin=password, **MFA)
    assert first.json()["restriction"] == "mfa-enrollment"
    secret = cli.ok("mfa", "enroll", "--password-stdin", "--json", stdin=password, **MFA).json()
    totp = pyotp.TOTP(secret["secret"])
    codes = cli.ok("mfa", "confirm", totp.now(), "--json", **MFA).json()["codes"]
    recovery = codes.pop()
    cli.ok("login", "-u", user, "--password-stdin", stdin=f"{password}\n{recovery}\n", **MFA)
    return totp, codes


def test_a_newcomers_first_day_through_the_readme_path(cli: Cli, tmp_path: Path) -> None:
    """init, MFA enrolment, users, register, validate, card, two signatures that each ask for
    the one-time code, promotion, deployment and a prediction, switching people with --as;
    each mistake a newcomer makes answers in one line saying what to type."""
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW, **MFA)
    _enroll(cli, "admin", ADMIN_PW)
    for user, role, name in (
        ("dana", "data_scientist", "Dana Scully"),
        ("eli", "ml_engineer", "Eli Whitney"),
        ("cora", "clinician", "Dr. Cora Lee"),
    ):
        cli.ok(
            "users", "create", user, "--role", role, "--full-name", name, "--password-stdin",
            stdin=USER_PW + "\n", **MFA,
        )  # fmt: skip
    authenticator = {user: _enroll(cli, user, USER_PW) for user in ("eli", "cora")}
    cli.ok("login", "-u", "dana", "--password-stdin", stdin=USER_PW, **MFA)

    files = {name: tmp_path / name for name in ("model.joblib", "train.csv", "eval.csv")}
    joblib.dump(model_data.pipeline(), files["model.joblib"])
    model_data.frames()[0].to_csv(files["train.csv"], index=False)
    files["eval.csv"].write_bytes(model_data.eval_csv())
    card = tmp_path / "card.json"
    card.write_text(json.dumps(model_data.CARD))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(model_data.POLICY))

    cli.ok("--as", "eli", "models", "create", "diabetes-risk", "--policy", str(policy), **MFA)
    cli.ok(
        "models", "register", "diabetes-risk", str(files["model.joblib"]),
        "--sample", str(files["train.csv"]), "--demographic", "sex", "--demographic", "age",
        "--bands", "age=40,60", "--training-data", "s3://bucket/train.csv",
        "--commit", "1a2b3c4", **MFA,
    )  # fmt: skip
    report = tmp_path / "report.html"
    cli.ok(
        "models", "validate", "diabetes-risk/1", "--data", str(files["eval.csv"]),
        "--label", model_data.LABEL, "--html", str(report), **MFA,
    )  # fmt: skip
    assert report.exists()
    cli.ok("models", "card", "diabetes-risk/1", "--set", str(card), "--format", "md", **MFA)

    # A signature without a code says how to give one; a code already spent says to wait.
    missing = cli("--as", "cora", "models", "approve", "diabetes-risk/1", "--password-stdin",
                  stdin=USER_PW + "\n", **MFA)  # fmt: skip
    assert missing.code != 0
    assert "--otp CODE" in missing.err
    assert len(missing.err.strip().splitlines()) == 1
    cora_totp, cora_recovery = authenticator["cora"]
    just_used = cora_totp.at(time.time() + 30)  # spent by this login, moments before signing
    cli.ok("login", "-u", "cora", "--password-stdin", stdin=f"{USER_PW}\n{just_used}\n", **MFA)
    reused = cli("models", "approve", "diabetes-risk/1", "--password-stdin",
                 stdin=f"{USER_PW}\n{just_used}\n", **MFA)  # fmt: skip
    assert "used already" in reused.err
    assert "wait for the next code" in reused.err
    codes = {
        "cora": cora_recovery[0],  # her authenticator's next code is a while away
        "eli": authenticator["eli"][0].at(time.time() + 30),
    }
    methods = {}
    for user, code in codes.items():
        signed = cli.ok(
            "--as", user, "models", "approve", "diabetes-risk/1", "--password-stdin", "--json",
            stdin=f"{USER_PW}\n{code}\n", **MFA,
        )  # fmt: skip
        methods[user] = signed.json()["method"]
    assert methods == {"cora": "password+recovery-code", "eli": "password+totp"}
    cli.ok(
        "--as", "eli", "models", "promote", "diabetes-risk/1", "--reason",
        "validated on the 2026 cohort", **MFA,
    )  # fmt: skip
    cli.ok("--as", "eli", "deploy", "create", "diabetes", "--model",
           "diabetes-risk@production", **MFA)  # fmt: skip
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"features": model_data.frames()[1].iloc[0].to_dict()}))
    answer = cli.ok(
        "--as", "cora", "predict", "diabetes", "--input", str(record), "--patient-ref", "pt-1042",
        "--json", **MFA,
    ).json()  # fmt: skip
    assert answer["predictions"][0]["version"] == 1

    saved = cli.ok("profiles", "--json", **MFA).json()
    assert sorted(p["username"] for p in saved) == ["admin", "cora", "dana", "eli"]
    assert [p["username"] for p in saved if p["in use"]] == ["cora"]  # the last login
    assert cli.ok("--as", "eli", "whoami", "--json", **MFA).json()["username"] == "eli"
    nobody = cli("--as", "nobody", "whoami", **MFA)
    assert "medops login --username nobody" in nobody.err
    unauthenticated = cli("whoami", MEDOPS_HOME=str(tmp_path / "empty"), **MFA)
    assert "medops login" in unauthenticated.err
