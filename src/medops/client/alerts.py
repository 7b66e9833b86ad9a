"""Alerting methods of the SDK client: alerts (list, show, acknowledge, resolve, history),
silences, rule sets, the routing configuration, and running an evaluation."""

from __future__ import annotations

from datetime import datetime

from medops.alerting.records import (
    AlertOut,
    ConfigOut,
    EvaluationSummary,
    RuleSetOut,
    SilenceIn,
    SilenceOut,
)
from medops.alerting.schemas import AlertingConfig, RuleSet
from medops.client.shapes import Shape
from medops.client.transport import Transport

_ALERT = Shape(AlertOut)
_ALERTS = Shape(list[AlertOut])
_SILENCE = Shape(SilenceOut)
_SILENCES = Shape(list[SilenceOut])
_RULES = Shape(RuleSetOut)
_CONFIG = Shape(ConfigOut)
_SUMMARY = Shape(EvaluationSummary)


class AlertCalls(Transport):
    """Alerting methods of the SDK client."""

    def alerts(
        self,
        *,
        state: str | None = None,
        deployment: str | None = None,
        include_resolved: bool = False,
        limit: int = 100,
    ) -> list[AlertOut]:
        """Alerts, newest first: the open ones unless ``state`` or ``include_resolved``."""
        params: dict[str, str | int | bool] = {"limit": limit}
        if include_resolved:
            params["include_resolved"] = True
        if state is not None:
            params["state"] = state
        if deployment is not None:
            params["deployment"] = deployment
        return self._call("GET", "/api/v1/alerts", _ALERTS, params=params)

    def alert(self, alert_id: str) -> AlertOut:
        """One alert."""
        return self._call("GET", f"/api/v1/alerts/{alert_id}", _ALERT)

    def acknowledge_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        """Take a firing alert (escalation stops)."""
        path = f"/api/v1/alerts/{alert_id}/acknowledge"
        return self._call("POST", path, _ALERT, json={"note": note})

    def resolve_alert(self, alert_id: str, note: str | None = None) -> AlertOut:
        """End an alert by hand."""
        return self._call("POST", f"/api/v1/alerts/{alert_id}/resolve", _ALERT, json={"note": note})

    def alert_history(self, deployment: str, start: datetime, end: datetime) -> list[AlertOut]:
        """The deployment's alerts that fired in [start, end)."""
        params = {"deployment": deployment, "start": start.isoformat(), "end": end.isoformat()}
        return self._call("GET", "/api/v1/alerts/history", _ALERTS, params=params)

    def silences(self, *, everything: bool = False) -> list[SilenceOut]:
        """Silences not over yet (all with ``everything``)."""
        params = {"everything": True} if everything else {}
        return self._call("GET", "/api/v1/alerts/silences", _SILENCES, params=params)

    def add_silence(self, silence: SilenceIn) -> SilenceOut:
        """Create a silence."""
        body = silence.model_dump(mode="json", exclude_none=True)
        return self._call("POST", "/api/v1/alerts/silences", _SILENCE, json=body)

    def expire_silence(self, silence_id: str) -> SilenceOut:
        """End a silence now."""
        path = f"/api/v1/alerts/silences/{silence_id}/expire"
        return self._call("POST", path, _SILENCE, json={})

    def alert_rules(self, scope: str = "*") -> RuleSetOut:
        """A scope's rule set (``*`` or a deployment)."""
        return self._call("GET", "/api/v1/alerts/rules", _RULES, params={"scope": scope})

    def set_alert_rules(self, rule_set: RuleSet) -> RuleSetOut:
        """Store a new version of a scope's rule set."""
        body = rule_set.model_dump(mode="json")
        return self._call("PUT", "/api/v1/alerts/rules", _RULES, json=body)

    def alert_config(self) -> ConfigOut:
        """The routing configuration in force."""
        return self._call("GET", "/api/v1/alerts/config", _CONFIG)

    def set_alert_config(self, config: AlertingConfig) -> ConfigOut:
        """Store a new version of the routing configuration."""
        body = config.model_dump(mode="json", by_alias=True)
        return self._call("PUT", "/api/v1/alerts/config", _CONFIG, json=body)

    def evaluate_alerts(self) -> EvaluationSummary:
        """Run one evaluation now."""
        return self._call("POST", "/api/v1/alerts/evaluate", _SUMMARY, json={})
