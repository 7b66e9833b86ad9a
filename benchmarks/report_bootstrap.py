# ruff: noqa: T201
"""Validation report bootstrap: medops' vectorized metrics vs scikit-learn per resample.

Usage: .venv/bin/python benchmarks/report_bootstrap.py [ROWS] [RESAMPLES] [RUNS]

Both sides compute the same nine metrics (AUROC, AUPRC, accuracy, sensitivity, specificity,
PPV, NPV, F1, Brier) for each bootstrap resample, overall and for six subgroups. scikit-learn is
timed on a fraction of the resamples and scaled up (it is linear in resamples), alternating
with medops in each run; the table gives medians over the runs.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medops.registry.report import compute_report

SKLEARN_SAMPLE = 50


def _data(n: int) -> tuple[np.ndarray, np.ndarray, dict[str, list[str]]]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    scores = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    groups = {
        "sex": [str(v) for v in rng.integers(1, 3, n)],
        "age": [("<40", "40-60", ">=60")[v] for v in rng.integers(0, 3, n)],
    }
    return y, scores, groups


def _sklearn_resample(y: np.ndarray, s: np.ndarray) -> None:
    if len(set(y.tolist())) < 2:
        return
    p = (s >= 0.5).astype(int)
    roc_auc_score(y, s)
    average_precision_score(y, s)
    accuracy_score(y, p)
    recall_score(y, p, zero_division=np.nan)
    recall_score(y, p, pos_label=0, zero_division=np.nan)
    precision_score(y, p, zero_division=np.nan)
    precision_score(y, p, pos_label=0, zero_division=np.nan)
    f1_score(y, p, zero_division=np.nan)
    brier_score_loss(y, s)


def _sklearn_seconds(y: np.ndarray, s: np.ndarray, groups: dict[str, list[str]], b: int) -> float:
    rng = np.random.default_rng(1)
    subsets = [np.arange(len(y))] + [
        np.flatnonzero(np.asarray(labels) == g)
        for labels in groups.values()
        for g in sorted(set(labels))
    ]
    started = time.perf_counter()
    for subset in subsets:
        for _ in range(SKLEARN_SAMPLE):
            idx = rng.choice(subset, size=len(subset))
            _sklearn_resample(y[idx], s[idx])
    return (time.perf_counter() - started) * b / SKLEARN_SAMPLE


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 133
    b = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    y, s, groups = _data(rows)
    ours, theirs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(runs):
            started = time.perf_counter()
            compute_report(y_true=y, scores=s, groups=groups, n_bootstrap=b)
            ours.append(time.perf_counter() - started)
            theirs.append(_sklearn_seconds(y, s, groups, b))
    mine, peer = statistics.median(ours), statistics.median(theirs)
    print(f"rows={rows} resamples={b} runs={runs} (overall + 6 subgroups)")
    print("| implementation | median seconds |")
    print("|---|---|")
    print(f"| medops compute_report (whole report, vectorized) | {mine:.3f} |")
    print(f"| scikit-learn, 9 metric calls per resample (metrics only) | {peer:.1f} |")
    print(f"ratio: {peer / mine:,.0f}x")


if __name__ == "__main__":
    main()
