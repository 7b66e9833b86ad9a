"""Attribution drift: how much each feature's mean contribution to the model's output moved
between the reference (the version's validation data) and a window.

Input drift tests ask whether a feature's distribution changed; attribution drift asks whether
the change matters to this model. A feature's mean contribution is the model's weight on it
times how far its values sit from the background (exactly so for a linear model; TreeSHAP's
means behave alike), so a shift in a feature the model ignores moves nothing, and a shift in
one it leans on moves the output in proportion.

The statistic, per feature ``j`` (contributions on the explanation's scale, log-odds for a
logistic model)::

    change_j = mean_window(phi_j) - mean_reference(phi_j)
    relative_j = change_j / sum_k mean_reference(|phi_k|)

``relative_j`` is the shift of the model's output caused by feature ``j``, as a share of the
total contribution the model's features make on a typical reference row; a feature is judged
drifted when ``|relative_j| > threshold`` (default ``THRESHOLD`` = 0.10: the feature alone moved
the average output by a tenth of a typical explanation). The mean absolute contributions of
both sides are reported too. Windows with fewer than ``min_samples`` explained rows report
``insufficient-data`` and judge nothing. Pure: no DB, no model; ``service.py`` explains the
rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

THRESHOLD = 0.10
WINDOW_ROWS = 5000  # the most rows of a window explained (a fixed-seed sample)


def attribution_drift(
    features: Sequence[str],
    reference: npt.NDArray[np.float64],
    window: npt.NDArray[np.float64],
    *,
    method: str,
    scale: str,
    input_drifted: Sequence[str] = (),
    threshold: float = THRESHOLD,
    min_samples: int = 30,
) -> dict[str, Any]:
    """The window document's ``attribution`` part from the contributions of the reference
    rows and of the window's rows (each ``(n_rows, n_features)``)."""
    ref = np.asarray(reference, dtype=np.float64)
    win = np.asarray(window, dtype=np.float64)
    ref_mean = ref.mean(axis=0)
    ref_abs = np.abs(ref).mean(axis=0)
    total = float(ref_abs.sum())
    enough = len(win) >= min_samples and len(ref) > 0
    win_mean = win.mean(axis=0) if len(win) else np.full(len(features), np.nan)
    win_abs = np.abs(win).mean(axis=0) if len(win) else np.full(len(features), np.nan)
    drifted_inputs = set(input_drifted)
    rows: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(features):
        change = float(win_mean[j] - ref_mean[j]) if enough else None
        relative = change / total if change is not None and total > 0 else None
        rows[name] = {
            "reference_mean": float(ref_mean[j]),
            "reference_mean_abs": float(ref_abs[j]),
            "window_mean": float(win_mean[j]) if enough else None,
            "window_mean_abs": float(win_abs[j]) if enough else None,
            "change": change,
            "relative_change": relative,
            "drifted": relative is not None and abs(relative) > threshold,
            "input_drifted": name in drifted_inputs,
        }
    return {
        "status": "ok" if enough else "insufficient-data",
        "method": method,
        "scale": scale,
        "rows": len(win),
        "reference_rows": len(ref),
        "threshold": threshold,
        "features": rows,
        "drifted_features": [n for n, r in rows.items() if r["drifted"]],
    }


def summary_lines(part: Mapping[str, Any]) -> list[str]:
    """The alert line of a window's attribution part (none when nothing drifted)."""
    drifted = list(part.get("drifted_features") or ())
    if not drifted:
        return []
    moves = ", ".join(
        f"{name} {part['features'][name]['relative_change']:+.0%}" for name in drifted
    )
    return [f"attribution drift: the model's output moved through {moves}"]
