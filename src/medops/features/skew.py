"""Training-serving skew, two ways.

*Served against trained* (:func:`served_skew`): the values a deployment's model actually saw
(the prediction log, which for a deployment bound to feature views holds the looked-up and
computed inputs) against the training set's distribution, per feature, with monitoring's drift
tests (``monitoring.drift``: KS, Wasserstein, PSI, KL, Jensen-Shannon, missing rate, with their
default thresholds). A shifted feature here, but not in the training set's own validation data,
points at a pipeline difference rather than at the population.

*Online against offline* (:func:`online_offline`): for sampled entities of a view, the online
store's value against what the offline store's point-in-time join gives for the same entity at
the same time (the check's time). They differ when materialization lags, failed, or when the
two sides resolve ties or corrections differently: the check is the guard that they do not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from medops.features.offline import DatasetFiles, point_in_time_join, read_source
from medops.features.online.base import OnlineStore, entity_key
from medops.features.online.schemas import (
    ServedFeatureSkew,
    SkewCheckOut,
    SkewFeature,
)
from medops.features.schemas import FeatureRef, FeatureRepo, FeatureView

TOLERANCE = 1e-9  # values are compared exactly but for float round-trips through JSON


def served_skew(
    training: dict[str, list[float | None]], served: dict[str, list[float | None]]
) -> list[ServedFeatureSkew]:
    """Monitoring's numeric drift tests of each served feature against its training values."""
    # monitoring/ reaches serving/, which imports features/: imported on use.
    from medops.monitoring.drift import NumericReference, numeric_drift

    out: list[ServedFeatureSkew] = []
    for feature in sorted(training):
        ref_values = np.array(
            [np.nan if v is None else v for v in training[feature]], dtype=np.float64
        )
        cur_values = np.array(
            [np.nan if v is None else v for v in served.get(feature, [])], dtype=np.float64
        )
        results = numeric_drift(NumericReference.fit(ref_values), cur_values, feature=feature)
        out.append(
            ServedFeatureSkew(
                feature=feature,
                training_rows=len(ref_values),
                served_rows=len(cur_values),
                drifted=any(r.drifted for r in results),
                tests=tuple(r.to_dict() for r in results),
            )
        )
    return out


def served_values(rows: Sequence[str], features: Sequence[str]) -> dict[str, list[float | None]]:
    """The logged inputs (JSON per prediction) as one column per feature (non-numbers: None)."""
    columns: dict[str, list[float | None]] = {f: [] for f in features}
    for text in rows:
        record = json.loads(text)
        for f in features:
            value = record.get(f)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            columns[f].append(float(value) if ok else None)
    return columns


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float | int) and isinstance(b, float | int):
        return abs(float(a) - float(b)) <= TOLERANCE * max(1.0, abs(float(a)))
    return bool(a == b)


def online_offline(
    repo: FeatureRepo,
    view: FeatureView,
    store: OnlineStore,
    at: datetime,
    *,
    sample: int,
    seed: int = 0,
    datasets: DatasetFiles | None = None,
) -> SkewCheckOut:
    """Compare, for up to ``sample`` entities of ``view`` drawn at random (``seed``), the
    online store's fresh value of each feature with the offline join's value at ``at``."""
    keys = [k.name for k in repo.view_keys(view)]
    entities = read_source(view, keys, datasets).unique(maintain_order=True)
    if entities.height > sample:
        entities = entities.sample(n=sample, seed=seed)
    at_naive = at.astimezone(UTC).replace(tzinfo=None)
    frame = entities.with_columns(pl.lit(at_naive, dtype=pl.Datetime("us")).alias("__at"))
    refs = [FeatureRef(view=view.name, feature=f.name) for f in view.features]
    offline, _ = point_in_time_join(repo, frame, refs, event_time="__at", datasets=datasets)
    stored = store.read(view.name, [entity_key(r) for r in entities.iter_rows()])
    counts = {f.name: [0, 0, 0, 0] for f in view.features}  # compared, equal, on-only, off-only
    worst: dict[str, float | None] = {f.name: None for f in view.features}
    for i, row in enumerate(stored):
        fresh = (
            row is not None and row.event <= at and (view.ttl is None or at - row.event <= view.ttl)
        )
        for f in view.features:
            online = row.values.get(f.name) if fresh and row is not None else None
            off = offline[f.name][i]
            c = counts[f.name]
            c[0] += 1
            if _same(online, off):
                c[1] += 1
            elif off is None:
                c[2] += 1
            elif online is None:
                c[3] += 1
            if isinstance(online, int | float) and isinstance(off, int | float):
                gap = abs(float(online) - float(off))
                held = worst[f.name]
                worst[f.name] = gap if held is None else max(held, gap)
    features = tuple(
        SkewFeature(
            feature=name,
            compared=c[0],
            equal=c[1],
            online_only=c[2],
            offline_only=c[3],
            max_abs_difference=worst[name],
        )
        for name, c in counts.items()
    )
    return SkewCheckOut(
        view=view.name,
        sampled=entities.height,
        at=at,
        features=features,
        consistent=all(f.equal == f.compared for f in features),
    )
