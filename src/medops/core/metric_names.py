"""The headline metrics of a validation report, in the order reports and cards show them.

Plain data (no numpy), so the request schemas and the CLI can name them; ``core/metrics.py``
computes them."""

from __future__ import annotations

REPORT_METRICS: tuple[str, ...] = (
    "auroc",
    "auprc",
    "accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "brier",
    "ece",
)
