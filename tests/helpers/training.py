"""Training tests' building blocks: the entry points a model declares (importable by the
runner's child process as ``tests.helpers.training:...``), the training table put into a real
dataset version through the SDK, and an SDK client on the test app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops import examples
from medops.client import Client
from medops.config import Settings
from medops.retraining.job_schemas import TrainingSpec
from tests.helpers import model_data
from tests.helpers.registry import FEATURES

DATASET = "diabetes-train"
TABLE = "train.csv"


def train(data: Any, params: dict[str, Any]) -> Any:
    """The entry point the tests' model declares: a scaled logistic regression on the
    table's features, ``C`` from the parameters."""
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=1000)
    )
    print(f"fitting on {len(data)} rows with C={params.get('C', 1.0)}")  # noqa: T201 - a log
    model.fit(data[FEATURES], data[examples.LABEL])
    return model


def broken(data: Any, params: dict[str, Any]) -> Any:
    """An entry point that fails as user code does: output, then an exception."""
    print(f"loaded {len(data)} rows")  # noqa: T201 - a log
    msg = "the feature table has no column 'hba1c'"
    raise KeyError(msg)


def spec(entry_point: str = "tests.helpers.training:train", **extra: Any) -> TrainingSpec:
    """The tests' training spec: ``entry_point`` on DATASET/TABLE."""
    return TrainingSpec.model_validate(
        {
            "entry_point": entry_point,
            "dataset": DATASET,
            "path": TABLE,
            "label": examples.LABEL,
            "parameters": {"C": 1.0},
        }
        | extra
    )


def training_table(rows: int | None = None, *, shift: float = 0.0) -> bytes:
    """The training split (its first ``rows``) as a labelled CSV; ``shift`` adds that many
    standard deviations to bmi (newer data from a changed population)."""
    x_train, _, y_train, _ = model_data.frames()
    x, y = x_train.copy(), y_train
    if rows is not None:
        x, y = x.iloc[:rows], y.iloc[:rows]
    if shift:
        x["bmi"] = x["bmi"] + shift * float(x_train["bmi"].std())
    return examples.labeled_csv(x, y)


def add_training_data(api: Client, folder: Path, table: bytes, message: str) -> int:
    """A new version of DATASET holding TABLE; returns its number."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TABLE).write_bytes(table)
    committed = api.add_dataset(DATASET, [folder / TABLE], message=message)
    return committed.version.number


class _Shared(httpx.BaseTransport):
    """The test's own transport, lent: the ``http`` fixture owns it and closes it. A second
    embedded transport on the same app would run its lifespan again on another event loop, and
    the serving runtime (one per app) would then be closed from the wrong loop."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Nothing: the lender closes it."""


def sdk(http: httpx.Client, settings: Settings, headers: dict[str, str]) -> Client:
    """An SDK client with a person's bearer token, through the test's own client's transport."""
    token = headers["Authorization"].removeprefix("Bearer ")
    return Client(
        "https://testserver", token, settings=settings, transport=_Shared(http._transport)
    )


def audit_actions(http: httpx.Client, headers: dict[str, str], prefix: str) -> list[str]:
    """The audited actions starting with ``prefix``, oldest first."""
    answer = http.get("/api/v1/audit/events", params={"limit": 1000}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [
        e["action"] for e in reversed(answer.json()["events"]) if e["action"].startswith(prefix)
    ]
