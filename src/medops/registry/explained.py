"""A model version's explanation background and the global view of its explanations.

The background of every explanation of a version (what "no information" means: the base
value, and what each feature is compared with) is a fixed-seed sample of ``BACKGROUND_ROWS``
rows of the data its latest validation report was computed on, so every replica and restart
computes the same values (serving, reports and monitoring alike). ``global_explanations`` is
the validation report's ``explanations`` part: per feature, the mean and mean absolute
contribution over the validation rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from medops.core.explain import Attributions
    from medops.core.signature import ModelSignature

BACKGROUND_ROWS = 100
BACKGROUND_SEED = 0


def sample_rows(
    columns: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]], limit: int = BACKGROUND_ROWS
) -> list[int]:
    """Which rows of ``columns`` make the background: all of them up to ``limit``, else
    ``limit`` drawn without replacement with a fixed seed (in their original order)."""
    n = len(next(iter(columns.values()))) if columns else 0
    if n <= limit:
        return list(range(n))
    rng = np.random.default_rng(BACKGROUND_SEED)
    return sorted(int(i) for i in rng.choice(n, size=limit, replace=False))


def as_arrays(
    columns: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]], rows: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Columns (lists as validated) as the NumPy arrays the explainer reads."""
    out: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        picked = values if rows is None else [values[i] for i in rows]
        out[name] = np.asarray(picked)
    return out


def mean_contributions(attributions: Attributions) -> dict[str, dict[str, float]]:
    """Per feature over all rows: the mean contribution and the mean absolute contribution
    (the global view the validation report, model card and monitoring show)."""
    values = np.asarray(attributions.values, dtype=np.float64)
    means = values.mean(axis=0) if len(values) else np.zeros(len(attributions.features))
    magnitudes = np.abs(values).mean(axis=0) if len(values) else means
    return {
        f: {"mean": float(m), "mean_abs": float(a)}
        for f, m, a in zip(attributions.features, means, magnitudes, strict=True)
    }


REPORT_ROWS = 2000  # the most validation rows a report explains (a fixed-seed sample)
APPROX_ROWS = 100  # the same for an approximate method


def global_explanations(
    model: bytes,
    signature: ModelSignature,
    columns: Mapping[str, Sequence[Any]],
    *,
    background_rows: int = BACKGROUND_ROWS,
) -> dict[str, Any]:
    """The validation report's ``explanations`` part: per feature the mean and mean absolute
    contribution over the validation rows (up to ``REPORT_ROWS``; ``APPROX_ROWS`` for an
    approximate method), against the background
    serving uses (the same sample of the same rows). A model that cannot be explained gets
    the reason instead; the report is still written."""
    from medops.core.explain import explainer_for

    background = as_arrays(columns, sample_rows(columns, background_rows))
    empty: dict[str, Any] = {
        "background_rows": len(next(iter(background.values()))) if background else 0,
        "exact": None,
        "features": {},
        "method": None,
        "rows": 0,
        "scale": None,
        "unavailable": None,
    }
    try:
        explainer = explainer_for(
            model,
            signature,
            background=background,
            class_index=signature.outputs.positive_index,
        )
        # An approximate method costs tens of milliseconds a row: fewer rows for it.
        explained = sample_rows(columns, REPORT_ROWS if explainer.exact else APPROX_ROWS)
        attributions = explainer.explain(as_arrays(columns, explained))
    except Exception as exc:  # noqa: BLE001 - recorded in the report, which is still written
        return empty | {"unavailable": f"{type(exc).__name__}: {exc}"[:500]}
    return empty | {
        "exact": bool(attributions.exact),
        "features": mean_contributions(attributions),
        "method": attributions.method,
        "rows": len(explained),
        "scale": attributions.scale,
    }
