"""The console in a real browser: Debian's chromium driven by Playwright, a real ``medops
server`` on a seeded home, and the checks every browser test makes.

``ConsolePage`` wraps one Playwright page of a fresh browser context and records, from its
first request: every request (one to another origin than the server's is refused and fails
the test: the console is air-gapped), every console error (CSP violations are reported
there) and every uncaught script error. ``shoot`` saves a full-page screenshot;
``check_accessibility`` runs the vendored axe-core and fails on any serious or critical
violation.

axe-core is injected with ``page.evaluate`` of its source: evaluation goes through the
DevTools protocol, which the page's Content-Security-Policy does not govern, so the console
is tested under its real policy. (``add_script_tag`` adds an inline ``<script>``, which the
policy blocks, and ``bypass_csp=True`` would switch the policy off for the whole context,
hiding exactly the violations these tests look for.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Route

from medops.config import Settings
from tests.helpers.cli_runner import clean_env
from tests.helpers.console_seed import (
    ConsoleSeed,
    OneTimeCodes,
    Person,
    seed_console_home,
    serve_live,
)
from tests.helpers.server import free_port, start_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MEDOPS_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_ENV = "MEDOPS_REQUIRE_BROWSER"
SCREENSHOTS_ENV = "MEDOPS_SCREENSHOTS"
# Without the background-networking flags chromium reaches out to Google's services at
# start, and on a closed network those connections are refused (and logged).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
AXE = REPO / "tests" / "browser" / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
LOCAL_SCHEMES = ("data", "blob", "about")  # no network request behind these


def screenshot_folder() -> Path:
    """Where ``shoot`` saves (``MEDOPS_SCREENSHOTS``, or browser-artifacts/screenshots/)."""
    given = os.environ.get(SCREENSHOTS_ENV)
    return Path(given) if given else REPO / "browser-artifacts" / "screenshots"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return (
            f"no chromium at {CHROMIUM} (apt-get install -y --no-install-recommends chromium, "
            "or set MEDOPS_CHROMIUM)"
        )
    return None


@contextmanager
def launch(playwright: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless. Playwright's ``launch`` starts it on a fresh temporary
    user-data folder of its own and removes it at close (it refuses ``--user-data-dir``,
    which only ``launch_persistent_context`` takes: one context for the whole run, where
    each test wants a fresh one)."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
    try:
        yield browser
    finally:
        browser.close()


@dataclass(frozen=True)
class ServedConsole:
    """A running ``medops server`` on a seeded home."""

    url: str
    seed: ConsoleSeed
    codes: OneTimeCodes
    home: Path


@contextmanager
def served_console(folder: Path) -> Iterator[ServedConsole]:
    """Seed a SQLite home in ``folder``, start ``medops server`` on it, send it some live
    predictions, and stop it after."""
    home = folder / "home"
    database_url = f"sqlite:///{folder / 'medops.db'}"
    seed = seed_console_home(Settings(home=home, database_url=database_url))
    env = clean_env(MEDOPS_HOME=str(home), MEDOPS_DATABASE_URL=database_url)
    port = free_port()
    proc = start_server(env, port)
    try:
        serve_live(f"http://127.0.0.1:{port}", seed)
        yield ServedConsole(f"http://127.0.0.1:{port}", seed, OneTimeCodes.of(seed), home)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class ConsolePage:
    """One page of a fresh browser context on the served console, watched (module doc)."""

    page: Page
    server: ServedConsole
    shots: Path
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.context.route("**/*", self._route)
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    @property
    def seed(self) -> ConsoleSeed:
        return self.server.seed

    def _route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in LOCAL_SCHEMES or origin(url) == self.server.url:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("blockedbyclient")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def goto(self, path: str) -> None:
        """Open ``path`` of the served console and wait until the network is quiet."""
        answer = self.page.goto(self.server.url + path, wait_until="networkidle")
        assert answer is not None
        assert answer.ok, f"{path}: {answer.status}"

    def allow_console_error(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (e.g. the browser's log line for a
        refused sign-in's 401); any other still fails the test."""
        self.allowed.append(re.compile(pattern))

    def problems(self) -> list[str]:
        """Requests to another origin and unexpected console or script errors so far."""
        found = [f"request to another origin: {url}" for url in self.foreign]
        found += [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        return found

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "the page misbehaved:\n  " + "\n  ".join(problems)

    def shoot(self, name: str) -> Path:
        """A full-page screenshot ``name``.png in the run's screenshot folder."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            msg = f"screenshot names are lower-case words with - . _ only: {name!r}"
            raise ValueError(msg)
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check_accessibility(self) -> None:
        """Run axe-core on the page as it is; fail listing every serious or critical
        violation (rule, impact, what it asks, and the elements)."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        results: dict[str, Any] = self.page.evaluate(
            "async () => await window.axe.run(document, {resultTypes: ['violations']})"
        )
        blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
        lines = [
            f"{v['id']} ({v['impact']}): {v['help']} - "
            + json.dumps([n["target"] for n in v["nodes"]][:5])
            for v in blocking
        ]
        assert not lines, f"accessibility violations on {self.page.url}:\n  " + "\n  ".join(lines)


def sign_in(page: ConsolePage | Page, user: str, password: str, otp: str | None = None) -> None:
    """Fill and send the real /login form (it posts to the session API through
    console.js); returns once the browser has left /login, or the form shows a status."""
    pw = page.page if isinstance(page, ConsolePage) else page
    if urlsplit(pw.url).path != "/login":
        base = page.server.url if isinstance(page, ConsolePage) else origin(pw.url)
        pw.goto(f"{base}/login", wait_until="networkidle")
    pw.get_by_label("User name").fill(user)
    pw.get_by_label("Password").fill(password)
    if otp is not None:
        pw.get_by_label("One-time code").fill(otp)
    pw.get_by_role("button", name="Sign in").click()
    pw.wait_for_function(
        "() => location.pathname !== '/login' || "
        "/\\b(bad|ok)\\b/.test(document.querySelector('form.login .status')?.className ?? '')"
    )
    pw.wait_for_load_state("networkidle")


def sign_in_as(page: ConsolePage, person: Person) -> None:
    """Sign ``person`` in through the form, with a fresh one-time code when enrolled."""
    otp = page.server.codes.next(person.username) if person.totp_secret else None
    sign_in(page, person.username, person.password, otp)
    assert urlsplit(page.page.url).path != "/login", page.page.content()
