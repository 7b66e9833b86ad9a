"""The interface of a place that holds encrypted objects: the local store's folder, a folder
remote, or an S3 bucket. Keys are relative paths (``objects/ab/<hex>``); values are opaque
bytes (already encrypted). Every write is atomic: a reader sees the whole value or none.

Multipart uploads are part of the interface so that a transfer of a large object can be
resumed after a crash from the parts already sent, whatever the backend: S3's own multipart
upload, or part files in a folder that ``complete_multipart`` joins and renames into place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

Buffer = bytes | bytearray | memoryview


@runtime_checkable
class Backend(Protocol):
    """Atomic, whole-value storage of opaque bytes by key, with ranged reads and multipart."""

    @property
    def url(self) -> str:
        """Where it is (``s3://bucket/prefix`` or a folder path), for messages and rows."""
        ...

    def put(self, key: str, chunks: Iterable[Buffer]) -> None:
        """Store the concatenation of ``chunks`` under ``key``, atomically, replacing; an
        exception raised while ``chunks`` is consumed leaves nothing stored."""
        ...

    def get(self, key: str) -> bytes:
        """The whole value; NotFoundError when absent."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end); NotFoundError when absent."""
        ...

    def size(self, key: str) -> int | None:
        """The value's size, or None when absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent: nothing to do)."""
        ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``."""
        ...

    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload to ``key``; returns its id."""
        ...

    def put_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        """Send part ``number`` (from 1); returns its tag, needed to complete."""
        ...

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str]] | None:
        """The parts the backend holds for an upload, or None when the upload is gone."""
        ...

    def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join the parts, in number order, into ``key``, atomically."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an upload and its parts."""
        ...
