"""`medops console`: the console of a local installation on a free loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import MEDOPS


def test_console_serves_the_sign_in_page_on_the_port_it_announces(tmp_path: Path) -> None:
    """--json announces the URL first; the sign-in page answers there; SIGINT stops it."""
    env = clean_env(MEDOPS_HOME=str(tmp_path / "home"))
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD="copper-valley-notes")
    proc = subprocess.Popen(
        [MEDOPS, "console", "--no-open", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"{url}login", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(proc.stderr.read() if proc.stderr else "no start")
                time.sleep(0.1)
        assert page.status_code == 200
        assert "<h1>Sign in</h1>" in page.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
