"""Per-prediction explanations: medops (from the ONNX graph) vs shap, one row at a time.

For each model family (logistic regression, random forest, gradient boosting, XGBoost,
LightGBM; 100 trees of depth 6) on the breast-cancer data (30 features) and, for the trees,
a 20-feature synthetic set, every run times the same rows, interleaved, single-threaded:

- ``predict``: ONNX Runtime on the row alone (``OnnxModel.run_feed``);
- ``explain``: ``Explainer.explain_feed`` on the row (medops' exact method), and
  ``predict+explain`` the two together (one row's answer with its explanation);
- ``shap`` (trees: ``TreeExplainer`` as shap defaults, tree_path_dependent, the issue's
  reference figures; linear: ``LinearExplainer``) on the row;
- ``shap interventional``: ``TreeExplainer`` with the same background as medops (the same
  quantity medops computes).

Prints a table of the medians over runs of each run's p50 and p99, in microseconds, and the
largest |medops - shap| over the timed rows for the interventional comparison. On a shared
machine, ``--clock cpu`` times each call by this thread's CPU time (``time.thread_time``),
which other processes' preemption does not inflate.

    .venv/bin/python benchmarks/explain.py [--rows 200] [--runs 3] [--background 100] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import lightgbm
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import shap  # type: ignore[import-untyped]
import xgboost
from sklearn.datasets import load_breast_cancer, make_classification  # type: ignore[import-untyped]
from sklearn.ensemble import (  # type: ignore[import-untyped]
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops.core.explain import explainer_for
from medops.packaging import package_model

warnings.filterwarnings("ignore")
clock = time.perf_counter  # --clock cpu: this thread's CPU time (immune to preemption)

FAMILIES: dict[str, Callable[[], Any]] = {
    "random forest": lambda: RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(
        n_estimators=100, max_depth=6, random_state=0
    ),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1),
    "lightgbm": lambda: lightgbm.LGBMClassifier(
        n_estimators=100, max_depth=6, num_leaves=63, verbose=-1, n_jobs=1
    ),
}


def datasets() -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    xs, ys = make_classification(n_samples=2000, n_features=20, n_informative=12, random_state=0)
    synthetic = pd.DataFrame(xs, columns=[f"f{i}" for i in range(20)])
    return {"breast cancer (30)": (x, np.asarray(y)), "synthetic (20)": (synthetic, ys)}


def _pcts(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1e6
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench(name: str, model: Any, x: pd.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    package = package_model(model, sample=x)
    background = x.iloc[: args.background]
    columns = {c: background[c].to_numpy() for c in x.columns}
    started = clock()
    explainer = explainer_for(package.onnx, package.signature, background=columns)
    load_s = clock() - started
    rng = np.random.default_rng(0)
    rows = x.iloc[rng.choice(len(x), size=min(args.rows, len(x)), replace=False)]
    feeds = [
        explainer.model.feed({c: rows[c].to_numpy()[i : i + 1] for c in x.columns})
        for i in range(len(rows))
    ]
    matrix = rows.to_numpy()
    linear = name == "logistic regression"
    if linear:
        scaler, logistic = model[0], model[-1]
        shap_default = shap.LinearExplainer(
            (logistic.coef_[0], logistic.intercept_[0]),
            shap.maskers.Independent(scaler.transform(background), max_samples=1000),
        )
        shap_rows = scaler.transform(rows)
        shap_inter = None
    else:
        shap_default = shap.TreeExplainer(model)
        shap_inter = shap.TreeExplainer(
            model, data=background.to_numpy(), feature_perturbation="interventional"
        )
        shap_rows = matrix
    timings: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("predict", "explain", "predict+explain", "shap", "shap interventional")
    }
    worst = 0.0
    for _ in range(args.runs):
        samples: dict[str, list[float]] = {k: [] for k in timings}
        for i, feed in enumerate(feeds):
            t0 = clock()
            explainer.model.run_feed(feed)
            t1 = clock()
            answer = explainer.explain_feed(feed)
            t2 = clock()
            shap_default.shap_values(shap_rows[i : i + 1])
            t3 = clock()
            samples["predict"].append(t1 - t0)
            samples["explain"].append(t2 - t1)
            samples["predict+explain"].append(t2 - t0)
            samples["shap"].append(t3 - t2)
            if shap_inter is not None:
                t4 = clock()
                reference = shap_inter.shap_values(matrix[i : i + 1], check_additivity=False)
                samples["shap interventional"].append(clock() - t4)
                reference = np.asarray(reference)
                if reference.ndim == 3:  # one column per class: the positive one
                    reference = reference[..., 1]
                worst = max(worst, float(np.abs(reference - answer.values).max()))
        for k, v in samples.items():
            if v:
                timings[k].append(_pcts(v))
    summary = {
        k: {
            "p50_us": float(np.median([p[0] for p in v])),
            "p99_us": float(np.median([p[1] for p in v])),
        }
        for k, v in timings.items()
        if v
    }
    return {
        "method": explainer.method,
        "load_s": load_s,
        "max_abs_diff_vs_shap_interventional": worst if shap_inter is not None else None,
        **summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time.thread_time, which a loaded machine's preemption does not inflate",
    )
    args = parser.parse_args()
    global clock  # noqa: PLW0603 - chosen once, before any timing
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    results: dict[str, dict[str, Any]] = {}
    for data_name, (x, y) in datasets().items():
        families: dict[str, Callable[[], Any]] = dict(FAMILIES)
        if data_name.startswith("breast"):
            families = {
                "logistic regression": lambda: make_pipeline(
                    StandardScaler(), LogisticRegression(max_iter=5000)
                ),
                **families,
            }
        for name, make in families.items():
            model = make().fit(x, y)
            results[f"{name} / {data_name}"] = bench(name, model, x, args)
            print(f"done {name} / {data_name}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    print(
        "| model / data | method | predict p50/p99 | explain p50/p99 | predict+explain p50/p99 "
        "| shap p50/p99 "
        "| shap interventional p50/p99 | max abs diff | explainer build s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in results.items():

        def cell(name: str) -> str:
            if name not in r:
                return "-"
            return f"{r[name]['p50_us']:.0f} / {r[name]['p99_us']:.0f}"

        diff = r["max_abs_diff_vs_shap_interventional"]
        print(
            f"| {key} | {r['method']} | {cell('predict')} | {cell('explain')} | "
            f"{cell('predict+explain')} | "
            f"{cell('shap')} | {cell('shap interventional')} | "
            f"{'-' if diff is None else f'{diff:.1e}'} | {r['load_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
