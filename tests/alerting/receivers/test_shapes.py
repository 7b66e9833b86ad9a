"""PagerDuty, Opsgenie, Slack and Teams bodies, as their documentation requires them, sent to
a loopback server standing in for the service (the real ones are not reachable here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medops.alerting.receivers import Secrets, build
from medops.alerting.schemas import ReceiverConfig
from tests.helpers.notify_peers import HttpPeer, alert, links, payload


def send(kind: str, peer: HttpPeer, notification_kind: str = "firing", **extra: Any) -> Any:
    config = ReceiverConfig.model_validate(
        {"name": "pager", "kind": kind, "url": peer.url, "secret": "pager", **extra}
    )
    secrets = Secrets(Path("/nonexistent"), environ={"MEDOPS_ALERT_SECRET_PAGER": "R0UTINGKEY"})
    if kind in {"slack", "teams"}:  # their webhook URL is the secret
        hook_url = peer.url + "/hook/T0/B0/x"
        secrets = Secrets(Path("/nonexistent"), environ={"MEDOPS_ALERT_SECRET_PAGER": hook_url})
    state = "resolved" if notification_kind == "resolved" else "firing"
    build(config, secrets).send(
        payload(kind=notification_kind, alerts=[alert(state=state)]), links()
    )
    got = peer.received[-1]
    return got, json.loads(got.body)


def test_pagerduty_trigger_has_the_events_v2_required_fields() -> None:
    """routing_key, event_action=trigger, dedup_key = group key, and payload.summary,
    source and severity (one of critical, error, warning, info), plus links."""
    with HttpPeer() as peer:
        _, body = send("pagerduty", peer)
    assert body["routing_key"] == "R0UTINGKEY"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == payload().group_key
    assert body["payload"]["summary"].startswith("[FIRING:1]")
    assert body["payload"]["source"] == "diabetes"
    assert body["payload"]["severity"] in {"critical", "error", "warning", "info"}
    assert body["links"][0]["href"].startswith("https://medops.example.org/alerts/act?")


def test_pagerduty_resolve_and_acknowledge_carry_the_same_dedup_key() -> None:
    """A resolved group resolves the incident; an acknowledged one acknowledges it."""
    with HttpPeer() as peer:
        _, resolved = send("pagerduty", peer, "resolved")
        config = ReceiverConfig(name="pager", kind="pagerduty", url=peer.url, secret="pager")
        secrets = Secrets(Path("/n"), environ={"MEDOPS_ALERT_SECRET_PAGER": "R0UTINGKEY"})
        build(config, secrets).send(payload(alerts=[alert(state="acknowledged")]), links())
        acked = json.loads(peer.received[-1].body)
    assert resolved["event_action"] == "resolve"
    assert acked["event_action"] == "acknowledge"
    assert resolved["dedup_key"] == acked["dedup_key"] == payload().group_key
    assert "payload" not in resolved


def test_a_group_key_longer_than_pagerduty_allows_is_hashed() -> None:
    """dedup_key stays within 255 characters."""
    with HttpPeer() as peer:
        config = ReceiverConfig(name="pager", kind="pagerduty", url=peer.url, secret="pager")
        secrets = Secrets(Path("/n"), environ={"MEDOPS_ALERT_SECRET_PAGER": "K"})
        build(config, secrets).send(payload(group_key="g" * 400), links())
        body = json.loads(peer.received[-1].body)
    assert len(body["dedup_key"]) <= 255


def test_opsgenie_create_has_message_alias_priority_and_the_genie_key() -> None:
    """POST /v2/alerts with Authorization: GenieKey, message (<= 130), alias, priority P1-P5."""
    with HttpPeer() as peer:
        got, body = send("opsgenie", peer)
    assert got.path == "/v2/alerts"
    assert got.headers["authorization"] == "GenieKey R0UTINGKEY"
    assert 0 < len(body["message"]) <= 130
    assert body["alias"] == payload().group_key
    assert body["priority"] in {"P1", "P2", "P3", "P4", "P5"}
    assert "acknowledge: https://medops.example.org/alerts/act?token=" in body["description"]


def test_opsgenie_resolved_closes_the_alert_by_alias() -> None:
    """A resolved group: POST /v2/alerts/{alias}/close?identifierType=alias."""
    with HttpPeer() as peer:
        got, body = send("opsgenie", peer, "resolved")
    assert got.path.endswith("/close?identifierType=alias")
    assert got.path.startswith("/v2/alerts/")
    assert body["source"] == "medops"


def test_slack_message_has_fallback_text_and_blocks_with_link_buttons() -> None:
    """text (Slack's required fallback), a header block, and buttons whose url is the signed
    link; posted to the webhook URL given as the secret."""
    with HttpPeer() as peer:
        got, body = send("slack", peer)
    assert got.path == "/hook/T0/B0/x"
    assert body["text"].startswith("[FIRING:1]")
    assert body["blocks"][0]["type"] == "header"
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    buttons = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["text"]["text"] for b in buttons} == {"Acknowledge", "Resolve"}
    assert all(b["url"].startswith("https://medops.example.org/alerts/act?token=") for b in buttons)


def test_teams_card_is_a_messagecard_with_open_uri_actions() -> None:
    """@type MessageCard, @context, summary, themeColor, sections with facts, OpenUri
    actions with targets."""
    with HttpPeer() as peer:
        _, body = send("teams", peer)
    assert body["@type"] == "MessageCard"
    assert body["@context"] == "https://schema.org/extensions"
    assert body["summary"]
    assert len(body["themeColor"]) == 6
    facts = {f["name"]: f["value"] for f in body["sections"][0]["facts"]}
    assert facts["severity"] == "critical"
    assert facts["deployment"] == "diabetes"
    for action in body["potentialAction"]:
        assert action["@type"] == "OpenUri"
        assert action["targets"][0]["os"] == "default"


def test_no_notification_body_carries_more_than_the_payload_gives() -> None:
    """Nothing beyond the rule, labels, value, annotations and links: a payload with no
    patient data cannot leak one (the payload model forbids extra fields)."""
    data = payload().model_dump()
    data["alerts"][0]["patient_id"] = "P-123"
    with pytest.raises(ValueError, match="patient_id"):
        type(payload()).model_validate(data)
