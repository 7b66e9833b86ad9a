"""Packing files into objects and writing them back out (checkout), verified and atomic."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medops.datasets.hashing import hash_files
from medops.datasets.materialize import materialize
from medops.datasets.packformat import verify_pack
from medops.datasets.packing import PackedObject, Packer
from medops.datasets.scan import scan
from medops.datasets.schemas import FileEntry, StoredFile
from medops.errors import ConflictError, IntegrityError, InvalidInputError


def _dataset(root: Path) -> dict[str, bytes]:
    contents = {f"small/{i:03}.dcm": os.urandom(100 + i * 50) for i in range(120)}
    contents["big/volume.nii"] = os.urandom(2_500_000)
    contents["big/copy.nii"] = contents["big/volume.nii"]
    contents["empty"] = b""
    contents["small/dup"] = contents["small/000.dcm"]
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


def _pack(root: Path) -> tuple[list[FileEntry], dict[str, StoredFile], dict[str, PackedObject]]:
    files = scan([root])
    entries = hash_files(files)
    packer = Packer(workers=2, pack_threshold=10_000, pack_target=100_000, chunk_size=1_000_000)
    objects = {obj.digest: obj for obj in packer.objects(list(zip(files, entries, strict=True)))}
    return entries, packer.stored, objects


def test_packer_makes_packs_and_chunks_with_bounded_sizes(tmp_path: Path) -> None:
    """Small files land in packs within the target, large ones in chunks; duplicates once."""
    _dataset(tmp_path / "src")
    entries, stored, objects = _pack(tmp_path / "src")
    assert set(stored) == {e.digest for e in entries}
    for obj in objects.values():
        assert "sha256:" + hashlib.sha256(obj.data).hexdigest() == obj.digest
        assert obj.size == len(obj.data)
        if obj.kind == "pack":
            verify_pack(obj.data)
            assert obj.size < 100_000 + 20_000
        else:
            assert obj.size <= 1_000_000
    assert sorted(len(s.parts) for s in stored.values())[-1] == 3  # 2.5 MB in 1 MB chunks
    assert sum(o.kind == "chunk" for o in objects.values()) == 3


def test_packer_refuses_file_changed_since_hashing(tmp_path: Path) -> None:
    """A file rewritten (same size) after hashing is caught when the packer reads it."""
    (tmp_path / "f").write_bytes(b"aaaa")
    files = scan([tmp_path / "f"])
    entries = hash_files(files)
    (tmp_path / "f").write_bytes(b"bbbb")
    with pytest.raises(InvalidInputError, match="changed since it was hashed"):
        list(Packer().objects(list(zip(files, entries, strict=True))))


def test_checkout_restores_exact_bytes_fetching_each_object_once(tmp_path: Path) -> None:
    """Every file comes back byte for byte; each object is fetched once; a rerun writes nothing."""
    contents = _dataset(tmp_path / "src")
    entries, stored, objects = _pack(tmp_path / "src")
    fetched: list[str] = []

    def fetch(digest: str) -> bytes:
        fetched.append(digest)
        return objects[digest].data

    summary = materialize(entries, stored, fetch, tmp_path / "out", workers=2)
    assert sorted(fetched) == sorted(objects)
    assert summary.written == len(contents)
    for name, data in contents.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    assert not list((tmp_path / "out").rglob("*.medops-tmp"))
    again = materialize(entries, stored, fetch, tmp_path / "out")
    assert (again.written, again.unchanged, again.objects_fetched) == (0, len(contents), 0)


def test_checkout_refuses_to_overwrite_a_different_file_unless_forced(tmp_path: Path) -> None:
    """A different existing file is a conflict and nothing is written; force replaces it."""
    contents = _dataset(tmp_path / "src")
    entries, stored, objects = _pack(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "empty").write_bytes(b"not empty")
    with pytest.raises(ConflictError, match="empty"):
        materialize(entries, stored, lambda d: objects[d].data, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["empty"]
    materialize(entries, stored, lambda d: objects[d].data, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "empty").read_bytes() == contents["empty"]


def test_checkout_detects_tampered_object(tmp_path: Path) -> None:
    """Bytes that do not match the manifest raise IntegrityError and leave no file behind."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "one").write_bytes(b"precious")
    entries, stored, objects = _pack(tmp_path / "src")

    def fetch(digest: str) -> bytes:
        data = bytearray(objects[digest].data)
        data[-1] ^= 1
        return bytes(data)

    with pytest.raises(IntegrityError):
        materialize(entries, stored, fetch, tmp_path / "out")
    assert not (tmp_path / "out" / "one").exists()
    assert not list((tmp_path / "out").iterdir())


def test_checkout_refuses_paths_leaving_the_destination(tmp_path: Path) -> None:
    """A folder in the destination that is a link to elsewhere is refused before writing."""
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "f").write_bytes(b"x")
    entries, stored, objects = _pack(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConflictError, match="outside"):
        materialize(entries, stored, lambda d: objects[d].data, tmp_path / "out")
    assert not (tmp_path / "elsewhere" / "f").exists()


def test_abandoned_iteration_stops_the_producer(tmp_path: Path) -> None:
    """A caller that stops after the first object does not leave the packer thread running."""
    import threading

    _dataset(tmp_path / "src")
    files = scan([tmp_path / "src"])
    entries = hash_files(files)
    packer = Packer(pack_threshold=1_000, pack_target=2_000, chunk_size=500_000)
    iterator = packer.objects(list(zip(files, entries, strict=True)))
    next(iterator)
    iterator.close()
    assert not any(t.name == "medops-packer" and t.is_alive() for t in threading.enumerate())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b/c", "b/d", "e/f/g", "h"]), st.binary(max_size=3000)),
        min_size=1,
        max_size=5,
        unique_by=lambda pair: pair[0].split("/")[0],
    ),
    st.integers(min_value=1, max_value=4000),
)
def test_pack_then_checkout_round_trip(files_given: list[tuple[str, bytes]], target: int) -> None:
    """Whatever the files and pack sizes, a checkout gives back exactly the bytes packed."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, data in files_given:
            (root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "src" / name).write_bytes(data)
        files = scan([root / "src"])
        entries = hash_files(files, workers=2)
        packer = Packer(pack_threshold=max(1, target // 2), pack_target=target, chunk_size=700)
        objects = {o.digest: o.data for o in packer.objects(list(zip(files, entries, strict=True)))}
        materialize(entries, packer.stored, objects.__getitem__, root / "out", workers=2)
        for name, data in files_given:
            assert (root / "out" / name).read_bytes() == data
