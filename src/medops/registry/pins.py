"""Pinning a model version to the dataset versions it was made with.

A registration names ``NAME@VERSION`` (a number, ``latest`` or a root prefix) for its
training, validation and reference data; each is resolved here against the dataset tables
(checked to exist and not to be deleted) in the registration's transaction. The registry
cannot import lineage (lineage is built on it), so the wiring (``services.py``) hands the
registry the functions that record the edges (``PinHook``), as ``followers.py`` does for
serving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.context import Context
from medops.datasets.schemas import DatasetRef
from medops.datasets.tables import DatasetVersion
from medops.errors import FieldError, InvalidInputError

PinRole = Literal["training", "validation", "reference"]
DATASET_URI_PREFIX = "medops:dataset/"


@dataclass(frozen=True)
class Pin:
    """A dataset version a model version was made with, and for what."""

    role: PinRole
    dataset: str  # NAME@NUMBER
    version_id: str
    root: str  # sha256:<hex>


@dataclass(frozen=True)
class Registered:
    """A model version just registered (its row flushed, its transaction open)."""

    model: str
    version: int
    version_id: str
    actor: str


# (session, the version, its pins): record what lineage keeps, in the same transaction.
PinHook = Callable[[Session, Registered, list[Pin]], None]
# (who, NAME@VERSION, path in the version, purpose) -> the file's bytes, read and verified
# by the dataset service (audited there as a read with its purpose).
DataReader = Callable[[Context, str, str, str], bytes]


def _refuse(field: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {reason}", errors=[FieldError(field, reason)])


def find_dataset(
    session: Session, ref: DatasetRef, *, field: str, include_deleted: bool = False
) -> DatasetVersion | None:
    """The dataset version ``ref`` names (None: there is none); ``latest`` is the newest
    version not deleted. An ambiguous root prefix is refused naming ``field``."""
    query = select(DatasetVersion).where(DatasetVersion.dataset == ref.name)
    if ref.version == "latest":
        if not include_deleted:
            query = query.where(DatasetVersion.deleted_at.is_(None))
        return session.scalars(query.order_by(DatasetVersion.number.desc()).limit(1)).first()
    if ref.version.isdigit():
        return session.scalars(query.where(DatasetVersion.number == int(ref.version))).first()
    found = list(session.scalars(query.where(DatasetVersion.root.startswith(ref.version)).limit(2)))
    if len(found) > 1:
        raise _refuse(field, f"{ref} matches more than one version: give more digits")
    return found[0] if found else None


def resolve_dataset(session: Session, text: str, *, field: str) -> DatasetVersion:
    """The dataset version ``text`` names, or a 422 naming ``field``: unknown, ambiguous
    root prefix, or deleted (a deleted version cannot be pinned)."""
    ref = DatasetRef.parse(text, field=field)
    row = find_dataset(session, ref, field=field)
    if row is None:
        raise _refuse(
            field, f"no dataset version {text} (see 'medops data list' and 'medops data show')"
        )
    if row.deleted_at is not None:
        raise _refuse(field, f"dataset version {ref.name}@{row.number} was deleted")
    return row


def pin(session: Session, role: PinRole, text: str, *, field: str) -> Pin:
    """Resolve ``text`` as the ``role`` data of a registration."""
    row = resolve_dataset(session, text, field=field)
    return Pin(role, f"{row.dataset}@{row.number}", row.id, row.root)
