"""A window's numbers for charts over time: a compact trend stored beside its document.

A window's document is 40-70 KB of JSON; the console charts a deployment's windows over 90
days of hours (2,160 windows), and parsing that many documents takes seconds. So when a window
is stored, the numbers a chart needs are taken from it once (``trend_of``) and stored in two
columns of its row: ``trend_keys``, the numbers' names (each a tuple of strings, e.g.
``("feature", "age", "psi", "limit")``) as a JSON prefix tree (``encode_keys``), and
``trend``, the numbers as little-endian float32s in that order (NaN where the document has
none), the style of the prediction log's packed features (core/packed.py). Float32 keeps
about seven significant digits, more than a chart or its table shows (a p-value under
1e-38 reads as 0); the window's document keeps every number in full. It halves what a read
of 2,160 windows moves (on PostgreSQL 71 -> 47 ms, benchmarks/console_pages.py). The names are the
same across a series' windows (they change only with the features, the tests run, the groups
seen), so a reader parses each distinct value once and unpacks a whole series as one matrix
(``assemble``).

What a drift test charts: its p-value against alpha for tests judged by p-value (ks, chi2),
otherwise its statistic against the *effective* threshold (``parameters.effective_threshold``,
which lifts PSI, KL and Jensen-Shannon above their noise floor in small windows), else its
``threshold`` (None for a test only reported: NaN).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from medops.monitoring.drift_tests import BY_NAME
from medops.monitoring.results import DriftTestResult, MeasuredMetric, WindowResult, as_float

Key = tuple[str, ...]
FloatArray = npt.NDArray[np.float64]
NAN: Final = float("nan")
STORED: Final = "<f4"  # little-endian float32


def _number(value: object) -> float:
    if value is None or isinstance(value, bool | dict | list | tuple):
        return NAN
    try:
        return float(value)  # type: ignore[arg-type]  # int, float or "inf"/"nan"
    except (TypeError, ValueError):
        return NAN


def charted_value(test: DriftTestResult) -> float:
    """The number a drift test is charted by: its p-value when judged by p-value."""
    known = BY_NAME.get(test.test)
    if known is not None and known.p_value:
        return _number(test.p_value)
    return _number(as_float(test.statistic))


def charted_limit(test: DriftTestResult) -> float:
    """The limit it is judged against: the effective threshold, else the threshold."""
    effective = test.parameters.get("effective_threshold")
    if effective is not None:
        return _number(effective)
    return _number(as_float(test.threshold))


def is_p_value(test_name: str) -> bool:
    """Whether the test is charted by its p-value (against alpha)."""
    known = BY_NAME.get(test_name)
    return bool(known is not None and known.p_value)


def _tests(out: list[tuple[Key, float]], group: str, tests: Iterable[DriftTestResult]) -> None:
    for test in tests:
        base = (group, test.feature, test.test)
        out.append(((*base, "value"), charted_value(test)))
        out.append(((*base, "limit"), charted_limit(test)))
        out.append(((*base, "drifted"), 1.0 if test.drifted else 0.0))


def _measured(out: list[tuple[Key, float]], base: Key, metric: MeasuredMetric) -> None:
    out.append(((*base, "value"), _number(metric.value)))
    out.append(((*base, "low"), _number(metric.ci_low)))
    out.append(((*base, "high"), _number(metric.ci_high)))


def numbers_of(result: WindowResult) -> list[tuple[Key, float]]:
    """Every number the console charts of one window, named, in a stable order."""
    out: list[tuple[Key, float]] = []
    for name in sorted(result.features):
        _tests(out, "feature", result.features[name] or ())
    out.append((("dataset", "share"), _number(result.dataset.share)))
    out.append((("dataset", "drifted"), 1.0 if result.dataset.drifted else 0.0))
    multi = result.multivariate
    band = tuple(multi.threshold or ())
    out.append((("multivariate", "value"), _number(as_float(multi.statistic))))
    out.append((("multivariate", "low"), _number(as_float(band[0])) if band else NAN))
    out.append((("multivariate", "high"), _number(as_float(band[-1])) if band else NAN))
    out.append((("multivariate", "drifted"), 1.0 if multi.drifted else 0.0))
    _tests(out, "prediction", result.prediction)
    _tests(out, "labels", result.labels or ())
    performance = result.performance
    out.append((("performance", "n"), float(performance.n)))
    for metric in sorted(performance.metrics):
        _measured(out, ("performance", metric), performance.metrics[metric])
    _measured(out, ("calibration", "ece"), performance.calibration.ece)
    if result.estimated is not None:
        for metric in sorted(result.estimated.metrics):
            estimate = result.estimated.metrics[metric]
            out.append((("estimated", metric, "value"), _number(estimate.value)))
            out.append((("estimated", metric, "lower"), _number(estimate.lower)))
            out.append((("estimated", metric, "upper"), _number(estimate.upper)))
    if result.fairness is not None:
        fairness = result.fairness
        for band_name, limits in (("warn", fairness.warn), ("critical", fairness.critical)):
            if limits:
                out.append((("fairness-band", band_name, "low"), _number(limits[0])))
                out.append((("fairness-band", band_name, "high"), _number(limits[-1])))
        for attribute in fairness.attributes:
            for group in attribute.groups:
                for metric, measured in sorted((group.metrics or {}).items()):
                    key = ("fairness", attribute.attribute, group.group, metric)
                    out.append((key, _number(measured.ratio)))
    return out


Tree = list["str | list[Any]"]


def encode_keys(keys: Sequence[Key]) -> str:
    """The names as stored: a JSON prefix tree, in order (a leaf is a string, a branch
    ``[prefix, children]``), a third the size of the flat list of names, which matters when a
    reader fetches it with each of 2,160 windows."""

    def tree(names: Sequence[Key]) -> Tree:
        out: Tree = []
        for name in names:
            if len(name) == 1:
                out.append(name[0])
            elif out and isinstance(out[-1], list) and out[-1][0] == name[0]:
                out[-1][1].append(name[1:])
            else:
                out.append([name[0], [name[1:]]])
        return [n if isinstance(n, str) else [n[0], tree(n[1])] for n in out]

    return json.dumps(tree(keys), separators=(",", ":"))


def decode_keys(stored: str) -> list[Key]:
    """The names, in order, from ``encode_keys``' form."""

    def walk(nodes: Tree, prefix: Key) -> Iterable[Key]:
        for node in nodes:
            if isinstance(node, str):
                yield (*prefix, node)
            else:
                yield from walk(node[1], (*prefix, node[0]))

    return list(walk(json.loads(stored), ()))


def trend_of(result: WindowResult) -> tuple[str, bytes]:
    """A window's stored trend: its names (``encode_keys``) and its numbers packed as
    little-endian float32s in that order."""
    numbers = numbers_of(result)
    values = np.array([v for _, v in numbers], dtype=STORED)
    return encode_keys([k for k, _ in numbers]), values.tobytes()


@dataclass(frozen=True)
class TrendRow:
    """One stored window as the trend reader selects it (no document unless it has no
    trend, written by a server older than migration 0014)."""

    sequence: int
    start: datetime
    end: datetime
    verdict: str
    status: str
    drifted: bool
    rows: int
    labelled: int
    trend_keys: str | None
    trend: bytes | None


@dataclass(frozen=True)
class Trend:
    """A series' windows (oldest first) with every charted number as one array per name."""

    deployment: str
    window_kind: str
    version: int
    sequences: npt.NDArray[np.int64]
    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]
    verdicts: tuple[str, ...]
    statuses: tuple[str, ...]
    drifted: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]
    labelled: npt.NDArray[np.int64]
    values: dict[Key, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.starts)

    def get(self, *key: str) -> FloatArray:
        """The numbers named ``key`` per window (NaN where a window has none)."""
        found = self.values.get(key)
        return found if found is not None else np.full(len(self), np.nan)

    def keys_of(self, group: str) -> list[Key]:
        """The names starting with ``group``, in their stored order."""
        return [k for k in self.values if k[0] == group]


def assemble(deployment: str, window_kind: str, version: int, rows: Sequence[TrendRow]) -> Trend:
    """The series' trend from its stored rows (each row's ``trend`` present)."""
    n = len(rows)
    groups: dict[str, list[int]] = {}
    last: str | None = None
    group: list[int] = []
    for index, row in enumerate(rows):
        assert row.trend_keys is not None
        if row.trend_keys != last:  # a comparison, not a hash of ~4 KB per window
            last = row.trend_keys
            group = groups.setdefault(last, [])
        group.append(index)
    values: dict[Key, FloatArray] = {}
    for keys_json, indexes in groups.items():
        keys = decode_keys(keys_json)  # once per distinct list
        blob = b"".join([rows[i].trend or b"" for i in indexes])
        # One transposing copy: each name's numbers become one contiguous row.
        columns = (
            np.frombuffer(blob, dtype="<f4").reshape(len(indexes), len(keys)).T.astype(np.float64)
        )
        if len(indexes) == n:
            values.update(zip(keys, columns, strict=True))
            continue
        where = np.asarray(indexes, dtype=np.int64)
        for key, column in zip(keys, columns, strict=True):
            target = values.get(key)
            if target is None:
                target = values[key] = np.full(n, np.nan)
            target[where] = column
    return Trend(
        deployment=deployment,
        window_kind=window_kind,
        version=version,
        sequences=np.array([r.sequence for r in rows], dtype=np.int64),
        starts=tuple(r.start for r in rows),
        ends=tuple(r.end for r in rows),
        verdicts=tuple(r.verdict for r in rows),
        statuses=tuple(r.status for r in rows),
        drifted=np.array([r.drifted for r in rows], dtype=np.bool_),
        rows=np.array([r.rows for r in rows], dtype=np.int64),
        labelled=np.array([r.labelled for r in rows], dtype=np.int64),
        values=values,
    )
