"""The drill's installation: ``medops db upgrade`` and ``medops init`` on the primary, then
through the SDK the governed path to a deployed model (MFA for the roles that need it, a
validation report, a card, two signatures, a promotion) and an API token for the scoring
service that sends the load."""

from __future__ import annotations

import json
import secrets
import subprocess  # nosec B404 - runs the medops CLI with argument lists, never a shell
import sys
from dataclasses import dataclass
from typing import Any

import pyotp

from medops.client import Client
from medops.config import Settings
from medops.errors import ConfigurationError

MODEL = "diabetes-risk"
DEPLOYMENT = "diabetes"
POLICY = {"max_subgroup_gap": 0.15}  # the demo model's >=60 band is small (see examples.py)
MEDOPS = (sys.executable, "-m", "medops.cli.main")


@dataclass(frozen=True)
class Seeded:
    """What the load needs: the deployment's name, a service token and valid records."""

    deployment: str
    token: str
    records: list[dict[str, float]]


def medops(env: dict[str, str], *args: str, timeout: float = 120) -> Any:
    """Run ``medops ARGS --json`` with ``env``; its JSON answer (one line on error)."""
    done = subprocess.run(  # noqa: S603 - our own command  # nosec B603
        [*MEDOPS, *args, "--json"], env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        msg = f"medops {' '.join(args)} failed: {lines[-1] if lines else done.returncode}"
        raise ConfigurationError(msg)
    return json.loads(done.stdout) if done.stdout.strip() else None


def seed(env: dict[str, str], settings: Settings, password: str) -> Seeded:
    """Upgrade and initialize the database of ``env``, deploy the example model, and make
    the scoring service's token; every user's password is ``password``."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    from medops import examples

    medops(env, "db", "upgrade")
    medops(env, "init", "--admin", "admin")
    recovery: dict[str, list[str]] = {}
    x_train, x_eval, y_train, y_eval = examples.diabetes_frames()
    with Client(settings=settings) as client:  # one embedded app; each login switches user
        _login(client, "admin", password, recovery)
        for name, role in USERS.items():
            client.create_user(name, role, password, full_name=f"Drill {name}")
        token = client.create_token("dr-drill-load", for_user="service").token
        _login(client, "ml-engineer", password, recovery)
        client.create_model(MODEL, description="DR drill model", policy=POLICY)
        _login(client, "data-scientist", password, recovery)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x_train, y_train)
        version = client.register_model(
            MODEL, model, sample=x_train, demographic=["sex", "age"],
            bands={"age": [40.0, 60.0]}, ranges={"age": (18, 110), "bmi": (10, 80)},
            training_data={"uri": "sklearn:load_diabetes", "description": "70% split, seed 0"},
            code={"commit": "0000000", "repository": "medops dr drill"},
        )  # fmt: skip
        client.validate(
            version.ref, examples.labeled_csv(x_eval, y_eval), label=examples.LABEL,
            bootstrap=100,
        )  # fmt: skip
        _login(client, "clinician", password, recovery)
        client.update_card(version.ref, examples.DIABETES_CARD)
        client.approve(version.ref, password)
        _login(client, "ml-engineer-2", password, recovery)
        client.approve(version.ref, password, otp=recovery["ml-engineer-2"].pop())
        _login(client, "ml-engineer", password, recovery)
        client.promote(MODEL, "production", version.version, "DR drill release")
        client.create_deployment(DEPLOYMENT, f"{MODEL}@production", reason="DR drill")
    records = [
        {key: float(value) for key, value in row.items()}
        for row in x_eval.head(50).to_dict(orient="records")
    ]
    return Seeded(deployment=DEPLOYMENT, token=token, records=records)


USERS = {
    "data-scientist": "data_scientist",
    "ml-engineer": "ml_engineer",
    "ml-engineer-2": "ml_engineer",
    "clinician": "clinician",
    "service": "service",
}


def _login(client: Client, username: str, password: str, recovery: dict[str, list[str]]) -> None:
    """Log in; a role that must use TOTP enrolls first (the drill plays the authenticator)
    and logs in again with a recovery code."""
    if username in recovery:
        client.login(username, password, otp=recovery[username].pop())
        return
    answer = client.login(username, password)
    if answer.restriction != "mfa-enrollment":
        return
    enrollment = client.mfa_enroll(password)
    recovery[username] = client.mfa_confirm(pyotp.TOTP(enrollment.secret).now()).codes
    client.login(username, password, otp=recovery[username].pop())


def new_password() -> str:
    """A password for the drill's throw-away users (never printed)."""
    return "dr-" + secrets.token_urlsafe(18)
