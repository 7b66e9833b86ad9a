"""Scanning folders, hashing in parallel, and the stat cache that skips unchanged files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from medops.datasets.hashing import hash_files
from medops.datasets.scan import scan
from medops.datasets.statcache import StatCache
from medops.errors import InvalidInputError


def _tree(root: Path) -> dict[str, bytes]:
    contents = {
        "a.txt": b"alpha",
        "sub/b.bin": os.urandom(3 * 1024 * 1024 + 7),
        "sub/deeper/c": b"",
        "sub/deeper/d": b"delta" * 1000,
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_scan_folder_and_file(tmp_path: Path) -> None:
    """A folder gives paths relative to it, a file its name; the result is sorted by path."""
    contents = _tree(tmp_path / "data")
    (tmp_path / "extra.csv").write_bytes(b"x,y\n")
    files = scan([tmp_path / "data", tmp_path / "extra.csv"])
    assert [f.path for f in files] == sorted([*contents, "extra.csv"])
    assert {f.path: f.size for f in files}["sub/b.bin"] == len(contents["sub/b.bin"])


def test_scan_refuses_clash_loop_and_special_files(tmp_path: Path) -> None:
    """Two sources for one path, a symlink loop and a FIFO are refused with a clear error."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "x").write_bytes(b"1")
    (tmp_path / "two" / "x").write_bytes(b"2")
    with pytest.raises(InvalidInputError, match="would both be 'x'"):
        scan([tmp_path / "one", tmp_path / "two"])
    (tmp_path / "one" / "loop").symlink_to(tmp_path / "one")
    with pytest.raises(InvalidInputError, match="loop"):
        scan([tmp_path / "one"])
    (tmp_path / "one" / "loop").unlink()
    os.mkfifo(tmp_path / "one" / "pipe")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        scan([tmp_path / "one"])
    with pytest.raises(InvalidInputError, match="does not exist"):
        scan([tmp_path / "missing"])


def test_scan_follows_file_links(tmp_path: Path) -> None:
    """A symlink to a file is recorded with the target's content under the link's name."""
    (tmp_path / "d").mkdir()
    (tmp_path / "target").write_bytes(b"content")
    (tmp_path / "d" / "link").symlink_to(tmp_path / "target")
    (files,) = scan([tmp_path / "d"])
    assert files.path == "link"
    assert hash_files([files])[0].digest == _digest(b"content")


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_hash_files_matches_hashlib_in_order(tmp_path: Path, workers: int) -> None:
    """Parallel hashing gives hashlib's digests, in input order, for small and large files."""
    contents = _tree(tmp_path)
    for i in range(300):
        contents[f"many/{i:03}"] = os.urandom(i * 37)
        (tmp_path / "many").mkdir(exist_ok=True)
        (tmp_path / f"many/{i:03}").write_bytes(contents[f"many/{i:03}"])
    files = scan([tmp_path])
    seen: list[tuple[int, int]] = []
    entries = hash_files(files, workers=workers, progress=lambda d, t: seen.append((d, t)))
    assert [e.path for e in entries] == [f.path for f in files]
    assert {e.path: e.digest for e in entries} == {p: _digest(c) for p, c in contents.items()}
    assert seen[-1] == (sum(map(len, contents.values())),) * 2


def test_stat_cache_skips_unchanged_and_sees_changes(tmp_path: Path) -> None:
    """An unchanged file's digest comes from the cache; a rewritten one is hashed again."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a").write_bytes(b"one")
    (data / "b").write_bytes(b"two")
    past = time.time_ns() - 10**10
    for name in ("a", "b"):
        os.utime(data / name, ns=(past, past))
    time.sleep(0.15)  # the ctime must be settled too
    cache = StatCache(tmp_path / "cache.sqlite")
    first = hash_files(scan([data]), cache=cache)
    assert cache.lookup(scan([data])) == {e.path: e.digest for e in first}
    (data / "b").write_bytes(b"TWO")
    again = hash_files(scan([data]), cache=cache)
    assert {e.path: e.digest for e in again} == {"a": _digest(b"one"), "b": _digest(b"TWO")}
    assert (tmp_path / "cache.sqlite").stat().st_mode & 0o777 == 0o600
    cache.close()


def test_stat_cache_does_not_trust_racy_files(tmp_path: Path) -> None:
    """A file modified just before it was read is not remembered (it could change unseen)."""
    (tmp_path / "new").write_bytes(b"fresh")
    with StatCache(tmp_path / "cache.sqlite") as cache:
        hash_files(scan([tmp_path / "new"]), cache=cache)
        assert cache.lookup(scan([tmp_path / "new"])) == {}


def test_file_changed_during_hashing_is_refused(tmp_path: Path) -> None:
    """A file whose size changed since the scan stops hashing with a message naming it."""
    (tmp_path / "f").write_bytes(b"12345")
    files = scan([tmp_path / "f"])
    (tmp_path / "f").write_bytes(b"123456")
    with pytest.raises(InvalidInputError, match="changed size"):
        hash_files(files)


def test_scan_normalises_unicode_names_to_nfc(tmp_path: Path) -> None:
    """A name written decomposed (NFD) is listed in NFC, as identity.normal_path does."""
    decomposed = "cafe\u0301"
    (tmp_path / "d" / decomposed).mkdir(parents=True)
    (tmp_path / "d" / decomposed / "re\u0301sume\u0301.txt").write_bytes(b"x")
    (file,) = scan([tmp_path / "d"])
    assert file.path == "caf\u00e9/r\u00e9sum\u00e9.txt"
