"""Which thresholds a monitoring run applies to a version: its deployment's configuration
(``schemas.MonitoringConfig``) laid over the version's reference profile.

- ``fixed`` mode: drift.py's documented defaults, with the configured overrides.
- ``learned`` mode: the profile's learned thresholds (``learned.py``) where it has them, the
  defaults elsewhere, and the overrides above both. A learned value replaces only a threshold
  the defaults judge: KL, reported only by default, stays reported only (its learned value is
  in the profile, to be set as an override by whoever wants KL judged).
- An override for a feature the version does not have, or for a test of the other kind (``ks``
  on a category feature), is not applied and is listed as ignored.

``record`` is what the window document keeps (``configuration``): the mode, correction,
minimum rows, and every threshold that differs from the defaults with where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medops.monitoring.drift import NumericReference
from medops.monitoring.drift_tests import DEFAULTS, AdjustMethod
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.schemas import MonitoringConfig


@dataclass(frozen=True)
class Applied:
    """The arguments of ``evaluate_window`` for one version, and their record."""

    thresholds: Mapping[str, Mapping[str, float | None]]
    correction: AdjustMethod | None
    min_samples: int
    record: Mapping[str, Any]


def applied(profile: ReferenceProfile, config: MonitoringConfig) -> Applied:
    """The thresholds, correction and minimum rows to judge ``profile``'s windows with."""
    thresholds: dict[str, dict[str, float | None]] = {}
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    kinds = {
        name: "numeric" if isinstance(ref, NumericReference) else "categorical"
        for name, ref in profile.features.items()
    }
    if config.thresholds_mode == "learned":
        for feature, tests in profile.learned.items():
            for test, value in tests.items():
                if feature in kinds and DEFAULTS[kinds[feature]].get(test) is not None:
                    thresholds.setdefault(feature, {})[test] = value
                    sources.setdefault(feature, {})[test] = {"value": value, "source": "learned"}
    ignored = []
    for feature, tests in config.thresholds.items():
        for test, value in tests.items():
            if feature not in kinds or test not in DEFAULTS[kinds[feature]]:
                ignored.append(f"{feature}.{test}")
                continue
            thresholds.setdefault(feature, {})[test] = value
            sources.setdefault(feature, {})[test] = {"value": value, "source": "override"}
    record = {
        "thresholds_mode": config.thresholds_mode,
        "correction": config.correction,
        "min_samples": config.min_samples,
        "thresholds": sources,
        "ignored_overrides": ignored,
    }
    return Applied(thresholds, config.adjust_method, config.min_samples, record)
