"""Prediction load through the servers: client threads post one record at a time, round-robin
over the servers, and record every acknowledged prediction (its id and when it was answered)
and every failure."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx

REQUEST_TIMEOUT = 5.0
RETRY_PAUSE = 0.05  # after a failed request: the load keeps knocking, not hammering


@dataclass(frozen=True)
class Ack:
    """A prediction the server answered 200 for: its id, and the monotonic times its request
    was sent and answered."""

    id: str
    sent: float
    at: float


@dataclass
class Load:
    """Client threads posting predictions until stopped."""

    urls: list[str]
    deployment: str
    token: str
    records: list[dict[str, float]]
    clients: int = 4
    acks: list[Ack] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT * 3)

    def acknowledged(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def first_ack_after(self, moment: float) -> Ack | None:
        """The first prediction acknowledged for a request sent after ``moment``."""
        with self._lock:
            later = [a for a in self.acks if a.sent > moment]
        return min(later, key=lambda a: a.at) if later else None

    def _client(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        servers = itertools.cycle(self.urls[n % len(self.urls) :] + self.urls[: n % len(self.urls)])
        records = itertools.cycle(self.records[n:] + self.records[:n])
        with httpx.Client(headers=headers, timeout=REQUEST_TIMEOUT) as http:
            while not self._stop.is_set():
                url = next(servers)
                path = f"{url}/api/v1/deployments/{self.deployment}/predict"
                sent = time.monotonic()
                try:
                    answer = http.post(path, json={"features": next(records)})
                except httpx.HTTPError:
                    answer = None
                now = time.monotonic()
                if answer is not None and answer.status_code == 200:
                    ids = [p["id"] for p in answer.json()["predictions"]]
                    with self._lock:
                        self.acks.extend(Ack(id=i, sent=sent, at=now) for i in ids)
                    continue
                with self._lock:
                    self.failures.append(now)
                time.sleep(RETRY_PAUSE)
