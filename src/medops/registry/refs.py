"""Model references: ``name@alias``, ``name/3`` or ``name`` (its latest version).

No database here: the SDK and CLI parse references without importing SQLAlchemy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medops.errors import FieldError, InvalidInputError
from medops.registry.schemas import ALIAS_PATTERN, MODEL_NAME_PATTERN

_REF = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d{1,9}))?$")


@dataclass(frozen=True)
class Ref:
    """A parsed model reference."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version:
            return f"{self.name}/{self.version}"
        return self.name


def parse_ref(text: str, *, field: str = "ref") -> Ref:
    """``name@alias``, ``name/3`` or ``name`` (the latest version)."""
    match = _REF.match(text.strip())
    bad = "expected NAME, NAME/VERSION or NAME@ALIAS"
    if match is None or not re.fullmatch(MODEL_NAME_PATTERN, match["name"]):
        raise InvalidInputError(
            f"invalid model reference {text!r}: {bad}", errors=[FieldError(field, bad)]
        )
    alias = match["alias"]
    if alias is not None and not re.fullmatch(ALIAS_PATTERN, alias):
        reason = f"alias must match {ALIAS_PATTERN}"
        raise InvalidInputError(
            f"invalid alias in {text!r}: {reason}", errors=[FieldError(field, reason)]
        )
    version = int(match["version"]) if match["version"] else None
    if version == 0:
        raise InvalidInputError(
            "versions start at 1", errors=[FieldError(field, "versions start at 1")]
        )
    return Ref(match["name"], alias, version)
