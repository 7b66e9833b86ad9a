"""KEK rotation: every object's data key and every sealed database secret re-wrapped under
the new KEK, without touching encrypted data; the old KEK is then no longer needed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from medops.clock import SystemClock
from medops.config import Settings
from medops.datasets.keys import add_key, rotate
from medops.datasets.tables import DataObject, DeidMapping, DeidProject
from medops.datasets.transfer import pull, push
from medops.db.engine import Database
from medops.storage.backends import LocalBackend
from medops.storage.crypto import Keyring, sealed_kek_id
from medops.storage.objects import ObjectStore, object_key, open_store
from tests.helpers.datastore import digest_of, random_bytes


def _seed(database: Database, store: ObjectStore) -> dict[str, bytes]:
    objects = {}
    now = SystemClock().now()
    with database.transaction() as session:
        for seed, size in enumerate([10, 2_500_000, 0]):
            data = random_bytes(size, seed)
            digest = digest_of(data)
            stored = store.put(digest, data)
            objects[digest] = data
            session.add(
                DataObject(
                    digest=digest,
                    kind="pack",
                    size=stored,
                    kek_id=store.keyring.current_id,
                    created_at=now,
                )
            )
        session.add(
            DeidProject(
                name="demo",
                sealed_secret=store.keyring.seal(b"s" * 32, context=b"project:demo"),
                created_at=now,
            )
        )
        session.flush()
        for number in range(3):
            session.add(
                DeidMapping(
                    project="demo",
                    kind="patient",
                    pseudonym=f"P{number}",
                    sealed_original=store.keyring.seal(
                        f"MRN-{number}".encode(), context=f"mapping:P{number}".encode()
                    ),
                    created_at=now,
                )
            )
    return objects


def test_rotation_rewraps_keys_and_secrets_not_data(database: Database, settings: Settings) -> None:
    """After add_key and rotate, every key record and sealed value names the new KEK, the
    ciphertext of every object is unchanged, and a keyring holding only the new KEK reads
    everything."""
    store = open_store(settings)
    objects = _seed(database, store)
    old_id = store.keyring.current_id
    ciphertext = {d: store.backend.get(object_key(d)) for d in objects}

    new_id = add_key(settings)
    keyring = Keyring.from_settings(settings)
    assert keyring.ids == [new_id, old_id]
    rotated = ObjectStore(store.backend, keyring)
    summary = rotate(database, rotated, keyring)
    assert (summary.kek_id, summary.objects, summary.rewrapped, summary.secrets) == (
        new_id,
        3,
        3,
        4,
    )
    assert {d: store.backend.get(object_key(d)) for d in objects} == ciphertext

    only_new = Keyring([k for k in keyring.items() if k[0] == new_id])  # the old KEK dropped
    fresh = ObjectStore(store.backend, only_new)
    for digest, data in objects.items():
        assert fresh.kek_id(digest) == new_id
        assert fresh.get(digest) == data
    with database.session() as session:
        assert set(session.scalars(select(DataObject.kek_id))) == {new_id}
        project = session.get(DeidProject, "demo")
        assert project is not None
        assert only_new.open(project.sealed_secret, context=b"project:demo") == b"s" * 32
        for row in session.scalars(select(DeidMapping)):
            assert sealed_kek_id(row.sealed_original) == new_id
            assert only_new.open(
                row.sealed_original, context=f"mapping:{row.pseudonym}".encode()
            ) == (f"MRN-{row.pseudonym[1:]}".encode())
    again = rotate(database, rotated, keyring)
    assert (again.rewrapped, again.secrets) == (0, 0)


def test_rotation_of_an_empty_store(database: Database, settings: Settings) -> None:
    """Rotating a store with nothing in it is a no-op that still reports the current KEK."""
    store = open_store(settings)
    summary = rotate(database, store, store.keyring)
    assert (summary.objects, summary.rewrapped, summary.secrets) == (0, 0, 0)
    assert summary.kek_id == store.keyring.current_id


def test_push_after_rotation_resends_key_records(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    """After a rotation, push with resend_keys replaces the remote's key records (the data
    stays), so a machine holding only the new KEK can pull."""
    store = open_store(settings)
    objects = _seed(database, store)
    remote = LocalBackend(tmp_path / "remote")
    push(database, store, remote, "remote", list(objects))
    data_before = {d: remote.get(object_key(d)) for d in objects}
    add_key(settings)
    keyring = Keyring.from_settings(settings)
    rotated = ObjectStore(store.backend, keyring)
    rotate(database, rotated, keyring)
    summary = push(database, rotated, remote, "remote", list(objects), resend_keys=True)
    assert (summary.objects, summary.skipped) == (0, 3)
    assert {d: remote.get(object_key(d)) for d in objects} == data_before
    only_new = ObjectStore(LocalBackend(tmp_path / "b"), Keyring(keyring.items()[:1]))
    pull(database, only_new, remote, "remote", list(objects))
    for digest, data in objects.items():
        assert only_new.get(digest) == data
