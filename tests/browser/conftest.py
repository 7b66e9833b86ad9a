"""Fixtures of the browser tests: one seeded ``medops server`` and one chromium per run, a
fresh watched page per test (tests/helpers/browser.py says what is watched and why).

Without chromium the tests skip with the reason, or fail with it under
``MEDOPS_REQUIRE_BROWSER=1`` (as in .ci/run): CI never passes by not looking.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.helpers.browser import (
    REQUIRE_ENV,
    ConsolePage,
    ServedConsole,
    launch,
    missing_browser,
    screenshot_folder,
    served_console,
)

_SHOTS_KEY = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for the whole run."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 and the browser tests cannot run: {reason}")
        pytest.skip(f"browser test: {reason}")
    with sync_playwright() as playwright, launch(playwright) as chromium:
        yield chromium


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedConsole]:
    """A ``medops server`` on a seeded SQLite home (tests/helpers/console_seed.py), shared by
    the run: tests that change it say so and leave the seeded facts others read intact."""
    with served_console(tmp_path_factory.mktemp("console")) as server:
        yield server


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Path:
    """The run's screenshot folder (named in the summary at the end of the run)."""
    folder = screenshot_folder()
    request.config.stash[_SHOTS_KEY] = folder
    return folder


@pytest.fixture
def page(
    browser: Browser, console_server: ServedConsole, screenshots: Path
) -> Iterator[ConsolePage]:
    """A page in a fresh browser context (no cookies), watched from its first request;
    the test fails if it reached another origin or logged an unexpected error."""
    context = browser.new_context(
        base_url=console_server.url, viewport={"width": 1280, "height": 900}
    )
    watched = ConsolePage(context.new_page(), console_server, screenshots)
    try:
        yield watched
        watched.assert_clean()
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    folder = terminalreporter.config.stash.get(_SHOTS_KEY, None)
    if folder is not None and folder.is_dir():
        terminalreporter.write_line(f"browser screenshots: {folder}")
