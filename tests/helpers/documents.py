"""Stored result documents for the typed-model tests: the JSON files of ``tests/data/results``
(written by the code before the models existed) and a check that a model kept no unknown key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

RESULTS = Path(__file__).parent.parent / "data" / "results"


def stored(prefix: str) -> list[Path]:
    """The stored documents whose file name starts with ``prefix``."""
    return sorted(RESULTS.glob(f"{prefix}*.json"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def unknown_keys(model: BaseModel, where: str = "") -> Iterator[str]:
    """Every key a model (or a model inside it) held as an extra: a field the model lacks."""
    for key in model.model_extra or {}:
        yield f"{where}.{key}"
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name), f"{where}.{name}")


def _walk(value: object, where: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from unknown_keys(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")
