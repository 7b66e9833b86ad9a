"""Real peers on the loopback for the receiver tests: an HTTP server that records what it is
sent (and, given a key, refuses a body whose HMAC signature does not verify), and the
notification payloads the tests send."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from medops.alerting.links import Links
from medops.alerting.receivers.webhook import SIGNATURE_HEADER, verify_signature
from medops.alerting.schemas import NotificationAlert, NotificationPayload

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINK_KEY = b"k" * 32


@dataclass
class Received:
    """One request the peer took."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpPeer:
    """An HTTP server on 127.0.0.1 answering ``status`` (200 by default) to every POST.

    With ``key``, a request whose ``X-Medops-Signature`` does not verify against ``now()`` is
    answered 401 and kept in ``refused``; the others go to ``received``. ``delay`` slows each
    answer (so concurrent senders overlap)."""

    key: bytes | None = None
    status: int = 200
    delay: float = 0.0
    now: datetime = T0
    received: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                got = Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )  # fmt: skip
                time.sleep(peer.delay)
                status = peer.status
                if status < 300 and peer.key is not None:
                    header = got.headers.get(SIGNATURE_HEADER.lower(), "")
                    if not verify_signature(peer.key, header, got.body, peer.now):
                        status = 401
                with peer.lock:
                    if status == 401:
                        peer.refused.append(got)
                    elif status < 300:
                        peer.received.append(got)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HttpPeer:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _b: TracebackType | None
    ) -> None:
        self.close()


def alert(
    name: str = "AccuracyDrop",
    state: str = "firing",
    severity: str = "critical",
    ident: str = "a1",
) -> NotificationAlert:
    """An alert as the engine would put it in a notification."""
    return NotificationAlert.model_validate(
        {
            "id": ident,
            "fingerprint": "f" * 64,
            "name": name,
            "state": state,
            "severity": severity,
            "labels": {"alertname": name, "deployment": "diabetes", "severity": severity,
                       "team": "clinical_safety"},
            "annotations": {"summary": "Accuracy fell 7.5% below the reference",
                            "runbook_url": "docs/runbooks.md#accuracydrop"},
            "value": 7.5,
            "starts_at": T0,
            "ends_at": T0 + timedelta(minutes=30) if state == "resolved" else None,
            "evidence": "/deployments/diabetes/windows/day/1/3",
        }
    )  # fmt: skip


def payload(
    receiver: str = "ops-hook",
    kind: str = "firing",
    alerts: list[NotificationAlert] | None = None,
    group_key: str = '{}:{alertname="AccuracyDrop",deployment="diabetes"}',
) -> NotificationPayload:
    """A group's notification."""
    alerts = alerts if alerts is not None else [alert()]
    resolved = kind == "resolved"
    return NotificationPayload.model_validate(
        {
            "group_key": group_key,
            "receiver": receiver,
            "kind": kind,
            "status": "resolved" if resolved else "firing",
            "group_labels": {"alertname": alerts[0].name if alerts else "x",
                             "deployment": "diabetes"},
            "alerts": [a.model_dump() for a in alerts],
            "created_at": T0,
        }
    )  # fmt: skip


def links(now: datetime = T0, notification_id: str = "n1") -> Links:
    """Links under a public URL, signed with the tests' key."""
    return Links("https://medops.example.org", LINK_KEY, now, notification_id=notification_id)
