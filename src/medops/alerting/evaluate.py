"""Rules over observations: which alert conditions hold now. Pure (no database, no clock).

An alert's identity is its fingerprint: SHA-256 of its sorted labels (``alertname``,
``deployment``, the rule's labels, the observation's labels, ``severity`` and ``team``), so
the same condition seen again (by another replica, or at the next tick) is the same alert.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from medops.alerting.schemas import AlertRule, Comparison, Observation
from medops.core.canonical import canonical_json

_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Condition:
    """A rule that holds for one observation now."""

    rule: AlertRule
    observation: Observation
    labels: dict[str, str]
    fingerprint: str


def fingerprint(labels: Mapping[str, str]) -> str:
    """SHA-256 hex of the labels, sorted."""
    return hashlib.sha256(canonical_json(dict(sorted(labels.items()))).encode()).hexdigest()


def labels_of(rule: AlertRule, observation: Observation) -> dict[str, str]:
    """An alert's labels: the rule's, the observation's, and the identifying ones."""
    labels = {**rule.labels, **observation.labels}
    labels.update(alertname=rule.name, severity=rule.severity, team=rule.team)
    if observation.deployment is not None:
        labels["deployment"] = observation.deployment
    return labels


def holds(rule: AlertRule, value: float) -> bool:
    """Whether ``value`` satisfies the rule's comparison."""
    return _COMPARE[rule.op](value, rule.threshold)


def conditions(
    rules_of: Callable[[str | None], Sequence[AlertRule]], observations: Sequence[Observation]
) -> list[Condition]:
    """Each (rule, observation) whose comparison holds, ``rules_of(deployment)`` giving the
    rules in force for a deployment (None: the installation's own signals)."""
    found: dict[str, Condition] = {}
    for observation in observations:
        for rule in rules_of(observation.deployment):
            if not rule.enabled or rule.signal != observation.signal:
                continue
            if not holds(rule, observation.value):
                continue
            labels = labels_of(rule, observation)
            key = fingerprint(labels)
            found[key] = Condition(rule, observation, labels, key)
    return list(found.values())
