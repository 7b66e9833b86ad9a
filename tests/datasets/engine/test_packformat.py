"""The pack format: encode/decode round trips, and strict refusal of malformed packs."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medops.datasets.packformat import (
    HEADER_SIZE,
    MAGIC,
    encode_pack,
    iter_pack,
    read_pack_index,
    verify_pack,
)
from medops.errors import IntegrityError


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30, unique=True))
def test_round_trip(contents: list[bytes]) -> None:
    """Every file encoded into a pack comes back at its offset with its digest, in order."""
    files = [(_digest(data), data) for data in contents]
    pack = encode_pack(files)
    entries = verify_pack(pack)
    assert [entry.digest for entry in entries] == [digest for digest, _ in files]
    for (digest, data), (entry, view) in zip(files, iter_pack(pack), strict=True):
        assert entry.digest == digest
        assert bytes(view) == data
        assert pack[entry.offset : entry.offset + entry.length] == data


def test_layout_is_magic_length_index_payload() -> None:
    """A pack starts with MDOPACK1, the index length big-endian, then the canonical index."""
    data = b"hello"
    pack = encode_pack([(_digest(data), data)])
    assert pack.startswith(MAGIC)
    (length,) = struct.unpack(">I", pack[8:12])
    index = pack[HEADER_SIZE : HEADER_SIZE + length]
    offset = HEADER_SIZE + length
    assert index == f'{{"files":[["{_digest(data)}",{offset},5]]}}'.encode()
    assert pack[offset:] == data


@pytest.mark.parametrize(
    "damage",
    [
        lambda pack: b"XDOPACK1" + pack[8:],
        lambda pack: pack[:-1],
        lambda pack: pack + b"x",
        lambda pack: pack[:8] + struct.pack(">I", 10**6) + pack[12:],
        lambda pack: pack[:12] + b"[" + pack[13:],
        lambda pack: pack[:6],
    ],
    ids=["magic", "truncated", "trailing", "index-length", "index-json", "short"],
)
def test_malformed_pack_is_refused(damage: object) -> None:
    """A pack with a damaged header, index or length raises IntegrityError."""
    files = [(_digest(b"a"), b"a"), (_digest(b"bb"), b"bb")]
    pack = encode_pack(files)
    with pytest.raises(IntegrityError):
        read_pack_index(damage(pack))  # type: ignore[operator]


def test_flipped_payload_byte_fails_verification() -> None:
    """A flipped byte in a file's range passes the index check but fails verify_pack."""
    pack = bytearray(encode_pack([(_digest(b"abc"), b"abc")]))
    pack[-1] ^= 1
    read_pack_index(bytes(pack))
    with pytest.raises(IntegrityError, match="does not match"):
        verify_pack(bytes(pack))
