"""The encrypted object store on a folder and on S3: round trips, range reads, and tamper
detection (a flipped byte, a swapped object, a truncated one) on read and on verify."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from medops.errors import IntegrityError, InvalidInputError, NotFoundError
from medops.storage.backends import Backend
from medops.storage.crypto import HEADER_SIZE, SEGMENT_SIZE, Header, Keyring
from medops.storage.objects import ObjectStore, key_record_prefix, object_key
from tests.helpers.datastore import digest_of, random_bytes

SIZE = 3 * SEGMENT_SIZE + 12345  # four segments, the last one short


def _store_one(store: ObjectStore, size: int = SIZE, seed: int = 1) -> tuple[str, bytes]:
    data = random_bytes(size, seed)
    digest = digest_of(data)
    store.put(digest, data)
    return digest, data


def _replace(backend: Backend, key: str, data: bytes) -> None:
    backend.put(key, [data])


def test_round_trip_encrypts_and_reads_back(store: ObjectStore) -> None:
    """An object reads back byte for byte, and what is stored is not the plaintext."""
    digest, data = _store_one(store)
    assert store.exists(digest)
    assert store.get(digest) == data
    raw = store.backend.get(object_key(digest))
    assert len(raw) == Header.parse(raw).stored_size
    assert data[:4096] not in raw
    store.verify(digest)


def test_put_is_idempotent_and_checks_the_digest(store: ObjectStore) -> None:
    """Putting the same object twice keeps the first copy; bytes that do not hash to the
    digest are refused and leave nothing stored."""
    digest, data = _store_one(store, 1000)
    first = store.backend.get(object_key(digest))
    store.put(digest, data)
    assert store.backend.get(object_key(digest)) == first
    other = digest_of(b"other")
    with pytest.raises(IntegrityError):
        store.put(other, b"not the other")
    assert not store.exists(other)
    assert list(store.backend.list_keys(key_record_prefix(other))) == []
    with pytest.raises(InvalidInputError):
        store.put("md5:abc", b"x")


def test_empty_object_round_trips(store: ObjectStore) -> None:
    """An empty object (a zero-length file's content) is one authenticated empty segment."""
    digest = digest_of(b"")
    store.put(digest, b"")
    assert store.get(digest) == b""
    assert store.get_range(digest, 0, 0) == b""


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 10), (SEGMENT_SIZE - 5, 10), (2 * SEGMENT_SIZE, SEGMENT_SIZE + 12345), (0, SIZE)],
)
def test_range_reads_match_the_plaintext(store: ObjectStore, offset: int, length: int) -> None:
    """A range read answers exactly the plaintext bytes, across segment boundaries too."""
    digest, data = _store_one(store)
    assert store.get_range(digest, offset, length) == data[offset : offset + length]


def test_range_outside_the_object_is_refused(store: ObjectStore) -> None:
    """A range past the end names the offset, instead of answering short."""
    digest, _ = _store_one(store, 100)
    with pytest.raises(InvalidInputError):
        store.get_range(digest, 90, 20)


def test_missing_and_delete(store: ObjectStore) -> None:
    """``missing`` names exactly the absent digests; delete removes data and key records."""
    digest, _ = _store_one(store, 500)
    absent = digest_of(b"absent")
    assert store.missing([digest, absent, absent]) == {absent}
    store.delete(digest)
    assert not store.exists(digest)
    assert list(store.backend.list_keys(key_record_prefix(digest))) == []
    with pytest.raises(NotFoundError):
        store.get(digest)
    assert list(store.digests()) == []


def test_flipped_byte_is_detected_on_read_range_and_verify(store: ObjectStore) -> None:
    """One flipped bit of ciphertext fails get, verify and a range read over its segment,
    while a range read of an untouched segment still answers."""
    digest, data = _store_one(store)
    raw = bytearray(store.backend.get(object_key(digest)))
    raw[HEADER_SIZE + SEGMENT_SIZE + 40] ^= 0x01  # inside the second segment
    _replace(store.backend, object_key(digest), bytes(raw))
    with pytest.raises(IntegrityError):
        store.get(digest)
    with pytest.raises(IntegrityError):
        store.verify(digest)
    with pytest.raises(IntegrityError):
        store.get_range(digest, SEGMENT_SIZE + 10, 100)
    assert store.get_range(digest, 0, 100) == data[:100]


def test_flipped_header_byte_is_detected(store: ObjectStore) -> None:
    """The header is authenticated too: changing the declared size fails every read."""
    digest, _ = _store_one(store)
    raw = bytearray(store.backend.get(object_key(digest)))
    raw[HEADER_SIZE - 1] ^= 0x01  # the plaintext size
    _replace(store.backend, object_key(digest), bytes(raw))
    with pytest.raises(IntegrityError):
        store.get(digest)
    with pytest.raises(IntegrityError):
        store.get_range(digest, 0, 10)


def test_swapped_object_is_detected(store: ObjectStore) -> None:
    """Another object's data and key record put in this object's place fail: each segment
    is bound to the digest it was written for."""
    digest_a, _ = _store_one(store, 5000, seed=1)
    digest_b, _ = _store_one(store, 5000, seed=2)
    raw_b = store.backend.get(object_key(digest_b))
    header_b = Header.parse(raw_b)
    [record_key_b] = store.backend.list_keys(key_record_prefix(digest_b))
    record_b = store.backend.get(record_key_b)
    _replace(store.backend, object_key(digest_a), raw_b)
    _replace(store.backend, f"{key_record_prefix(digest_a)}{header_b.salt.hex()}", record_b)
    fresh = ObjectStore(store.backend, store.keyring)  # no cached data keys
    for read in (fresh.get, fresh.verify, lambda d: fresh.get_range(d, 0, 10)):
        with pytest.raises(IntegrityError):
            read(digest_a)


def test_truncated_and_extended_objects_are_detected(store: ObjectStore) -> None:
    """Dropping the last segment, a few bytes, or appending bytes fails read and verify."""
    digest, data = _store_one(store)
    raw = store.backend.get(object_key(digest))
    header = Header.parse(raw)
    last_at, _ = header.segment_span(header.segments - 1)
    for bad in (raw[:last_at], raw[:-3], raw + b"\0" * 16):
        _replace(store.backend, object_key(digest), bad)
        with pytest.raises(IntegrityError):
            store.get(digest)
        with pytest.raises(IntegrityError):
            store.verify(digest)
    _replace(store.backend, object_key(digest), raw[:-3])
    with pytest.raises(IntegrityError):
        store.get_range(digest, SIZE - 10, 10)
    _replace(store.backend, object_key(digest), raw)
    assert store.get(digest) == data


def test_missing_key_record_is_an_integrity_error(store: ObjectStore) -> None:
    """An object whose key record is gone cannot be read, and says so."""
    digest, _ = _store_one(store, 100)
    for key in list(store.backend.list_keys(key_record_prefix(digest))):
        store.backend.delete(key)
    fresh = ObjectStore(store.backend, store.keyring)
    with pytest.raises(IntegrityError, match="key record"):
        fresh.get(digest)


def test_an_unknown_kek_cannot_read(store: ObjectStore) -> None:
    """A store opened with other keys refuses to read, naming the KEK it lacks."""
    digest, _ = _store_one(store, 100)
    stranger = ObjectStore(store.backend, Keyring([Keyring.generate_key()]))
    with pytest.raises(IntegrityError, match="not held"):
        stranger.get(digest)


def test_rewrap_changes_only_the_key_record(store: ObjectStore, keyring: Keyring) -> None:
    """Re-wrapping under a new KEK leaves the encrypted data byte for byte as it was."""
    digest, data = _store_one(store)
    before = store.backend.get(object_key(digest))
    new_key = Keyring.generate_key()
    rotated = ObjectStore(store.backend, keyring.with_current(new_key))
    assert rotated.kek_id(digest) == keyring.current_id
    assert rotated.rewrap(digest) == new_key[0]
    assert rotated.kek_id(digest) == new_key[0]
    assert store.backend.get(object_key(digest)) == before
    only_new = ObjectStore(store.backend, Keyring([new_key]))
    assert only_new.get(digest) == data


def test_checked_put_skips_only_the_hash(store: ObjectStore) -> None:
    """``checked=True`` stores the same readable object (the reader still checks the
    digest, so a caller that lied is caught on the first read)."""
    data = random_bytes(SEGMENT_SIZE + 1, 5)
    digest = digest_of(data)
    store.put(digest, data, checked=True)
    assert store.get(digest) == data
    liar = digest_of(b"something else")
    store.put(liar, data, checked=True)
    with pytest.raises(IntegrityError):
        store.get(liar)


def test_racing_puts_of_one_digest_leave_a_readable_object(store: ObjectStore) -> None:
    """Two writers storing the same new object at once (two uploads of one pack) never
    leave one's data paired with the other's key: each key record is named by its salt."""
    data = random_bytes(2 * SEGMENT_SIZE, 9)
    digest = digest_of(data)
    for _ in range(3):
        store.delete(digest)
        writers = [ObjectStore(store.backend, store.keyring, workers=1) for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.put(digest, data), writers))
        assert ObjectStore(store.backend, store.keyring).get(digest) == data
