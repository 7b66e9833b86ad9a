"""Monitoring methods of the SDK client: run the due windows, read results and reports, read
and set a deployment's monitoring configuration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.monitoring.results import WindowDocument, WindowSummary
from medops.monitoring.schemas import MonitoringConfig, MonitoringConfigIn, MonitoringConfigOut

_DOCUMENT = Shape(dict[str, Any])
_WINDOW = Shape(WindowDocument)
_SUMMARIES = Shape(list[WindowSummary])
_CONFIG = Shape(MonitoringConfigOut)


class MonitoringCalls(Transport):
    """Monitoring methods of the SDK client."""

    def run_monitoring(self, window: str = "day") -> dict[str, Any]:
        """Compute every due ``window`` (hour, day, week) of every deployed version."""
        return self._call("POST", "/api/v1/monitoring/run", _DOCUMENT, json={"window": window})

    def monitoring_results(
        self, deployment: str, window: str = "day", *, limit: int = 100
    ) -> list[WindowSummary]:
        """The deployment's computed windows, newest first."""
        params = {"deployment": deployment, "window": window, "limit": limit}
        return self._call("GET", "/api/v1/monitoring/results", _SUMMARIES, params=params)

    def monitoring_report(
        self,
        deployment: str,
        window: str | None = None,
        start: datetime | None = None,
        *,
        version: int | None = None,
        sequence: int | None = None,
    ) -> WindowDocument:
        """One window's full document: the latest computed one of any kind, unless
        ``window``, ``start``, ``version`` or ``sequence`` select another."""
        raw = self._report(deployment, window, start, version, sequence, "application/json")
        return _WINDOW.validate_json(raw)

    def monitoring_report_html(
        self,
        deployment: str,
        window: str | None = None,
        start: datetime | None = None,
        *,
        version: int | None = None,
        sequence: int | None = None,
    ) -> str:
        """The same window as a self-contained HTML page."""
        return self._report(deployment, window, start, version, sequence, "text/html")

    def monitoring_config(self, deployment: str) -> MonitoringConfigOut:
        """The deployment's monitoring configuration (the defaults until one is set)."""
        params = {"deployment": deployment}
        return self._call("GET", "/api/v1/monitoring/config", _CONFIG, params=params)

    def configure_monitoring(
        self, deployment: str, config: MonitoringConfig | Mapping[str, Any]
    ) -> MonitoringConfigOut:
        """Replace the deployment's monitoring configuration (needs monitoring:configure);
        fields left out take their defaults."""
        if isinstance(config, MonitoringConfig):  # a MonitoringConfigOut too: its fields only
            fields = config.model_dump(include=set(MonitoringConfig.model_fields))
        else:
            fields = dict(config)
        body = MonitoringConfigIn.model_validate(fields | {"deployment": deployment})
        return self._call(
            "PUT", "/api/v1/monitoring/config", _CONFIG, json=body.model_dump(mode="json")
        )

    def _report(
        self,
        deployment: str,
        window: str | None,
        start: datetime | None,
        version: int | None,
        sequence: int | None,
        accept: str,
    ) -> str:
        params: dict[str, str | int] = {"deployment": deployment}
        given = {"window": window, "version": version, "sequence": sequence}
        params |= {key: value for key, value in given.items() if value is not None}
        if start is not None:
            params["start"] = start.isoformat()
        raw = self._raw(
            "GET", "/api/v1/monitoring/report", params=params, headers={"accept": accept}
        )
        return raw.decode()
