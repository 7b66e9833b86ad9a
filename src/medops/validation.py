"""Pydantic validation errors as medops field errors, with "did you mean" for a mistyped key.

Used on both sides: the API's handler of request validation errors (the route's body model)
and the SDK where it checks a user's file before sending it (a card, a policy). Pure.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from medops.errors import FieldError, InvalidInputError, clip

M = TypeVar("M", bound=BaseModel)
SHOWN_FIELDS = 12
LOCATIONS = {"body", "query", "path", "header", "cookie"}


def unknown_field_reason(key: str, known: Iterable[str], *, list_fields: bool = True) -> str:
    """Why a key was refused, with the closest allowed name when one is close enough (else
    the allowed names, when ``list_fields``)."""
    names = sorted(known)
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    if not names or not list_fields:
        return "unknown field"
    shown = ", ".join(names[:SHOWN_FIELDS]) + (", ..." if len(names) > SHOWN_FIELDS else "")
    return f"unknown field; the fields are: {shown}"


def fields_at(model: type[BaseModel] | None, path: Sequence[Any]) -> list[str] | None:
    """The field names of the model found at ``path`` (keys and list indices) inside
    ``model``; None when the path leaves the models."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue  # an item of a list: the same item model
        found = _model_in(current)
        if found is None or part not in found.model_fields:
            return None
        current = found.model_fields[part].annotation
    found = _model_in(current)
    return list(found.model_fields) if found is not None else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (itself, or inside Optional/list/dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def field_errors(
    problems: Sequence[Mapping[str, Any]], model: type[BaseModel] | None
) -> list[FieldError]:
    """One FieldError per pydantic error; an unknown key names the field it may have meant."""
    errors = []
    listed: set[tuple[Any, ...]] = set()  # the fields of each object are listed once
    for problem in problems:
        loc = list(problem.get("loc", ()))
        if len(loc) > 1 and loc[0] in LOCATIONS:
            loc = loc[1:]
        where = ".".join(clip(part) for part in loc) or "body"
        reason = str(problem.get("msg", "invalid"))
        if problem.get("type") == "extra_forbidden" and loc:
            known = fields_at(model, loc[:-1])
            if known is not None:
                parent = tuple(loc[:-1])
                reason = unknown_field_reason(str(loc[-1]), known, list_fields=parent not in listed)
                listed.add(parent)
        errors.append(FieldError(where, reason))
    return errors


def checked(model: type[M], data: Any, what: str) -> M:
    """``model.model_validate(data)``, or an InvalidInputError naming each bad field (and
    the field a mistyped key may have meant)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = field_errors(exc.errors(), model)
        first = fields[0]
        raise InvalidInputError(
            f"{what}: {first.field}: {first.reason}"
            + (f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""),
            errors=fields,
        ) from None
