"""The backends on their own: choosing one from a URL, atomic whole-value writes, keys that
cannot escape the folder, and multipart uploads (completed, listed, aborted) on a folder and
on moto_server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medops.config import Settings
from medops.errors import ConfigurationError, InvalidInputError, NotFoundError
from medops.storage.backends import Backend, LocalBackend, open_remote
from medops.storage.backends.s3 import S3Backend

MIB = 1024 * 1024


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url="sqlite://", **values)  # type: ignore[arg-type]


def test_open_remote_picks_the_backend_from_the_url(tmp_path: Path) -> None:
    """s3:// gives S3 (bucket and prefix split), a path or file:// a folder; no remote set
    or another scheme is a one-line error."""
    settings = _settings(tmp_path, data_s3_endpoint_url="http://127.0.0.1:9")
    s3 = open_remote(settings, "s3://bucket/team/data/")
    assert isinstance(s3, S3Backend)
    assert (s3.bucket, s3.prefix, s3.url) == ("bucket", "team/data", "s3://bucket/team/data")
    assert isinstance(open_remote(settings, str(tmp_path / "r")), LocalBackend)
    folder = open_remote(settings, f"file://{tmp_path}/r")
    assert folder.url == str(tmp_path / "r")
    assert isinstance(
        open_remote(_settings(tmp_path, data_remote=str(tmp_path)), None), LocalBackend
    )
    with pytest.raises(ConfigurationError, match="MEDOPS_DATA_REMOTE"):
        open_remote(settings)
    with pytest.raises(InvalidInputError, match="ftp"):
        open_remote(settings, "ftp://host/x")
    with pytest.raises(InvalidInputError, match="bucket"):
        open_remote(settings, "s3:///prefix")


def test_folder_keys_cannot_escape(tmp_path: Path) -> None:
    """Keys with .., empty or hidden parts are refused before touching the disk."""
    backend = LocalBackend(tmp_path / "store")
    for key in ("../x", "a//b", ".tmp/x", "", "a/./b"):
        with pytest.raises(InvalidInputError):
            backend.put(key, [b"x"])


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """An exception while the value is being produced leaves neither the key nor a temp file."""
    backend = LocalBackend(tmp_path / "store")

    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        backend.put("objects/ab/x", chunks())
    assert backend.size("objects/ab/x") is None
    assert list((tmp_path / "store" / ".tmp").iterdir()) == []


def test_multipart_complete_list_and_abort(storage: Backend) -> None:
    """Parts sent in any order join in number order; an upload lists its parts until it is
    completed or aborted, and is invisible under its key until completed."""
    parts = [bytes([n]) * (5 * MIB) for n in (1, 2)] + [b"tail"]
    upload = storage.start_multipart("objects/aa/big")
    tags = {}
    for number in (3, 1, 2):
        tags[number] = storage.put_part("objects/aa/big", upload, number, parts[number - 1])
    assert storage.size("objects/aa/big") is None
    held = storage.list_parts("objects/aa/big", upload)
    assert held is not None
    assert sorted(n for n, _ in held) == [1, 2, 3]
    storage.complete_multipart("objects/aa/big", upload, sorted(tags.items()))
    assert storage.get("objects/aa/big") == b"".join(parts)
    assert storage.get_range("objects/aa/big", 5 * MIB - 2, 4) == b"\x01\x01\x02\x02"

    dropped = storage.start_multipart("objects/aa/other")
    storage.put_part("objects/aa/other", dropped, 1, b"x")
    storage.abort_multipart("objects/aa/other", dropped)
    assert storage.list_parts("objects/aa/other", dropped) is None
    assert storage.size("objects/aa/other") is None


def test_missing_values_are_not_found(storage: Backend) -> None:
    """Reading an absent key is NotFoundError; its size is None; deleting it is a no-op."""
    with pytest.raises(NotFoundError):
        storage.get("objects/zz/none")
    with pytest.raises(NotFoundError):
        storage.get_range("objects/zz/none", 0, 10)
    assert storage.size("objects/zz/none") is None
    storage.delete("objects/zz/none")
    storage.put("objects/zz/one", [b"a", memoryview(b"bc")])
    assert list(storage.list_keys("objects/")) == ["objects/zz/one"]
