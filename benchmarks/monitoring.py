#!/usr/bin/env python3
# ruff: noqa: T201
"""Side-by-side drift benchmark: medops' drift statistics against Evidently on the same data.

Data (generated once per case with ``numpy.random.default_rng(SEED)``, written as ``.npy``
files in the work folder, column-major so every column is contiguous): 20 numeric columns
(normal, lognormal, uniform and exponential shapes, in turn) and 5 categorical columns with 5,
8, 12, 16 and 20 categories (strings ``"c00"``...). The current data shifts a few columns
mildly: numeric columns 0-3 by +0.05 to +0.2 standard deviations and a 10 % wider spread,
categorical column 0 by moving probability from the first category to the last. No missing
values. Cases: ``50k/200k`` (reference 50,000 rows, current 200,000 rows) and ``500k/2M``
(10x).

Contenders, each in its own subprocess per case and round (so peak memory is per contender):

- ``evidently``: in ``benchmarks/.monitoring-venv`` (``monitoring-peers/setup.sh``; Evidently
  0.7.23 needs pandas < 3): the arrays become two ``pandas.DataFrame`` (strings as object
  columns) and ``Report([DataDriftPreset()]).run(current, reference)`` is timed; column types
  are Evidently's own inference (it picks Wasserstein for numeric and Jensen-Shannon for
  categorical columns at these sizes).
- ``scipy-loop``: in the project's ``.venv``: per numeric column ``scipy.stats.ks_2samp`` and
  ``scipy.stats.wasserstein_distance``, per categorical column ``np.unique`` counts and
  ``scipy.stats.chi2_contingency``.
- ``medops``: in the project's ``.venv``: ``NumericReference.fit`` / ``CategoricalReference.fit``
  of the 25 reference columns (done once per model version and stored, so timed apart as
  "fit"), then ``numeric_drift`` / ``categorical_drift`` of the 25 current columns ("compute":
  KS, Wasserstein, PSI, KL, Jensen-Shannon and missing rate per numeric column; chi-square,
  PSI, Jensen-Shannon and missing rate per categorical column).

Measured per run: "compute" = wall time of the drift computation (``time.perf_counter`` in the
child, data already loaded), "end-to-end" = wall time of the whole child process as seen by
this script (interpreter start, imports, loading the ``.npy`` files, fit, compute, exit), peak
memory = ``VmHWM`` of the child read from ``/proc/self/status`` after the work (peak resident
set, whole process: interpreter, libraries, data and work). Rounds alternate the contender
order. The table shows medians over rounds, min-max of compute time and ratios to Evidently.
A child that runs past ``--timeout`` seconds is killed and recorded as ``timeout``; one killed
by a signal (the kernel's OOM killer sends SIGKILL) or raising ``MemoryError`` as ``OOM``.

Run (any Python 3.11+, this script uses the standard library only; it re-runs itself in the
two venvs for the children):
    bash benchmarks/monitoring-peers/setup.sh      # once: benchmarks/.monitoring-venv
    python3 benchmarks/monitoring.py [--rounds 3] [--big-rounds N] [--cases 50k/200k,500k/2M]
                                     [--only evidently,scipy-loop,medops] [--timeout 600]
                                     [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import QUIET_ENV, peak_kib, working_folder

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".monitoring-venv" / "bin" / "python"
PROJECT_PYTHON = HERE.parent / ".venv" / "bin" / "python"
CONTENDERS = ("evidently", "scipy-loop", "medops")
CASES = {"50k/200k": (50_000, 200_000), "500k/2M": (500_000, 2_000_000)}
SMALL_CASE = "50k/200k"
N_NUMERIC = 20
CATEGORY_COUNTS = (5, 8, 12, 16, 20)
SEED = 20_240_601
PEER_PACKAGES = ("evidently", "pandas", "numpy", "scipy")
PROJECT_PACKAGES = ("medops", "numpy", "scipy")

Json = dict[str, Any]


# --------------------------------------------------------------------------- children
# These run inside a venv (``--child NAME``): numpy and friends are imported there only.


def peak_mb() -> float:
    """Peak resident set of this process so far (VmHWM), in MB (10^6 bytes)."""
    return peak_kib() * 1024 / 1e6


def child_generate(folder: Path, n_ref: int, n_cur: int) -> Json:
    """Write ``{ref,cur}_num.npy`` (20 x n float64) and ``{ref,cur}_cat.npy`` (5 x n <U3)."""
    import numpy as np

    rng = np.random.default_rng(SEED)

    def numeric(n: int, *, current: bool) -> Any:
        out = np.empty((N_NUMERIC, n), dtype=np.float64)
        for j in range(N_NUMERIC):
            shift, scale = (0.05 * (j + 1), 1.1) if current and j < 4 else (0.0, 1.0)
            shape = j % 4
            if shape == 0:
                column = rng.normal(10.0 * j, 1.0 + j, n)
            elif shape == 1:
                column = rng.lognormal(0.5, 0.75, n)
            elif shape == 2:
                column = rng.uniform(-j, j + 1.0, n)
            else:
                column = rng.exponential(2.0 + j, n)
            mean, std = column.mean(), column.std()
            out[j] = mean + (column - mean) * scale + shift * std
        return out

    def categorical(n: int, *, current: bool) -> Any:
        out = np.empty((len(CATEGORY_COUNTS), n), dtype="<U3")
        for j, k in enumerate(CATEGORY_COUNTS):
            weights = np.linspace(3.0, 1.0, k)
            if current and j == 0:
                weights[0], weights[-1] = weights[0] - 0.4, weights[-1] + 0.4
            labels = np.array([f"c{i:02d}" for i in range(k)])
            out[j] = labels[rng.choice(k, size=n, p=weights / weights.sum())]
        return out

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "ref_num.npy", numeric(n_ref, current=False))
    np.save(folder / "cur_num.npy", numeric(n_cur, current=True))
    np.save(folder / "ref_cat.npy", categorical(n_ref, current=False))
    np.save(folder / "cur_cat.npy", categorical(n_cur, current=True))
    return {}


def _load(folder: Path) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    return tuple(
        np.load(folder / f"{name}.npy") for name in ("ref_num", "cur_num", "ref_cat", "cur_cat")
    )  # type: ignore[return-value]


def child_evidently(folder: Path) -> Json:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    began = time.perf_counter()
    ref_num, cur_num, ref_cat, cur_cat = _load(folder)

    def frame(num: Any, cat: Any) -> Any:
        columns: dict[str, Any] = {f"num_{j:02d}": num[j] for j in range(num.shape[0])}
        columns |= {f"cat_{j}": cat[j].astype(object) for j in range(cat.shape[0])}
        return pd.DataFrame(columns)

    reference, current = frame(ref_num, ref_cat), frame(cur_num, cur_cat)
    del ref_num, cur_num, ref_cat, cur_cat
    loaded = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    done = time.perf_counter()
    summary = snapshot.dict()["metrics"][0]["value"]
    return {"load_s": loaded - began, "compute_s": done - loaded, "check": str(summary)}


def child_scipy_loop(folder: Path) -> Json:
    import numpy as np
    from scipy import stats

    began = time.perf_counter()
    ref_num, cur_num, ref_cat, cur_cat = _load(folder)
    loaded = time.perf_counter()
    drifted = []
    for j in range(ref_num.shape[0]):
        ks = stats.ks_2samp(ref_num[j], cur_num[j])
        distance = stats.wasserstein_distance(ref_num[j], cur_num[j])
        if ks.pvalue < 0.05:
            drifted.append(f"num_{j:02d}(w={distance / ref_num[j].std():.3f})")
    for j in range(ref_cat.shape[0]):
        categories, counts = np.unique(np.concatenate((ref_cat[j], cur_cat[j])), return_counts=True)
        ref_counts = np.unique(ref_cat[j], return_counts=True)
        cur_counts = np.unique(cur_cat[j], return_counts=True)
        table = np.zeros((2, categories.size), dtype=np.int64)
        table[0, np.searchsorted(categories, ref_counts[0])] = ref_counts[1]
        table[1, np.searchsorted(categories, cur_counts[0])] = cur_counts[1]
        assert table.sum() == counts.sum()
        if stats.chi2_contingency(table, correction=False).pvalue < 0.05:
            drifted.append(f"cat_{j}")
    done = time.perf_counter()
    return {"load_s": loaded - began, "compute_s": done - loaded, "check": ",".join(drifted)}


def child_medops(folder: Path) -> Json:
    from medops.monitoring.drift import (
        CategoricalReference,
        NumericReference,
        categorical_drift,
        numeric_drift,
    )

    began = time.perf_counter()
    ref_num, cur_num, ref_cat, cur_cat = _load(folder)
    loaded = time.perf_counter()
    numeric_refs = [NumericReference.fit(ref_num[j]) for j in range(ref_num.shape[0])]
    categorical_refs = [CategoricalReference.fit(ref_cat[j]) for j in range(ref_cat.shape[0])]
    fitted = time.perf_counter()
    results = []
    for j, reference in enumerate(numeric_refs):
        results += numeric_drift(reference, cur_num[j], feature=f"num_{j:02d}")
    for j, reference in enumerate(categorical_refs):
        results += categorical_drift(reference, cur_cat[j], feature=f"cat_{j}")
    done = time.perf_counter()
    drifted = sorted(
        {r.feature for r in results if r.drifted and r.test in {"ks", "wasserstein", "chi2"}}
    )
    return {
        "load_s": loaded - began,
        "fit_s": fitted - loaded,
        "compute_s": done - fitted,
        "check": ",".join(drifted),
    }


def child_versions(packages: list[str]) -> Json:
    from importlib import metadata

    versions: Json = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def run_child(name: str, args: list[str]) -> None:
    """Entry point of a child: do the work, print one ``RESULT {json}`` line with the peak."""
    try:
        if name == "generate":
            result = child_generate(Path(args[0]), int(args[1]), int(args[2]))
        elif name == "versions":
            result = child_versions(args)
        else:
            work = {"evidently": child_evidently, "scipy-loop": child_scipy_loop}
            result = work.get(name, child_medops)(Path(args[0]))
            result["peak_mb"] = peak_mb()
    except MemoryError:
        result = {"error": "OOM"}
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


@dataclass(frozen=True)
class Run:
    compute_s: float
    end_to_end_s: float
    peak_mb: float
    fit_s: float | None
    check: str


def spawn(
    python: Path, name: str, args: list[str], *, timeout: float, log: Path
) -> tuple[Json | str, float]:
    """Run ``python this-file --child name args``: (its RESULT or an error word, wall seconds)."""
    env = dict(os.environ) | QUIET_ENV
    command = [str(python), str(Path(__file__).resolve()), "--child", name, *args]
    began = time.perf_counter()
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed commands from this file
            command,
            cwd=HERE.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
        )
        try:
            stdout, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "timeout", time.perf_counter() - began
    wall = time.perf_counter() - began
    line = next((x for x in stdout.decode().splitlines() if x.startswith("RESULT ")), None)
    if process.returncode == -signal.SIGKILL:
        return "OOM", wall
    if process.returncode != 0 or line is None:
        return f"failed (exit {process.returncode}, see {log})", wall
    result: Json = json.loads(line.removeprefix("RESULT "))
    return result.get("error", result), wall


def python_for(contender: str) -> Path:
    return PEERS_PYTHON if contender == "evidently" else PROJECT_PYTHON


def versions() -> str:
    parts = []
    for python, packages in ((PEERS_PYTHON, PEER_PACKAGES), (PROJECT_PYTHON, PROJECT_PACKAGES)):
        found, _ = spawn(python, "versions", list(packages), timeout=120, log=Path(os.devnull))
        if isinstance(found, dict):
            parts.append(
                f"{python.parent.parent.name}: " + ", ".join(f"{k} {v}" for k, v in found.items())
            )
    return "; ".join(parts)


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(
    results: dict[tuple[str, str], list[Run | str]], cases: list[str], names: list[str]
) -> str:
    columns = (
        "contender",
        "case",
        "compute s",
        "fit s",
        "end-to-end s",
        "peak MB",
        "time vs evidently",
        "memory vs evidently",
        "compute min-max s",
        "runs",
    )
    rows = ["| " + " | ".join(columns) + " |", "|---|---" + "|---:" * (len(columns) - 2) + "|"]
    for case in cases:
        medians: dict[str, dict[str, float | None]] = {}
        for name in names:
            runs = [run for run in results.get((name, case), []) if isinstance(run, Run)]
            if runs:
                fits = [run.fit_s for run in runs if run.fit_s is not None]
                medians[name] = {
                    "compute_s": statistics.median(run.compute_s for run in runs),
                    "end_to_end_s": statistics.median(run.end_to_end_s for run in runs),
                    "peak_mb": statistics.median(run.peak_mb for run in runs),
                    "fit_s": statistics.median(fits) if fits else None,
                }
        base = medians.get("evidently", {})
        for name in names:
            outcomes = results.get((name, case), [])
            failures = [o for o in outcomes if isinstance(o, str)]
            note = f"{len(outcomes) - len(failures)} ok" + (
                f", {len(failures)} {'/'.join(sorted(set(failures)))}" if failures else ""
            )
            median = medians.get(name)
            if median is None:
                rows.append(f"| {name} | {case} | {' | '.join(['-'] * 7)} | {note} |")
                continue
            computes = [o.compute_s for o in outcomes if isinstance(o, Run)]
            time_ratio = mem_ratio = "-"
            if base and name != "evidently":
                time_ratio = f"{base['compute_s'] / median['compute_s']:.1f}x faster"  # type: ignore[operator]
                mem_ratio = f"{median['peak_mb'] / base['peak_mb']:.2f}"  # type: ignore[operator]
            rows.append(
                f"| {name} | {case} | {fmt(median['compute_s'], 3)} | {fmt(median['fit_s'], 3)} "
                f"| {fmt(median['end_to_end_s'])} | {fmt(median['peak_mb'], 0)} "
                f"| {time_ratio} | {mem_ratio} | {min(computes):.3f}-{max(computes):.3f} | {note} |"
            )
    return "\n".join(rows)


def linearity(
    results: dict[tuple[str, str], list[Run | str]], cases: list[str], names: list[str]
) -> str:
    """Median compute (and fit) seconds per million rows, per contender and case."""
    rows = [
        "| contender | case | compute s per 1M current rows | fit s per 1M reference rows |",
        "|---|---|---:|---:|",
    ]
    for name in names:
        for case in cases:
            runs = [run for run in results.get((name, case), []) if isinstance(run, Run)]
            if not runs:
                continue
            n_ref, n_cur = CASES[case]
            compute = statistics.median(run.compute_s for run in runs) / (n_cur / 1e6)
            fits = [run.fit_s for run in runs if run.fit_s is not None]
            fit = statistics.median(fits) / (n_ref / 1e6) if fits else None
            rows.append(f"| {name} | {case} | {compute:.3f} | {fmt(fit, 3)} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--big-rounds", type=int, help="rounds for the cases other than 50k/200k (default --rounds)"
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated ({','.join(CASES)})"
    )
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help=f"comma-separated ({','.join(CONTENDERS)})"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per child before it is killed (600)"
    )
    parser.add_argument("--workdir", type=Path, help="keep the data and logs here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        args.child_args = rest
        return args
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.cases = [c for c in args.cases.split(",") if c]
    args.only = [c for c in args.only.split(",") if c]
    if unknown := sorted(set(args.cases) - set(CASES)):
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    if unknown := sorted(set(args.only) - set(CONTENDERS)):
        parser.error(f"unknown contenders {unknown}; choose from {CONTENDERS}")
    if "evidently" in args.only and not PEERS_PYTHON.exists():
        parser.error(
            f"no venv at {PEERS_PYTHON.parent.parent}: bash {HERE}/monitoring-peers/setup.sh"
        )
    if not PROJECT_PYTHON.exists():
        parser.error(f"no project venv at {PROJECT_PYTHON.parent.parent}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.child_args)
        return
    began = time.monotonic()
    results: dict[tuple[str, str], list[Run | str]] = {}
    with working_folder(args.workdir, "monitoring-bench-") as workdir:
        log = workdir / "children.log"
        for case in args.cases:
            n_ref, n_cur = CASES[case]
            folder = workdir / case.replace("/", "-")
            if not (folder / "cur_cat.npy").exists():
                print(f"generating {case} in {folder} ...", flush=True)
                made, _ = spawn(
                    PROJECT_PYTHON,
                    "generate",
                    [str(folder), str(n_ref), str(n_cur)],
                    timeout=args.timeout,
                    log=log,
                )
                if not isinstance(made, dict):
                    raise RuntimeError(f"generating {case}: {made}")
            rounds = args.rounds if case == SMALL_CASE else (args.big_rounds or args.rounds)
            for round_index in range(rounds):
                shift = round_index % len(args.only)
                for name in args.only[shift:] + args.only[:shift]:
                    found, wall = spawn(
                        python_for(name), name, [str(folder)], timeout=args.timeout, log=log
                    )
                    outcome: Run | str = (
                        found
                        if isinstance(found, str)
                        else Run(
                            compute_s=found["compute_s"],
                            end_to_end_s=wall,
                            peak_mb=found["peak_mb"],
                            fit_s=found.get("fit_s"),
                            check=found["check"],
                        )
                    )
                    results.setdefault((name, case), []).append(outcome)
                    shown = (
                        outcome
                        if isinstance(outcome, str)
                        else f"compute {outcome.compute_s:7.3f} s  "
                        f"fit {fmt(outcome.fit_s, 3):>6} s  "
                        f"end-to-end {wall:7.2f} s  peak {outcome.peak_mb:6.0f} MB"
                    )
                    print(f"{case:9s} round {round_index + 1} {name:10s} {shown}", flush=True)
        checks = {
            (name, case): runs[0].check
            for (name, case), runs in results.items()
            if runs and isinstance(runs[0], Run)
        }
    print()
    print(
        f"## Drift benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"{args.rounds} round(s) for {SMALL_CASE}, {args.big_rounds or args.rounds} for the "
        f"larger case(s); {os.cpu_count()} CPU(s); medians over rounds; 20 numeric + 5 "
        f"categorical columns; total run {time.monotonic() - began:.0f} s.\n"
        f"Versions: {versions()}\n"
    )
    print(report(results, args.cases, args.only))
    print("\nLinearity (median seconds per million rows):\n")
    print(linearity(results, args.cases, args.only))
    print("\nDrifted columns found (first run), as a sanity check:\n")
    for (name, case), check in sorted(checks.items()):
        print(f"- {name} {case}: {check[:400]}")


if __name__ == "__main__":
    main()
