"""SLO and cost methods of the SDK client: status, objectives, the month's SLA report and the
cost report."""

from __future__ import annotations

from typing import Any

from medops.alerting.slo_schemas import (
    ObjectivesOut,
    SlaReport,
    SloConfig,
    SloConfigOut,
    SloStatus,
)
from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.serving.cost_schemas import CostReport

_STATUSES = Shape(list[SloStatus])
_STATUS = Shape(SloStatus)
_OBJECTIVES = Shape(ObjectivesOut)
_CONFIG = Shape(SloConfigOut)
_REPORT = Shape(SlaReport)
_COST = Shape(CostReport)


class SloCalls(Transport):
    """SLO and cost methods of the SDK client."""

    def slo_statuses(self) -> list[SloStatus]:
        """Every deployment's objectives as they stand."""
        return self._call("GET", "/api/v1/slo", _STATUSES)

    def slo_status(self, deployment: str) -> SloStatus:
        """One deployment's objectives as they stand."""
        return self._call("GET", f"/api/v1/slo/{deployment}", _STATUS)

    def slo_objectives(self, scope: str) -> ObjectivesOut:
        """The objectives in force for a deployment (or ``*``) and the stored versions."""
        return self._call("GET", f"/api/v1/slo/{scope}/objectives", _OBJECTIVES)

    def set_slo_objectives(self, scope: str, config: SloConfig) -> SloConfigOut:
        """Store a new version of a deployment's (or ``*``'s) objectives (alerts:configure)."""
        body = SloConfig.model_validate(config.model_dump(include=set(SloConfig.model_fields)))
        return self._call(
            "PUT", f"/api/v1/slo/{scope}/objectives", _CONFIG, json=body.model_dump(mode="json")
        )

    def slo_report(self, deployment: str, month: str | None = None) -> SlaReport:
        """The month's SLA report (default: the current month so far)."""
        return self._call(
            "GET", f"/api/v1/slo/{deployment}/report", _REPORT, params=_month(month, "json")
        )

    def slo_report_html(self, deployment: str, month: str | None = None) -> str:
        """The same report as a self-contained HTML page."""
        raw = self._raw("GET", f"/api/v1/slo/{deployment}/report", params=_month(month, "html"))
        return raw.decode()

    def cost_report(self, deployment: str | None = None, days: int = 30) -> CostReport:
        """Cost per 1,000 predictions, right-sizing hints and INT8-against-parent comparisons."""
        params: dict[str, Any] = {"days": days}
        if deployment is not None:
            params["deployment"] = deployment
        return self._call("GET", "/api/v1/cost", _COST, params=params)


def _month(month: str | None, fmt: str) -> dict[str, str]:
    params = {"format": fmt}
    if month is not None:
        params["month"] = month
    return params
