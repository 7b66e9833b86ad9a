"""Rotation of the data key-encryption key (KEK).

1. ``add_key(settings)`` puts a fresh KEK first in the keyring file (the old ones stay, so
   everything stays readable); with ``MEDOPS_DATA_KEK`` the operator prepends the new key to
   the variable instead.
2. ``rotate(database, store, keyring)`` re-wraps every object's data key and every sealed
   secret of the database (``data_deid_projects.sealed_secret``,
   ``data_deid_mappings.sealed_original``) under the current KEK. Encrypted data is not
   touched: only key records (a few dozen bytes each) and the key part of sealed values are
   rewritten. It can be run again at any time (what is current already is skipped), so a
   rotation interrupted half way is finished by the next run.
3. Once a rotation has finished, the old KEK can be dropped from the keyring (and from any
   machine that pulls: a remote's key records are re-wrapped when pushed again, see
   docs/datasets-storage.md).
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from medops.config import Settings
from medops.datasets.tables import DataObject, DeidMapping, DeidProject
from medops.db.engine import Database
from medops.errors import ConfigurationError
from medops.storage.crypto import Keyring, parse_keys, sealed_kek_id, write_keyring_file
from medops.storage.objects import ObjectStore

_BATCH = 500


class RotationSummary(BaseModel):
    """What a rotation re-wrapped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kek_id: str = Field(description="The KEK everything is wrapped with now.")
    objects: int = Field(description="Objects looked at.")
    rewrapped: int = Field(description="Objects whose data key was re-wrapped.")
    secrets: int = Field(description="Sealed database values re-wrapped.")
    blobs: int = Field(default=0, description="Registry blobs (model artifacts) looked at.")
    blobs_rewrapped: int = Field(
        default=0, description="Registry blobs whose data key was re-wrapped."
    )
    seconds: float


def add_key(settings: Settings) -> str:
    """Make a fresh KEK the current one in the keyring file; returns its id."""
    if settings.data_kek is not None:
        msg = (
            "the data keys come from MEDOPS_DATA_KEK: put a new id:base64 key first in it "
            "(Keyring.generate_key makes one), then run the rotation"
        )
        raise ConfigurationError(msg)
    path = settings.resolved_data_kek_file
    keys = parse_keys(path.read_text(), source=str(path)) if path.exists() else []
    fresh = Keyring.generate_key()
    write_keyring_file(path, [fresh, *keys], exclusive=False)
    return fresh[0]


def rotate(database: Database, store: ObjectStore, keyring: Keyring) -> RotationSummary:
    """Re-wrap every data key of ``store`` and every sealed secret under the current KEK."""
    started = time.monotonic()
    objects = rewrapped = 0
    moved: list[str] = []
    for digest in store.digests():
        objects += 1
        before = store.kek_id(digest)
        if before != store.rewrap(digest):
            rewrapped += 1
            moved.append(digest)
    for start in range(0, len(moved), _BATCH):
        batch = moved[start : start + _BATCH]
        with database.transaction() as session:
            for row in session.scalars(select(DataObject).where(DataObject.digest.in_(batch))):
                row.kek_id = store.keyring.current_id
    secrets = _reseal_projects(database, keyring) + _reseal_mappings(database, keyring)
    return RotationSummary(
        kek_id=store.keyring.current_id,
        objects=objects,
        rewrapped=rewrapped,
        secrets=secrets,
        seconds=round(time.monotonic() - started, 3),
    )


def _reseal_projects(database: Database, keyring: Keyring) -> int:
    count = 0
    with database.transaction() as session:
        for project in session.scalars(select(DeidProject).with_for_update()):
            if sealed_kek_id(project.sealed_secret) != keyring.current_id:
                project.sealed_secret = keyring.reseal(project.sealed_secret)
                count += 1
    return count


def _reseal_mappings(database: Database, keyring: Keyring) -> int:
    count = 0
    last = 0
    while True:
        with database.transaction() as session:
            rows = list(
                session.scalars(
                    select(DeidMapping)
                    .where(DeidMapping.id > last)
                    .order_by(DeidMapping.id)
                    .limit(_BATCH)
                    .with_for_update()
                )
            )
            for row in rows:
                if sealed_kek_id(row.sealed_original) != keyring.current_id:
                    row.sealed_original = keyring.reseal(row.sealed_original)
                    count += 1
        if not rows:
            return count
        last = rows[-1].id
