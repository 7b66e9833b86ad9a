"""Manifest diff: added, removed, modified, renamed and unchanged files."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from medops.datasets.diff import diff
from medops.datasets.schemas import FileEntry


def _entry(path: str, content: str) -> FileEntry:
    return FileEntry(
        path=path,
        size=len(content),
        digest="sha256:" + hashlib.sha256(content.encode()).hexdigest(),
    )


def test_each_kind_of_change() -> None:
    """A moved content is a rename, a changed content a modification, a copy an addition."""
    old = [_entry("a", "1"), _entry("b", "2"), _entry("c", "3"), _entry("d", "4")]
    new = [_entry("a", "1"), _entry("b", "X"), _entry("e", "3"), _entry("f", "1"), _entry("g", "9")]
    result = diff(old, new)
    assert [(r.old_path, r.new_path) for r in result.renamed] == [("c", "e")]
    assert [m.path for m in result.modified] == ["b"]
    assert [a.path for a in result.added] == ["f", "g"]
    assert [r.path for r in result.removed] == ["d"]
    assert result.unchanged == 1
    assert result.changed


def test_same_manifest_has_no_changes() -> None:
    """Diffing a manifest against itself reports everything unchanged."""
    files = [_entry("x/y", "a"), _entry("z", "b")]
    result = diff(files, list(reversed(files)))
    assert not result.changed
    assert result.unchanged == 2


paths = st.text(alphabet="abc/", min_size=1, max_size=4).filter(
    lambda p: not p.startswith("/") and not p.endswith("/") and "//" not in p
)
manifests = st.dictionaries(paths, st.sampled_from("pqrs"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(manifests, manifests)
def test_diff_accounts_for_every_path(old_map: dict[str, str], new_map: dict[str, str]) -> None:
    """Applying the diff to the old manifest gives the new one, and the counts add up."""
    old = [_entry(p, c) for p, c in old_map.items()]
    new = [_entry(p, c) for p, c in new_map.items()]
    result = diff(old, new)
    rebuilt = {e.path: e for e in old}
    for entry in result.removed:
        del rebuilt[entry.path]
    for moved in result.renamed:
        source = rebuilt.pop(moved.old_path)
        assert source.digest == moved.digest
        rebuilt[moved.new_path] = source.model_copy(update={"path": moved.new_path})
    for changed in result.modified:
        rebuilt[changed.path] = changed.new
    for entry in result.added:
        rebuilt[entry.path] = entry
    assert rebuilt == {e.path: e for e in new}
    assert result.unchanged + len(result.modified) + len(result.removed) + len(
        result.renamed
    ) == len(old)
