"""Types shared by the end-to-end packaging tests (the ``serve`` fixture is in
tests/packaging/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from medops.packaging import Package

# serve(name, package, x_eval, y_eval) -> predict(records): the deployment's JSON answers.
Serve = Callable[[str, Package, pd.DataFrame, pd.Series], Callable[[list[dict[str, Any]]], Any]]
