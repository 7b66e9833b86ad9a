#!/usr/bin/env python3
# ruff: noqa: T201
"""CBPE agreement: medops' label-free performance estimate against NannyML's on the same data.

Cases: ``tests/monitoring/cbpe_cases.py`` (a binary classifier's reference and analysis
periods, 5,000 rows each, chunks of 500 rows; calibrated scores under covariate shift,
overconfident scores that need isotonic calibration, scores tied on a 0.1 grid, a drop in
prevalence; and 5,009 / 5,004 rows cut by NannyML's default chunker, a tenth of the rows
with the remainder a chunk of its own, as medops cuts the reference by default). For every
case NannyML 0.13.1 (``CBPE(..., chunk_size=500)``, or the default chunker in the last case,
fitted on the reference, estimating the analysis period) runs in its own venv
(``benchmarks/.cbpe-venv``, made by ``cbpe-peers/setup.sh``), medops
(``medops.monitoring.cbpe.CbpeReference``) in the project's ``.venv``. Compared per analysis
chunk and metric (accuracy, sensitivity = NannyML's recall, specificity, precision, F1,
AUROC): the estimate, its sampling error, the band (NannyML's confidence boundaries) and the
alert limits (NannyML's thresholds); also whether calibration applied. The largest absolute
difference per field is printed, with the stated tolerance (``TOLERANCE``); the exit status is
1 when any difference exceeds it. Fit + estimate wall time of both is printed (median of
``--rounds``, in the same run).

``--record`` writes NannyML's answers to ``tests/monitoring/data/cbpe_nannyml.json``, which
``tests/monitoring/test_cbpe.py`` compares medops with on every test run.

Run:
    bash benchmarks/cbpe-peers/setup.sh            # once: benchmarks/.cbpe-venv
    .venv/bin/python benchmarks/cbpe_agreement.py [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / ".cbpe-venv" / "bin" / "python"
RECORD = ROOT / "tests" / "monitoring" / "data" / "cbpe_nannyml.json"
TOLERANCE = 1e-6
# NannyML's metric names -> medops'
METRICS = {
    "accuracy": "accuracy",
    "recall": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
    "f1": "f1",
    "roc_auc": "auroc",
}
FIELDS = {
    "value": "value",
    "sampling_error": "sampling_error",
    "lower_confidence_boundary": "lower",
    "upper_confidence_boundary": "upper",
    "lower_threshold": "limit_lower",
    "upper_threshold": "limit_upper",
}
sys.path.insert(0, str(ROOT))
from tests.helpers.cbpe_cases import (  # noqa: E402
    CASES,
    CHUNK,
    DEFAULT_CHUNKING,
    THRESHOLD,
    case,
)


def child_nannyml(name: str) -> dict[str, Any]:
    """NannyML's estimate of one case, per analysis chunk (runs in the peer venv)."""
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.simplefilter("ignore")
    ref_s, ref_y, ana_s, _ana_y = case(name)

    def frame(scores: Any, labels: Any | None) -> Any:
        data = {"score": scores, "pred": (scores >= THRESHOLD).astype(int)}
        if labels is not None:
            data["label"] = labels.astype(int)
        return pd.DataFrame(data)

    started = time.perf_counter()
    estimator = nml.CBPE(
        y_pred_proba="score",
        y_pred="pred",
        y_true="label",
        metrics=list(METRICS),
        problem_type="classification_binary",
        **({} if name in DEFAULT_CHUNKING else {"chunk_size": CHUNK}),
    )
    estimator.fit(frame(ref_s, ref_y))
    result = estimator.estimate(frame(ana_s, None)).filter(period="analysis").to_df()
    seconds = time.perf_counter() - started
    chunks = []
    for _, row in result.iterrows():
        chunks.append(
            {
                "start": int(row[("chunk", "start_index")]),
                "end": int(row[("chunk", "end_index")]) + 1,
                "metrics": {
                    METRICS[m]: {ours: _plain(row[(m, theirs)]) for theirs, ours in FIELDS.items()}
                    for m in METRICS
                },
            }
        )
    return {
        "calibrated": bool(estimator.needs_calibration),
        "chunks": chunks,
        "seconds": seconds,
        "version": nml.__version__,
    }


def _plain(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def medops_estimate(name: str, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """medops' estimate of the same chunks (runs in the project's venv)."""
    from medops.monitoring.cbpe import CbpeReference

    ref_s, ref_y, ana_s, _ana_y = case(name)
    started = time.perf_counter()
    size = None if name in DEFAULT_CHUNKING else CHUNK
    reference = CbpeReference.fit(ref_s, ref_y, THRESHOLD, chunk_size=size)
    estimates = [reference.estimate(ana_s[c["start"] : c["end"]]) for c in chunks]
    seconds = time.perf_counter() - started
    return {"calibrated": reference.calibrated, "chunks": estimates, "seconds": seconds}


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    """Largest absolute difference per field across chunks and metrics (None against a
    number counts as infinite)."""
    worst: dict[str, float] = dict.fromkeys(FIELDS.values(), 0.0)
    for their_chunk, our_chunk in zip(theirs["chunks"], ours["chunks"], strict=True):
        for metric, fields in their_chunk["metrics"].items():
            for field, expected in fields.items():
                got = our_chunk["metrics"][metric][field]
                if expected is None and got is None:
                    continue
                if got is None and our_chunk["metrics"][metric]["value"] is None:
                    continue  # undefined (zero denominator): None here, 0 in NannyML
                gap = float("inf") if expected is None or got is None else abs(got - expected)
                worst[field] = max(worst[field], gap)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_nannyml(args.child)))
        return 0
    if not PEER.exists():
        print(f"missing {PEER}: run bash benchmarks/cbpe-peers/setup.sh first", file=sys.stderr)
        return 2
    # imports outside the timing, as NannyML's are (its import loads scikit-learn)
    import sklearn.isotonic
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401

    recorded: dict[str, Any] = {}
    failed = False
    print(f"| case | calibrated (NannyML / medops) | {' | '.join(FIELDS.values())} |"
          " NannyML s | medops s | speed-up |")  # fmt: skip
    print("|---|---|" + "---:|" * (len(FIELDS) + 3))
    for name in CASES:
        their_runs, our_runs = [], []
        for _ in range(args.rounds):
            done = subprocess.run(  # noqa: S603 - fixed command from this file
                [str(PEER), __file__, "--child", name],
                check=True,
                capture_output=True,
                text=True,
            )
            their_runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            our_runs.append(medops_estimate(name, their_runs[-1]["chunks"]))
        theirs, ours = their_runs[0], our_runs[0]
        worst = differences(theirs, ours)
        failed |= any(v > TOLERANCE for v in worst.values())
        failed |= theirs["calibrated"] != ours["calibrated"]
        their_s = statistics.median(r["seconds"] for r in their_runs)
        our_s = statistics.median(r["seconds"] for r in our_runs)
        cells = " | ".join(f"{worst[f]:.1e}" for f in FIELDS.values())
        print(
            f"| {name} | {theirs['calibrated']} / {ours['calibrated']} | {cells} | "
            f"{their_s:.3f} | {our_s:.3f} | {their_s / our_s:.1f}x |"
        )
        recorded[name] = {"calibrated": theirs["calibrated"], "chunks": theirs["chunks"]}
        version = theirs["version"]
    print(f"\nNannyML {version}; tolerance {TOLERANCE:g} on every field: "
          f"{'EXCEEDED' if failed else 'met'}")  # fmt: skip
    if args.record:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        payload = {"nannyml": version, "tolerance": TOLERANCE, "cases": recorded}
        RECORD.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        print(f"recorded NannyML's answers in {RECORD.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
