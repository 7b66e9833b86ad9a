"""Schemathesis against a live medops server, once per role: no 5xx, no answer off its schema.

Starts ``medops init`` and ``medops server`` on a fresh home (SQLite, or the PostgreSQL URL in
``MEDOPS_DATABASE_URL``), creates one user per role with an API token, seeds a model ``fuzz``
(one approved version in ``production``) served by a deployment ``fuzz`` so that generated
paths reach real resources about half of the time (schemathesis parameter dictionaries,
written to a ``schemathesis.toml`` of the run), then runs ``st run``
against ``/openapi.json`` as each of them and as an anonymous caller, each for a bounded time
(``--seconds``, default 40), with the checks ``not_a_server_error`` and
``response_schema_conformance``. Reports (JUnit XML) go under ``--out``. Exits non-zero when
any run failed. ``make fuzz`` runs it; .ci/run runs it in a stage of its own.

Routes that end the caller's own credentials (logout, revoke-all, password change, token
revocation) are left out so a run keeps its token; they are covered by the tests of tests/api
and tests/security. The admin runs last, since it may disable or reset the other fuzz users;
after each run the script says whether the run's token still worked at its end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "copper-kettle-meadow-7"
USER_PASSWORD = "fuzz-user-password-1"
SEEDED = "fuzz"
ROLES = ("data_scientist", "ml_engineer", "clinician", "auditor", "service", "admin")
# Operations that revoke the caller's own token would end the run's authentication.
EXCLUDED = (
    "POST /api/v1/auth/logout",
    "POST /api/v1/auth/sessions/revoke-all",
    "POST /api/v1/auth/password",
    "DELETE /api/v1/tokens/{token_id}",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the server exited with {proc.returncode}"
            raise SystemExit(msg)
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    msg = "the server did not answer /healthz within 60 s"
    raise SystemExit(msg)


def _token(http: httpx.Client, username: str, password: str) -> str:
    answer = http.post("/api/v1/auth/token", data={"username": username, "password": password})
    answer.raise_for_status()
    login = str(answer.json()["access_token"])
    issued = http.post("/api/v1/tokens", json={}, headers={"Authorization": f"Bearer {login}"})
    issued.raise_for_status()
    return str(issued.json()["token"])


def _tokens(url: str) -> dict[str, str]:
    """An API token per role (a service account's is issued by the admin)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = _token(http, "admin", ADMIN_PASSWORD)
        as_admin = {"Authorization": f"Bearer {admin}"}
        tokens = {"admin": admin}
        for role in ROLES[:-1]:
            name = f"fuzz-{role.replace('_', '-')}"
            created = http.post(
                "/api/v1/users",
                json={
                    "username": name,
                    "role": role,
                    "password": USER_PASSWORD,
                    "full_name": f"Fuzz {role}",
                },
                headers=as_admin,
            )
            created.raise_for_status()
            if role == "service":
                issued = http.post(
                    f"/api/v1/users/{name}/tokens", json={"name": "fuzz"}, headers=as_admin
                )
                issued.raise_for_status()
                tokens[role] = str(issued.json()["token"])
            else:
                tokens[role] = _token(http, name, USER_PASSWORD)
        second = http.post(
            "/api/v1/users",
            json={
                "username": "fuzz-second-engineer",
                "role": "ml_engineer",
                "password": USER_PASSWORD,
                "full_name": "Fuzz second engineer",
            },
            headers=as_admin,
        )
        second.raise_for_status()
        tokens["ml_engineer_2"] = _token(http, "fuzz-second-engineer", USER_PASSWORD)
    return tokens


def _seed(url: str, tokens: dict[str, str]) -> None:
    """The model ``fuzz``: version 1 registered, validated, carded, signed by a clinician and
    a second engineer, in ``production`` and served by the deployment ``fuzz``."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    from medops import examples
    from medops.client import Client

    x_train, x_eval, y_train, y_eval = examples.diabetes_frames()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    with Client(url, tokens["ml_engineer"]) as engineer:
        # The demo's gap bound: the >=60 age band is small (see demo/demo_registry.py).
        engineer.create_model(SEEDED, policy={"max_subgroup_gap": 0.15})
    with Client(url, tokens["data_scientist"]) as ds:
        version = ds.register_model(
            SEEDED,
            model,
            sample=x_train,
            demographic=["sex", "age"],
            bands={"age": [40.0, 60.0]},
            ranges={"age": (18, 110), "bmi": (10, 80), "bp": (40, 200)},
            training_data={"uri": "sklearn:load_diabetes"},
        )
        evaluation = examples.labeled_csv(x_eval, y_eval)
        ds.validate(version.ref, evaluation, label=examples.LABEL, dataset_name="eval.csv")
    with Client(url, tokens["clinician"]) as clinician:
        clinician.update_card(version.ref, examples.DIABETES_CARD)
        clinician.approve(version.ref, USER_PASSWORD)
    with Client(url, tokens["ml_engineer_2"]) as second:
        second.approve(version.ref, USER_PASSWORD)
    with Client(url, tokens["ml_engineer"]) as engineer:
        engineer.promote(SEEDED, "production", 1, "seeded for the fuzz run")
        engineer.create_deployment(SEEDED, f"{SEEDED}@production", reason="seeded")


def _config(out: Path) -> Path:
    """Parameter dictionaries: about half of the generated path values name a seeded
    resource (the model and deployment ``fuzz``, its versions and aliases, the users)."""
    users = [f"fuzz-{role.replace('_', '-')}" for role in ROLES[:-1]] + ["admin"]
    config = out / "schemathesis.toml"
    config.write_text(
        f"""[dictionaries.names]
values = ["{SEEDED}"]
[dictionaries.selectors]
values = ["1", "production", "2"]
[dictionaries.aliases]
values = ["production", "staging"]
[dictionaries.users]
values = {json.dumps(users)}

[parameters]
"path.name" = {{ dictionary = "names", probability = 0.5 }}
"path.selector" = {{ dictionary = "selectors", probability = 0.5 }}
"path.alias" = {{ dictionary = "aliases", probability = 0.5 }}
"path.username" = {{ dictionary = "users", probability = 0.5 }}
"""
    )
    return config


def _run(
    url: str, who: str, token: str | None, seconds: int, out: Path, seed: int, config: Path
) -> bool:
    command = [
        str(BIN / "st"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-time",
        str(seconds),
        "--seed",
        str(seed),
        *(arg for name in EXCLUDED for arg in ("--exclude-name", name)),
        "--report",
        "junit",
        "--report-junit-path",
        str(out / f"{who}.xml"),
        "--no-color",
    ]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    started = time.monotonic()
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    tail = "\n".join(result.stdout.splitlines()[-25:])
    status = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"== schemathesis as {who}: {status} in {time.monotonic() - started:.0f} s")  # noqa: T201
    print(tail)  # noqa: T201
    if token is not None:
        me = httpx.get(f"{url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        alive = (
            "still valid" if me.status_code == 200 else f"ended during the run ({me.status_code})"
        )
        print(f"   the run's token is {alive}")  # noqa: T201
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=40, help="time budget per role")
    parser.add_argument("--out", type=Path, default=Path("schemathesis-report"))
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--roles", default=",".join(("anonymous", *ROLES)))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="medops-fuzz-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}
        env |= {
            "MEDOPS_HOME": str(Path(tmp) / "home"),
            "MEDOPS_MFA_REQUIRED_ROLES": "",
            "MEDOPS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MEDOPS_LOG_LEVEL": os.environ.get("FUZZ_LOG_LEVEL", "warning"),
        }
        if os.environ.get("MEDOPS_DATABASE_URL"):
            env["MEDOPS_DATABASE_URL"] = os.environ["MEDOPS_DATABASE_URL"]
        subprocess.run(
            [str(BIN / "medops"), "init", "--json"], env=env, check=True, capture_output=True
        )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (args.out / "server.log").open("wb")
        server = subprocess.Popen(
            [str(BIN / "medops"), "server", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(url, server)
            tokens = _tokens(url)
            _seed(url, tokens)
            config = _config(args.out)
            results = [
                _run(url, who, tokens.get(who), args.seconds, args.out, args.seed, config)
                for who in args.roles.split(",")
            ]
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    failed = results.count(False)
    print(f"schemathesis: {len(results) - failed} of {len(results)} runs passed")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
