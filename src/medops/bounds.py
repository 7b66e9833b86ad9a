"""Bounds of the integers a client sends, shared by the schemas of every domain.

Python integers have no size, but the databases' do (SQLite and PostgreSQL store 64 bits; a
``version`` column is 32 bits on PostgreSQL), so an unbounded number reaches the database and
fails there. Every integer of a request body, path or query is bounded in its schema instead,
so a value out of range is a 422 naming the field before any work starts;
tests/security/test_input_edges.py walks the OpenAPI document and fails on an integer without
a maximum.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

INT32_MAX: Final = 2**31 - 1
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# A model version number: 1 to 2^31 - 1 (what a 32-bit column holds).
VersionNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]
# An integer a model reads or predicts (ONNX class labels and category values are int64).
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
