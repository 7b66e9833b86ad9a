"""The signed JSON webhook against a real HTTP server on the loopback that checks the HMAC."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from medops.alerting.receivers import DeliveryError, Secrets, build
from medops.alerting.receivers.webhook import SIGNATURE_HEADER, signature, verify_signature
from medops.alerting.schemas import ReceiverConfig
from tests.helpers.notify_peers import T0, HttpPeer, alert, links, payload

KEY = "whsec-test-0123456789abcdef"


def hook(url: str, fmt: str = "medops") -> ReceiverConfig:
    return ReceiverConfig.model_validate(
        {"name": "ops-hook", "kind": "webhook", "url": url, "secret": "ops-hook", "format": fmt}
    )


def secrets() -> Secrets:
    return Secrets(folder=Path("/nonexistent"),
                   environ={"MEDOPS_ALERT_SECRET_OPS_HOOK": KEY})  # fmt: skip


def test_a_signed_notification_is_accepted_by_a_receiver_checking_the_hmac() -> None:
    """The peer verifies t.body with the shared key and gets the payload, its links and the
    row id as Idempotency-Key."""
    with HttpPeer(key=KEY.encode()) as peer:
        build(hook(peer.url), secrets()).send(payload(), links(notification_id="row-7"))
        assert len(peer.received) == 1
        assert not peer.refused
    got = peer.received[0]
    assert got.headers["idempotency-key"] == "row-7"
    assert got.headers["content-type"] == "application/json"
    body = json.loads(got.body)
    assert body["version"] == "1"
    assert body["kind"] == "firing"
    assert body["alerts"][0]["name"] == "AccuracyDrop"
    ack = body["alerts"][0]["links"]["acknowledge"]
    assert ack.startswith("https://medops.example.org/alerts/act?token=v1.")
    assert body["alerts"][0]["links"]["evidence"].endswith("/deployments/diabetes/windows/day/1/3")


def test_a_tampered_body_is_refused_by_the_verifier() -> None:
    """The same signature over a changed body does not verify; the peer answers 401."""
    body = b'{"kind":"firing"}'
    header = signature(KEY.encode(), int(T0.timestamp()), body)
    assert verify_signature(KEY.encode(), header, body, T0)
    assert not verify_signature(KEY.encode(), header, b'{"kind":"resolved"}', T0)
    with HttpPeer(key=KEY.encode()) as peer:
        answer = httpx.post(peer.url, content=b'{"kind":"resolved"}',
                            headers={SIGNATURE_HEADER: header})  # fmt: skip
        assert answer.status_code == 401
        assert len(peer.refused) == 1
        assert not peer.received


def test_a_signature_replayed_later_or_with_another_key_is_refused() -> None:
    """Outside the tolerance (five minutes), or signed with another key: not verified."""
    body = b"{}"
    header = signature(KEY.encode(), int(T0.timestamp()), body)
    assert not verify_signature(KEY.encode(), header, body, T0 + timedelta(minutes=6))
    assert not verify_signature(b"another key", header, body, T0)
    assert not verify_signature(KEY.encode(), "v1=abc", body, T0)


def test_a_peer_error_is_a_delivery_error_naming_the_status_not_the_url_path() -> None:
    """A 503 raises DeliveryError with the status; the URL's path (a secret for some
    receivers) is not in the message."""
    with HttpPeer(status=503) as peer:
        receiver = build(hook(peer.url + "/secret-path-token"), secrets())
        with pytest.raises(DeliveryError) as caught:
            receiver.send(payload(), links())
    assert "503" in caught.value.message
    assert "secret-path-token" not in caught.value.message


def test_a_refused_connection_is_a_delivery_error() -> None:
    """Nobody listening: DeliveryError, not an exception of the HTTP library."""
    with HttpPeer() as peer:
        url = peer.url
    with pytest.raises(DeliveryError, match="ConnectError"):
        build(hook(url), secrets()).send(payload(), links())


def test_a_missing_secret_says_where_it_was_looked_for() -> None:
    """No env variable and no file: DeliveryError naming both."""
    empty = Secrets(folder=Path("/nonexistent"), environ={})
    with pytest.raises(DeliveryError, match="MEDOPS_ALERT_SECRET_OPS_HOOK"):
        build(hook("http://127.0.0.1:9"), empty)


def test_the_alertmanager_format_is_alertmanagers_webhook_version_4() -> None:
    """format=alertmanager: version, groupKey, status, receiver, groupLabels, commonLabels,
    commonAnnotations, externalURL and alerts with status, labels, annotations, startsAt,
    endsAt, generatorURL, fingerprint; still signed."""
    with HttpPeer(key=KEY.encode()) as peer:
        build(hook(peer.url, "alertmanager"), secrets()).send(
            payload(kind="resolved", alerts=[alert(state="resolved")]),
            links(),
        )
    body = json.loads(peer.received[0].body)
    assert body["version"] == "4"
    assert body["status"] == "resolved"
    assert body["receiver"] == "ops-hook"
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {"alertname": "AccuracyDrop", "deployment": "diabetes"}
    assert body["commonLabels"]["alertname"] == "AccuracyDrop"
    assert body["commonAnnotations"]["summary"].startswith("Accuracy fell")
    assert body["externalURL"] == "https://medops.example.org/alerts"
    (one,) = body["alerts"]
    assert set(one) == {"status", "labels", "annotations", "startsAt", "endsAt",
                        "generatorURL", "fingerprint"}  # fmt: skip
    assert one["status"] == "resolved"
    assert one["endsAt"] == "2026-03-02T09:30:00.000000Z"


def test_a_secret_comes_from_the_secrets_folder_when_no_variable_is_set(tmp_path: Path) -> None:
    """<home>/secrets/<name> holds the secret (its final newline ignored)."""
    (tmp_path / "ops-hook").write_text(KEY + "\n")
    assert Secrets(tmp_path, environ={}).get("ops-hook") == KEY
