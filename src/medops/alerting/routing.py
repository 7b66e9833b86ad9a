"""The routing tree, as Alertmanager walks it. Pure.

An alert enters at the root; at each node the first child whose matchers all hold takes it
(and keeps walking), unless a matched child says ``continue``, in which case later siblings
are tried too. A node no child takes is where the alert lands. Receivers, grouping and timers
are inherited from the parent when a node leaves them unset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from medops.alerting.schemas import AlertingConfig, Matcher, Route


@dataclass(frozen=True)
class Leaf:
    """Where an alert landed, with its settings resolved along the path."""

    path: str  # "0", "0.1", ...: which node of the tree
    receiver: str | None
    group_by: tuple[str, ...]
    group_wait_seconds: int
    group_interval_seconds: int
    repeat_interval_seconds: int
    escalation: str | None

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The alert's values of this route's ``group_by`` labels (``...``: all of them)."""
        if "..." in self.group_by:
            return dict(labels)
        return {name: labels.get(name, "") for name in self.group_by}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """The group's name: its route and its grouping labels' values."""
        grouped = sorted(self.group_labels(labels).items())
        text = self.path + "|" + ",".join(f"{k}={v}" for k, v in grouped)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return f"{self.receiver or '-'}:{self.path}:{digest}"


def matches(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher holds for ``labels``."""
    plain = dict(labels)
    return all(matcher.matches(plain) for matcher in matchers)


def route(config: AlertingConfig, labels: Mapping[str, str]) -> list[Leaf]:
    """The nodes an alert with ``labels`` lands on (one, unless ``continue`` says more)."""
    root = Leaf(
        path="0",
        receiver=config.route.receiver,
        group_by=tuple(config.route.group_by or config.group_by),
        group_wait_seconds=_or(config.route.group_wait_seconds, config.group_wait_seconds),
        group_interval_seconds=_or(
            config.route.group_interval_seconds, config.group_interval_seconds
        ),
        repeat_interval_seconds=_or(
            config.route.repeat_interval_seconds, config.repeat_interval_seconds
        ),
        escalation=config.route.escalation,
    )
    return _walk(config.route, root, labels)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _inherit(node: Route, parent: Leaf, path: str) -> Leaf:
    return Leaf(
        path=path,
        receiver=node.receiver or parent.receiver,
        group_by=tuple(node.group_by) if node.group_by is not None else parent.group_by,
        group_wait_seconds=_or(node.group_wait_seconds, parent.group_wait_seconds),
        group_interval_seconds=_or(node.group_interval_seconds, parent.group_interval_seconds),
        repeat_interval_seconds=_or(node.repeat_interval_seconds, parent.repeat_interval_seconds),
        escalation=node.escalation or parent.escalation,
    )


def _walk(node: Route, here: Leaf, labels: Mapping[str, str]) -> list[Leaf]:
    landed: list[Leaf] = []
    for index, child in enumerate(node.routes):
        if not matches(child.matchers, labels):
            continue
        landed += _walk(child, _inherit(child, here, f"{here.path}.{index}"), labels)
        if not child.continue_matching:
            break
    return landed or [here]
