"""A medops home seeded for the console's browser tests: people of every role, the governed
path to production, a canary, a third version awaiting signatures, predictions over three
past days and their monitoring windows (the last day's drifted).

Everything is made in-process before the server starts, through the same API the server
answers (an embedded app on the same home and database), on a fixed clock set three days
back: the predictions fall on past days, so the monitoring run that closes the seeding finds
complete day windows, as the scheduler would. The governed path runs before anyone enrolls
MFA (a signature re-authenticates with the password alone then); the ML engineer, the
clinician and the admin enroll TOTP last, and the record keeps their secrets so a test can
play the authenticator app (``OneTimeCodes``). The second ML engineer is left unenrolled:
the MFA policy (admin, ml_engineer) restricts them to enrolling when they sign in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pyotp
from pydantic import SecretStr

from medops import admin
from medops.api.app import create_app
from medops.auth.schemas import UserCreate
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.monitoring.results import WindowSummary
from medops.services import Services, build_services
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.http import PASSWORD, bearer
from tests.helpers.people import SYSTEM_CTX
from tests.helpers.registry import DEPLOYMENT, NAME, approved, deploy, promote, ready_version

USERNAMES = {role: role.value.replace("_", "-") for role in Role}
SECOND_ENGINEER = "second-engineer"
ENROLLED = (Role.ADMIN, Role.ML_ENGINEER, Role.CLINICIAN)  # TOTP secrets known to the tests
CANARY_PERCENT = 30
DAYS = 3
PER_DAY = 240
# The last day's records are shifted (older, heavier, higher bp): the latest window of the
# deployment is a drifted one, as the overview shows it.
DRIFTED_DAY = DAYS - 1


@dataclass(frozen=True)
class Person:
    """A seeded user: how to sign in as them, and an API token for driving the API."""

    username: str
    role: Role
    password: str
    api_token: str
    totp_secret: str | None = None  # None: no MFA enrolled

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.api_token)


@dataclass(frozen=True)
class Window:
    """A computed monitoring window, with the console page that shows it."""

    deployment: str
    kind: str
    version: int
    sequence: int
    start: str
    end: str
    rows: int
    verdict: str
    drifted: bool

    @property
    def href(self) -> str:
        return f"/deployments/{self.deployment}/windows/{self.kind}/{self.version}/{self.sequence}"


@dataclass(frozen=True)
class ConsoleSeed:
    """What ``seed_console_home`` made."""

    people: dict[Role, Person]
    second_engineer: Person  # an ML engineer who has not enrolled MFA yet
    model: str
    production_version: int
    pending_version: int  # reported, validated and carded; nobody has signed it
    canary_version: int
    canary_percent: int
    deployment: str
    predictions: int  # logged in the seeded past days (live ones come on top)
    windows: tuple[Window, ...]
    alerts: tuple[str, ...]  # the ids of the alerts an evaluation after the run opened
    explained: str  # the id of a prediction logged with its explanation

    def person(self, role: Role) -> Person:
        return self.people[role]

    @property
    def drifted_windows(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.drifted)

    @property
    def steady_windows(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if not w.drifted)


@dataclass
class OneTimeCodes:
    """Plays the authenticator app of the seeded people. medops accepts one 30-second step of
    drift and never the same step twice for a user, so each code handed out is for a step
    after that user's last one (waiting for the clock when both the current and next step
    are used: at most one step)."""

    secrets: dict[str, str]
    _last: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, username: str) -> str:
        totp = pyotp.TOTP(self.secrets[username])
        with self._lock:
            while True:
                step = int(time.time()) // totp.interval
                last = self._last.get(username, -1)
                chosen = next((s for s in (step, step + 1) if s > last), None)
                if chosen is not None:
                    self._last[username] = chosen
                    return totp.at(chosen * totp.interval)
                time.sleep(totp.interval - time.time() % totp.interval + 0.05)

    @classmethod
    def of(cls, seed: ConsoleSeed) -> OneTimeCodes:
        return cls({p.username: p.totp_secret for p in seed.people.values() if p.totp_secret})


def seed_console_home(settings: Settings) -> ConsoleSeed:
    """Initialize ``settings.home`` (its database too) and fill it as the module says."""
    admin.init(settings.model_copy(update={"admin_password": SecretStr(PASSWORD)}))
    real_now = datetime.now(UTC)
    clock = FixedClock(real_now - timedelta(days=DAYS))
    # The MFA policy applies when someone signs in; seeding enrolls the MFA users last.
    services = build_services(settings.model_copy(update={"mfa_required_roles": ()}), clock=clock)
    try:
        with httpx.Client(
            transport=EmbeddedTransport(create_app(services=services)),
            base_url="https://testserver",
        ) as http:
            return _seed(http, services, clock, real_now)
    finally:
        services.close()


def _seed(
    http: httpx.Client, services: Services, clock: FixedClock, real_now: datetime
) -> ConsoleSeed:
    for role in Role:
        if role is not Role.ADMIN:
            _create_user(services, USERNAMES[role], role)
    _create_user(services, SECOND_ENGINEER, Role.ML_ENGINEER)
    tokens = {role: _api_token(http, USERNAMES[role], role) for role in Role}
    second = _api_token(http, SECOND_ENGINEER, Role.ML_ENGINEER)
    people = {"ds": tokens[Role.DATA_SCIENTIST], "mle": tokens[Role.ML_ENGINEER],
              "mle2": second, "clin": tokens[Role.CLINICIAN]}  # fmt: skip
    headers = {who: bearer(token) for who, token in people.items()}

    created = http.post(
        "/api/v1/models", json={"name": NAME, "policy": model_data.POLICY}, headers=headers["mle"]
    )
    assert created.status_code == 201, created.text
    production = approved(http, headers)
    _ok(promote(http, headers["mle"], production))
    _ok(deploy(http, headers["mle"], reason="first release"))
    canary = approved(http, headers, c=3.0)
    _ok(http.put(f"/api/v1/deployments/{DEPLOYMENT}/canary",
                 json={"version": canary, "percent": CANARY_PERCENT,
                       "reason": "canary for version 2 (C=3)"},
                 headers=headers["mle"]))  # fmt: skip

    pending = ready_version(http, headers, c=0.5)

    predictions = 0
    for day in range(DAYS):
        predictions += _serve_a_day(http, headers["clin"], day, drifted=day == DRIFTED_DAY)
        clock.advance(timedelta(days=1))
    clock.set(real_now)
    _ok(http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=headers["mle"]))
    windows = tuple(
        _window(summary)
        for version in (production, canary)
        for summary in services.monitoring.results(DEPLOYMENT)
        if summary.version == version
    )
    _ok(http.post("/api/v1/alerts/evaluate", json={}, headers=headers["mle"]))
    alerts = tuple(a["id"] for a in _ok(http.get("/api/v1/alerts", headers=headers["mle"])))
    asked = {"features": _records(1, DAYS, drifted=False)[0], "patient_ref": "pt-explained",
             "explain": True}  # fmt: skip
    explained = _ok(
        http.post(f"/api/v1/deployments/{DEPLOYMENT}/predict", json=asked, headers=headers["clin"])
    )["predictions"][0]["id"]
    secrets = {role: _enroll(http, clock, USERNAMES[role], tokens[role]) for role in ENROLLED}
    return ConsoleSeed(
        people={
            role: Person(USERNAMES[role], role, PASSWORD, tokens[role], secrets.get(role))
            for role in Role
        },
        second_engineer=Person(SECOND_ENGINEER, Role.ML_ENGINEER, PASSWORD, second),
        model=NAME,
        production_version=production,
        pending_version=pending,
        canary_version=canary,
        canary_percent=CANARY_PERCENT,
        deployment=DEPLOYMENT,
        predictions=predictions,
        windows=windows,
        alerts=alerts,
        explained=explained,
    )


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _create_user(services: Services, username: str, role: Role) -> None:
    services.identity.create_user(
        SYSTEM_CTX,
        UserCreate(username=username, role=role, password=PASSWORD,
                   full_name=f"Seeded {username.replace('-', ' ').title()}"),
    )  # fmt: skip


def _api_token(http: httpx.Client, username: str, role: Role) -> str:
    """An API token (no idle timeout) of ``username``, through a password sign-in; the
    service role may not create tokens, so it keeps the sign-in's token."""
    login = _ok(http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}))
    if role is Role.SERVICE:
        return str(login["access_token"])
    issued = _ok(http.post("/api/v1/tokens", json={"name": "seed"},
                           headers=bearer(login["access_token"])))  # fmt: skip
    return str(issued["token"])


def _records(n: int, seed: int, *, drifted: bool) -> list[dict[str, float]]:
    """Patients drawn from the evaluation data as they are (the reference's own
    distribution); on a drifted day older, heavier and with higher blood pressure."""
    _, x_eval, _, _ = model_data.frames()
    rows = x_eval.sample(n, replace=True, random_state=seed).to_dict(orient="records")
    records = [{k: float(v) for k, v in row.items()} for row in rows]
    if drifted:
        for record in records:
            record["age"] = min(110.0, record["age"] + 15)
            record["bmi"] = min(80.0, record["bmi"] + 6)
            record["bp"] = record["bp"] + 15
    return records


def _serve_a_day(http: httpx.Client, clin: dict[str, str], day: int, *, drifted: bool) -> int:
    """A day's predictions, each followed by an outcome drawn from the model's own risk
    score (a calibrated model's outcomes: performance holds unless the inputs move)."""
    rng = np.random.default_rng(day)
    records = _records(PER_DAY, day, drifted=drifted)
    body = {"records": [{"features": r, "patient_ref": f"pt-{day}-{i}"}
                        for i, r in enumerate(records)]}  # fmt: skip
    answer = _ok(http.post(f"/api/v1/deployments/{DEPLOYMENT}/predict", json=body, headers=clin))
    for p in answer["predictions"]:
        label = int(rng.random() < p["score"])
        _ok(http.post(f"/api/v1/predictions/{p['id']}/outcome", json={"label": label},
                      headers=clin))  # fmt: skip
    return len(answer["predictions"])


def _window(summary: WindowSummary) -> Window:
    assert summary.sequence is not None
    return Window(
        deployment=summary.deployment,
        kind=summary.window,
        version=summary.version,
        sequence=summary.sequence,
        start=summary.start,
        end=summary.end,
        rows=summary.rows,
        verdict=summary.verdict,
        drifted=summary.drifted,
    )


def _enroll(http: httpx.Client, clock: FixedClock, username: str, token: str) -> str:
    """Enroll TOTP for ``username`` through the MFA API; returns the secret."""
    enrollment = _ok(http.post("/api/v1/auth/mfa/enroll", json={"password": PASSWORD},
                               headers=bearer(token)))  # fmt: skip
    secret = str(enrollment["secret"])
    # The seeding clock is real time here; the code is for the step before now, so the
    # tests' first sign-in (at the current step or later) is never a replay.
    code = pyotp.TOTP(secret).at(clock.now() - timedelta(seconds=30))
    _ok(http.post("/api/v1/auth/mfa/confirm", json={"code": code}, headers=bearer(token)))
    return secret


def serve_live(url: str, seed: ConsoleSeed, records: int = 40) -> int:
    """Predictions through the running server (as the clinician), so the overview's live
    figures (this server process's) have numbers; returns how many were answered."""
    clinician = seed.person(Role.CLINICIAN)
    body = {"records": [{"features": r, "patient_ref": f"live-{i}"}
                        for i, r in enumerate(_records(records, 99, drifted=False))]}  # fmt: skip
    answer = httpx.post(f"{url}/api/v1/deployments/{seed.deployment}/predict", json=body,
                        headers=clinician.headers, timeout=30)  # fmt: skip
    return len(_ok(answer)["predictions"])
