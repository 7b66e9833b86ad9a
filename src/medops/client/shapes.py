"""``Shape``: what the SDK expects an answer to look like, checked by pydantic.

The SDK reads some forty kinds of answers. A ``TypeAdapter`` per kind, built when the SDK is
imported, cost every ``medops`` command the building of all of them; a ``Shape`` builds its
adapter the first time an answer of its kind arrives.

(Deferring the models themselves, pydantic's ``defer_build``, was measured too: it saved
another 0.13 s of a remote command, but FastAPI then builds body models outside its own
warning filters, where pydantic warns about the body's alias; the models stay built at import.)
"""

from __future__ import annotations

import functools
from typing import Any, Generic, TypeVar, overload

from pydantic import TypeAdapter

T = TypeVar("T")


class Shape(Generic[T]):
    """What an answer must look like: a ``TypeAdapter`` built the first time it is used.

    The SDK declares one per answer it reads (about forty) and a command reads one or two."""

    @overload
    def __init__(self, kind: type[T]) -> None: ...

    @overload
    def __init__(self, kind: Any) -> None: ...

    def __init__(self, kind: Any) -> None:
        self._kind = kind

    @functools.cached_property
    def _adapter(self) -> TypeAdapter[T]:
        adapter: TypeAdapter[T] = TypeAdapter(self._kind)
        return adapter

    def validate_python(self, value: Any) -> T:
        """The value checked (and converted) against the shape."""
        return self._adapter.validate_python(value)

    def validate_json(self, data: bytes | str) -> T:
        """The JSON document parsed and checked against the shape."""
        return self._adapter.validate_json(data)
