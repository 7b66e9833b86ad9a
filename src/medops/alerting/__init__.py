"""Alerting: rules over monitoring windows and serving figures, alert state, silences,
inhibition, routing to teams with escalation, and durable notifications to receivers."""
