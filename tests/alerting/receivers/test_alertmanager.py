"""Alerts pushed to Alertmanager itself (Debian's prometheus-alertmanager) on the loopback,
read back through its own API. Skips when the binary is missing, unless
MEDOPS_REQUIRE_ALERTMANAGER=1 (then it fails)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from medops.alerting.links import Links
from medops.alerting.receivers import Secrets, build
from medops.alerting.schemas import ReceiverConfig
from tests.helpers.notify_peers import LINK_KEY, alert, payload

BINARY = os.environ.get("MEDOPS_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname, deployment]
receivers:
  - name: blackhole
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A running Alertmanager's base URL."""
    if shutil.which(BINARY) is None:
        if os.environ.get("MEDOPS_REQUIRE_ALERTMANAGER") == "1":
            pytest.fail(f"MEDOPS_REQUIRE_ALERTMANAGER=1 but {BINARY} is missing")
        pytest.skip(f"{BINARY} is not installed (Debian's prometheus-alertmanager)")
    (tmp_path / "am.yml").write_text(CONFIG)
    port = free_port()
    log = tmp_path / "am.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BINARY, f"--config.file={tmp_path / 'am.yml'}",
             f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"alertmanager did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_pushed_alerts_are_in_alertmanager_with_labels_annotations_and_links(
    alertmanager: str,
) -> None:
    """POST /api/v2/alerts: Alertmanager lists the alert active with its labels, the rule's
    annotations and the signed acknowledge link as an annotation."""
    now = datetime.now(UTC)
    config = ReceiverConfig(name="am", kind="alertmanager", url=alertmanager)
    links = Links("https://medops.example.org", LINK_KEY, now, notification_id="n1")
    fresh = alert().model_copy(update={"starts_at": now - timedelta(minutes=1)})
    build(config, Secrets(Path("/n"), environ={})).send(payload(alerts=[fresh]), links)
    listed = httpx.get(f"{alertmanager}/api/v2/alerts").json()
    (got,) = listed
    assert got["labels"]["alertname"] == "AccuracyDrop"
    assert got["labels"]["deployment"] == "diabetes"
    assert got["labels"]["severity"] == "critical"
    assert got["status"]["state"] == "active"
    assert got["annotations"]["summary"].startswith("Accuracy fell")
    assert got["annotations"]["medops_acknowledge"].startswith(
        "https://medops.example.org/alerts/act?token=v1."
    )
    assert got["generatorURL"].endswith("/deployments/diabetes/windows/day/1/3")


def test_a_resolved_notification_ends_the_alert_in_alertmanager(alertmanager: str) -> None:
    """A resolved push sets endsAt; Alertmanager no longer lists it as active."""
    now = datetime.now(UTC)
    config = ReceiverConfig(name="am", kind="alertmanager", url=alertmanager)
    receiver = build(config, Secrets(Path("/n"), environ={}))
    links = Links("https://medops.example.org", LINK_KEY, now)
    fresh = alert().model_copy(update={"starts_at": now - timedelta(minutes=5)})
    receiver.send(payload(alerts=[fresh]), links)
    ended = fresh.model_copy(update={"state": "resolved", "ends_at": now - timedelta(seconds=1)})
    receiver.send(payload(kind="resolved", alerts=[ended]), links)
    active = httpx.get(f"{alertmanager}/api/v2/alerts", params={"active": "true",
                       "inhibited": "true", "silenced": "true", "unprocessed": "true",
                       "resolved": "false"}).json()  # fmt: skip
    assert active == []
