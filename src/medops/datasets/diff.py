"""What changed between two manifests: added, removed, modified and renamed files. Pure.

A path in both with a different digest (or size) is *modified*. A path only in the old
manifest whose digest appears at a path only in the new one is *renamed* (the content moved);
when several removed and several added paths share a digest they are paired in path order,
and what is left over stays removed or added. A content that stays at its old path and also
appears at a new one is *added* (a copy, not a move).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from medops.datasets.schemas import FileEntry

__all__ = ["ManifestDiff", "ModifiedFile", "RenamedFile", "diff"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModifiedFile(_Frozen):
    """A path in both versions whose content differs."""

    path: str
    old: FileEntry
    new: FileEntry


class RenamedFile(_Frozen):
    """A content that moved from one path to another."""

    old_path: str
    new_path: str
    digest: str
    size: int


class ManifestDiff(_Frozen):
    """The difference between two versions, each list sorted by path."""

    added: tuple[FileEntry, ...]
    removed: tuple[FileEntry, ...]
    modified: tuple[ModifiedFile, ...]
    renamed: tuple[RenamedFile, ...]
    unchanged: int

    @property
    def changed(self) -> bool:
        """Whether anything at all differs."""
        return bool(self.added or self.removed or self.modified or self.renamed)


def diff(old: Sequence[FileEntry], new: Sequence[FileEntry]) -> ManifestDiff:
    """The difference from ``old`` to ``new`` (each with unique paths, in any order)."""
    before = {entry.path: entry for entry in old}
    after = {entry.path: entry for entry in new}
    modified: list[ModifiedFile] = []
    unchanged = 0
    for path in sorted(before.keys() & after.keys()):
        was, now = before[path], after[path]
        if (was.digest, was.size) == (now.digest, now.size):
            unchanged += 1
        else:
            modified.append(ModifiedFile(path=path, old=was, new=now))
    gone = defaultdict(list)
    for path in sorted(before.keys() - after.keys()):
        gone[before[path].digest].append(before[path])
    added: list[FileEntry] = []
    renamed: list[RenamedFile] = []
    for path in sorted(after.keys() - before.keys()):
        entry = after[path]
        candidates = gone.get(entry.digest)
        if candidates:
            source = candidates.pop(0)
            renamed.append(
                RenamedFile(
                    old_path=source.path, new_path=path, digest=entry.digest, size=entry.size
                )
            )
        else:
            added.append(entry)
    removed = sorted((entry for rest in gone.values() for entry in rest), key=_path)
    return ManifestDiff(
        added=tuple(added),
        removed=tuple(removed),
        modified=tuple(modified),
        renamed=tuple(renamed),  # in new-path order
        unchanged=unchanged,
    )


def _path(entry: FileEntry) -> str:
    return entry.path
