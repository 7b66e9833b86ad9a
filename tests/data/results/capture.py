"""Writes the stored documents of ``tests/data/results`` with the code of the commit that ran it.

Run once, before the typed result models existed (``python -m tests.data.results.capture``):
the documents are what that code stored, so the round-trip test proves that documents written
by earlier versions still load. Do not rerun it to make a failing round trip pass.

Three documents come from older commits (run with that commit's ``src`` on the path):
``window_first_version_e5097e6`` (the first monitoring code: no CBPE, no configuration),
``window_before_febd994`` and ``validation_report_before_bca`` (before BCa intervals, so
without ``ci_method``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.helpers import model_data

from medops.core.onnx_model import OnnxModel
from medops.monitoring.evaluate import WindowRows, evaluate_window
from medops.monitoring.performance import window_performance
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.schemas import MonitoringConfig
from medops.monitoring.thresholds import applied
from medops.registry.report import compute_report

HERE = Path(__file__).parent
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _patients(n: int, seed: int, shift: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    x_train, x_eval, _, _ = model_data.frames()
    data = np.vstack([x_train.to_numpy(), x_eval.to_numpy()])
    rng = np.random.default_rng(seed)
    rows = rng.multivariate_normal(data.mean(axis=0), np.cov(data, rowvar=False), size=n)
    columns = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    columns["sex"] = rng.choice([1.0, 2.0], size=n)
    columns["age"] = np.clip(np.round(columns["age"]), 18, 110)
    for name, sigmas in (shift or {}).items():
        columns[name] = columns[name] + sigmas * data[:, FEATURES.index(name)].std()
    return columns


def _scores(columns: dict[str, np.ndarray]) -> np.ndarray:
    pkg = model_data.package()
    model = OnnxModel(pkg.onnx, pkg.signature)
    return np.asarray(model.positive_scores({k: v.tolist() for k, v in columns.items()}))


def _write(name: str, document: object) -> None:
    text = json.dumps(document, sort_keys=True, allow_nan=False, indent=1)
    (HERE / f"{name}.json").write_text(text + "\n")


def main() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    sex = [str(v) for v in rng.choice(["F", "M"], 400)]
    site = [str(v) for v in rng.choice(["A", "B", "C"], 400, p=[0.45, 0.3, 0.25])]
    site[:5] = ["tiny"] * 5
    report = compute_report(
        y_true=y, scores=s, groups={"sex": sex, "site": site}, n_bootstrap=200, seed=4
    )
    # What the registry service adds before it stores and hashes the report.
    report["dataset"] = {
        "name": "eval.csv", "digest": "0" * 64, "rows": 400, "label_column": "label",
        "ignored_columns": ["note"],
    }  # fmt: skip
    report["model"] = {"name": "sepsis", "version": 1, "artifact_digest": "1" * 64}
    _write("validation_report", report)
    tiny = compute_report(y_true=np.array([0, 1, 0, 1]), scores=np.array([0.1, 0.9, 0.9, 0.1]))
    _write("validation_report_tiny", tiny)

    columns = _patients(600, seed=1)
    p = _scores(columns)
    labels = np.random.default_rng(2).random(p.size) < p
    measured = window_performance(labels, p, 0.5).to_dict()
    baseline = {k: v["value"] for k, v in measured["metrics"].items()}
    baseline["ece"] = measured["calibration"]["ece"]["value"]
    signature = model_data.package().signature
    profile = ReferenceProfile.build(
        signature, {k: v.tolist() for k, v in columns.items()}, p, labels.tolist(),
        baseline=baseline, threshold=0.5,
    )  # fmt: skip
    _write("profile", profile.to_dict())

    def window(
        name: str, n: int, seed: int, *, shift: dict[str, float] | None = None,
        labelled: bool = True, config: MonitoringConfig | None = None, previous: bool = False,
    ) -> None:  # fmt: skip
        cols = _patients(n, seed=seed, shift=shift)
        scores = _scores(cols)
        outcomes = np.random.default_rng(seed + 1000).random(scores.size) < scores
        if shift:
            outcomes = ~outcomes
        rows = WindowRows(
            features={k: v.tolist() for k, v in cols.items()},
            scores=scores.tolist(),
            outcomes=[bool(v) for v in outcomes] if labelled else [None] * n,
        )
        before = None
        if previous:
            old = _patients(n, seed=seed + 7)
            before = WindowRows(
                features={k: v.tolist() for k, v in old.items()},
                scores=_scores(old).tolist(),
            )
        judged = applied(profile, config or MonitoringConfig())
        document = evaluate_window(
            profile, signature, rows, previous=before, thresholds=judged.thresholds,
            correction=judged.correction, min_samples=judged.min_samples,
        )  # fmt: skip
        document["configuration"] = judged.record
        _write(name, document)

    window("window_stable_day", 600, 10, previous=True)
    window("window_shift_count", 500, 11, shift={"bmi": 1.0, "bp": 1.0})
    window("window_unlabelled_cbpe", 400, 12, labelled=False)
    window("window_insufficient", 12, 13)
    learned = MonitoringConfig(
        thresholds_mode="learned", correction="none", thresholds={"bmi": {"psi": 0.3}}
    )
    window("window_canary_learned", 300, 14, config=learned)


if __name__ == "__main__":
    main()
