"""Alert notification methods of the SDK client: run the dispatcher, read the outbox."""

from __future__ import annotations

from medops.alerting.records import DispatchSummary, NotificationOut
from medops.client.shapes import Shape
from medops.client.transport import Transport

_SUMMARY = Shape(DispatchSummary)
_ROWS = Shape(list[NotificationOut])


class NotificationCalls(Transport):
    """Alert notification methods of the SDK client."""

    def dispatch_alerts(self) -> DispatchSummary:
        """Send the queued notifications that are due (what the server does on its own)."""
        return self._call("POST", "/api/v1/alerts/dispatch", _SUMMARY)

    def alert_notifications(
        self, status: str | None = None, receiver: str | None = None, *, limit: int = 100
    ) -> list[NotificationOut]:
        """The outbox's rows, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if receiver is not None:
            params["receiver"] = receiver
        return self._call("GET", "/api/v1/alert-notifications", _ROWS, params=params)
