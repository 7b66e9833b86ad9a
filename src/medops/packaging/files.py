"""Reading the registering user's own files: a saved native model and a sample CSV.

``load_native`` unpickles (joblib): that runs code from the file, so it is only ever done on
the registering user's machine, on their own file; the server never unpickles anything.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from medops.errors import FieldError, PackagingError

_PICKLE_SUFFIXES = {".joblib", ".pkl", ".pickle"}


def load_native(path: Path) -> Any:
    """A scikit-learn, LightGBM or XGBoost model saved with joblib or pickle."""
    if path.suffix.lower() not in _PICKLE_SUFFIXES:
        reason = (
            "give a .onnx file, or a .joblib/.pkl file of a scikit-learn, LightGBM or XGBoost model"
        )
        raise PackagingError(
            f"{path.name}: unsupported model file; {reason}",
            errors=[FieldError("model_file", reason)],
        )
    if not path.is_file():
        raise PackagingError(
            f"{path}: no such file", errors=[FieldError("model_file", "no such file")]
        )
    import joblib  # type: ignore[import-untyped]

    try:
        return joblib.load(path)  # the user's own file, on their own machine
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything; say what, on one line
        raise PackagingError(f"cannot load {path.name}: {type(exc).__name__}: {exc}") from None


def read_sample(path: Path) -> Any:
    """Sample rows from a CSV: a pandas DataFrame when pandas is installed (what pipelines
    trained on DataFrames expect), else a mapping of columns with numbers parsed."""
    if not path.is_file():
        raise PackagingError(f"{path}: no such file", errors=[FieldError("sample", "no such file")])
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError:
        return _read_columns(path)
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise PackagingError(f"cannot read sample {path.name}: {exc}") from None


def _read_columns(path: Path) -> dict[str, list[Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise PackagingError(f"sample {path.name} has no rows")
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    for name, values in columns.items():
        try:
            columns[name] = [float(v) for v in values]
        except ValueError:
            continue
    return columns
