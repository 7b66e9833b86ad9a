"""Dataset methods of the SDK client. ``add`` runs on the machine that holds the files:
scan -> hash (stat cache) -> de-identify DICOM (``deidentify=``, before anything leaves the
machine) -> index DICOM series and tabular schemas -> ask which contents the server lacks ->
pack -> upload -> commit. ``checkout`` asks for the manifest and a read grant (audited with the
purpose), fetches each object once and writes every file, verified against the manifest."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.datasets.records import (
    CheckoutOut,
    CommitIn,
    CommitOut,
    DeleteOut,
    DiffOut,
    HoldOut,
    ManifestOut,
    MappingIn,
    MissingOut,
    ReidentifyOut,
    SecretOut,
    SeriesIn,
    TransferOut,
    UploadOut,
    VerifyOut,
    VersionDetail,
)
from medops.datasets.schemas import DatasetOut, DatasetRef, DataSource, VersionOut

if TYPE_CHECKING:
    from medops.datasets.keys import RotationSummary

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# Objects stay under the server's default body limit (32 MiB): packs and chunks of 24 MiB.
UPLOAD_OBJECT_BYTES = 24 * 1024 * 1024

_DATASETS = Shape(list[DatasetOut])
_DATASET = Shape(DatasetOut)
_VERSIONS = Shape(list[VersionOut])
_DETAIL = Shape(VersionDetail)
_MANIFEST = Shape(ManifestOut)
_DIFF = Shape(DiffOut)
_COMMIT = Shape(CommitOut)
_MISSING = Shape(MissingOut)
_UPLOAD = Shape(UploadOut)
_CHECKOUT = Shape(CheckoutOut)
_VERIFY = Shape(VerifyOut)
_DELETE = Shape(DeleteOut)
_HOLD = Shape(HoldOut)
_HOLDS = Shape(list[HoldOut])
_SECRET = Shape(SecretOut)
_REID = Shape(ReidentifyOut)
_TRANSFER = Shape(TransferOut)


def _split(ref: str) -> tuple[str, str]:
    parsed = DatasetRef.parse(ref)
    return parsed.name, parsed.version


class DatasetCalls(Transport):
    """Dataset methods of the SDK client."""

    def dataset(self, name: str) -> DatasetOut:
        """One dataset."""
        return self._call("GET", f"/api/v1/datasets/{name}", _DATASET)

    def datasets(self) -> list[DatasetOut]:
        """Every dataset."""
        return self._call("GET", "/api/v1/datasets", _DATASETS)

    def dataset_versions(self, name: str, *, include_deleted: bool = False) -> list[VersionOut]:
        """A dataset's versions, newest first."""
        params = {"include_deleted": True} if include_deleted else {}
        return self._call("GET", f"/api/v1/datasets/{name}/versions", _VERSIONS, params=params)

    def dataset_version(self, ref: str) -> VersionDetail:
        """A version with its contents, DICOM series and holds."""
        name, version = _split(ref)
        return self._call("GET", f"/api/v1/datasets/{name}/versions/{version}", _DETAIL)

    def _unchanged(self, name: str, entries: Sequence[Any]) -> CommitOut | None:
        """The latest version when its root is the one these files make (nothing to read,
        index or upload); None when the dataset is new or the files differ."""
        from medops.datasets.identity import merkle_root, sorted_files
        from medops.errors import NotFoundError

        root = merkle_root(sorted_files(entries))
        try:
            latest = self.dataset_version(f"{name}@latest")
        except NotFoundError:
            return None
        if latest.version.root != root:
            return None
        return CommitOut(version=latest.version, unchanged=True)

    def dataset_manifest(self, ref: str) -> ManifestOut:
        """A version's files."""
        name, version = _split(ref)
        return self._call("GET", f"/api/v1/datasets/{name}/versions/{version}/manifest", _MANIFEST)

    def dataset_diff(self, name: str, old: str, new: str = "latest") -> DiffOut:
        """What changed between two versions of a dataset."""
        params = {"old": old, "new": new}
        return self._call("GET", f"/api/v1/datasets/{name}/diff", _DIFF, params=params)

    def verify_dataset(self, ref: str) -> VerifyOut:
        """Decrypt every object and hash every file of a version on the server."""
        name, version = _split(ref)
        return self._call(
            "POST", f"/api/v1/datasets/{name}/versions/{version}/verify", _VERIFY, json={}
        )

    def delete_dataset_version(self, ref: str, reason: str) -> DeleteOut:
        """Delete a version under the retention rule."""
        name, version = _split(ref)
        return self._call(
            "POST",
            f"/api/v1/datasets/{name}/versions/{version}/delete",
            _DELETE,
            json={"reason": reason},
        )

    def hold_dataset(self, name: str, reason: str, version: int | None = None) -> HoldOut:
        """Place a legal hold on a dataset (or one version)."""
        body = {"reason": reason, "version": version}
        return self._call("POST", f"/api/v1/datasets/{name}/holds", _HOLD, json=body)

    def dataset_holds(self, name: str) -> list[HoldOut]:
        """A dataset's active holds."""
        return self._call("GET", f"/api/v1/datasets/{name}/holds", _HOLDS)

    def release_hold(self, hold_id: str) -> HoldOut:
        """Release a legal hold."""
        return self._call("POST", f"/api/v1/data/holds/{hold_id}/release", _HOLD, json={})

    def reidentify(
        self, project: str, pseudonym: str, reason: str, kind: str | None = None
    ) -> ReidentifyOut:
        """The originals behind a pseudonym (audited with the reason)."""
        body = {"project": project, "pseudonym": pseudonym, "reason": reason, "kind": kind}
        return self._call("POST", "/api/v1/data/reidentify", _REID, json=body)

    def push_dataset(self, ref: str, remote: str | None = None) -> TransferOut:
        """Copy a version's encrypted objects to the remote."""
        name, version = _split(ref)
        return self._call(
            "POST",
            f"/api/v1/datasets/{name}/versions/{version}/push",
            _TRANSFER,
            json={"remote": remote},
        )

    def pull_dataset(self, ref: str, remote: str | None = None) -> TransferOut:
        """Fetch a version's objects (and record) from the remote."""
        name, version = _split(ref)
        return self._call(
            "POST",
            f"/api/v1/datasets/{name}/versions/{version}/pull",
            _TRANSFER,
            json={"remote": remote},
        )

    def read_dataset_file(self, ref: str, path: str, purpose: str) -> bytes:
        """One file of a version, read on the server (audited with the purpose)."""
        name, version = _split(ref)
        body = {"path": path, "purpose": purpose}
        return self._raw("POST", f"/api/v1/datasets/{name}/versions/{version}/read", json=body)

    def rotate_data_keys(self) -> RotationSummary:
        """Re-wrap every data key and sealed secret under the current KEK."""
        from medops.datasets.keys import RotationSummary  # loads SQLAlchemy: only here

        shape = Shape(RotationSummary)
        return self._call("POST", "/api/v1/data/keys/rotate", shape, json={})

    # -- add --------------------------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        paths: Sequence[Path],
        *,
        message: str | None = None,
        deidentify: bool = False,
        retain_dates: str = "off",
        clean_descriptors: bool = False,
        project: str | None = None,
        progress: Progress | None = None,
    ) -> CommitOut:
        """Add a version of ``name`` from ``paths`` (see the module)."""
        from medops.datasets.hashing import hash_files
        from medops.datasets.packing import Packer
        from medops.datasets.scan import scan
        from medops.datasets.statcache import StatCache

        staging: Path | None = None
        mappings: list[MappingIn] = []
        deid_record: dict[str, Any] | None = None
        secret: bytes | None = None
        try:
            roots = [Path(p) for p in paths]
            if deidentify:
                secret = base64.b64decode(
                    self._call(
                        "POST", f"/api/v1/data/projects/{project or name}/secret", _SECRET, json={}
                    ).secret
                )
                staging = Path(tempfile.mkdtemp(prefix="medops-deid-"))
                roots, mappings, deid_record = _deidentify(
                    roots, staging, secret, retain_dates, clean_descriptors, progress
                )
            local = scan(roots)
            self.settings.home.mkdir(parents=True, exist_ok=True)
            with StatCache(self.settings.home / "statcache.sqlite") as cache:
                entries = hash_files(
                    local,
                    workers=self.settings.data_hash_workers,
                    cache=cache,
                    progress=(lambda d, t: progress("hash", d, t)) if progress else None,
                )
                cache.remember([(f, e.digest) for f, e in zip(local, entries, strict=True)])
            unchanged = self._unchanged(name, entries)
            if unchanged is not None:
                return unchanged
            contents, series = _describe(local, secret)
            digests = sorted({e.digest for e in entries})
            missing = set(
                self._call(
                    "POST", "/api/v1/data/objects/missing", _MISSING, json={"digests": digests}
                ).missing
            )
            todo = [(f, e) for f, e in zip(local, entries, strict=True) if e.digest in missing]
            packer = Packer(
                workers=self.settings.data_hash_workers,
                pack_target=UPLOAD_OBJECT_BYTES,
                chunk_size=UPLOAD_OBJECT_BYTES,
                pack_threshold=min(UPLOAD_OBJECT_BYTES, 4 * 1024 * 1024),
            )
            total = sum(e.size for _, e in todo)
            sent = 0
            chunks: set[str] = set()
            for item in packer.objects(todo):
                self._call(
                    "PUT",
                    f"/api/v1/data/objects/{item.digest}",
                    _UPLOAD,
                    content=item.data,
                    headers={
                        "x-medops-kind": item.kind,
                        "content-type": "application/octet-stream",
                    },
                )
                sent += item.size
                if item.kind == "chunk":
                    chunks.add(item.digest)
                if progress:
                    progress("upload", min(sent, total), total)
            chunked = [
                s for s in packer.stored.values() if any(p.object in chunks for p in s.parts)
            ]
            body = CommitIn(
                files=list(entries),
                chunked=chunked,
                message=message,
                source=DataSource(
                    host=socket.gethostname()[:255], paths=tuple(str(p)[:1000] for p in paths)
                ),
                project=project if deidentify else None,
                derivation="deidentify" if deidentify else None,
                deidentification=deid_record,
                contents=contents,
                dicom_series=series,
                mappings=mappings,
            )
            return self._call(
                "POST",
                f"/api/v1/datasets/{name}/versions",
                _COMMIT,
                json=body.model_dump(mode="json"),
            )
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    # -- checkout ---------------------------------------------------------------------------------

    def checkout_dataset(
        self,
        ref: str,
        dest: Path,
        *,
        purpose: str,
        force: bool = False,
        progress: Progress | None = None,
    ) -> CheckoutOut:
        """Write a version's files under ``dest``, each verified against the manifest."""
        name, version = _split(ref)
        from medops.datasets.materialize import materialize

        answer = self._call(
            "POST",
            f"/api/v1/datasets/{name}/versions/{version}/checkout",
            _CHECKOUT,
            json={"purpose": purpose},
        )

        def fetch(digest: str) -> bytes:
            return self._raw(
                "GET", f"/api/v1/data/objects/{digest}", params={"grant": answer.grant}
            )

        materialize(
            answer.files,
            {s.digest: s for s in answer.stored},
            fetch,
            dest,
            workers=self.settings.data_hash_workers,
            progress=(lambda d, t: progress("write", d, t)) if progress else None,
            force=force,
        )
        return answer


def _deidentify(
    roots: list[Path],
    staging: Path,
    secret: bytes,
    retain_dates: str,
    clean_descriptors: bool,
    progress: Progress | None,
) -> tuple[list[Path], list[MappingIn], dict[str, Any]]:
    """Copy ``roots`` to ``staging`` with every DICOM file de-identified (others as they
    are); the same manifest paths as ``roots`` would give."""
    from medops.datasets.dicom import Deidentifier, DeidOptions, is_part10
    from medops.datasets.scan import scan

    options = DeidOptions(retain_longitudinal=retain_dates, clean_descriptors=clean_descriptors)
    deid = Deidentifier(secret, options)
    files = scan(roots)
    target = staging / "data"
    target.mkdir()
    seen: dict[tuple[str, str], str] = {}
    burned = 0
    for done, item in enumerate(files, 1):
        data = item.abspath.read_bytes()
        out = target / item.path
        out.parent.mkdir(parents=True, exist_ok=True)
        if is_part10(data[:132]):
            result = deid.deidentify(data)
            data = result.data
            burned += 1 if result.burned_in else 0
            for m in result.mappings:
                seen.setdefault((m.kind, m.pseudonym), m.original)
        out.write_bytes(data)
        os.utime(out, ns=(item.mtime_ns, item.mtime_ns))
        if progress:
            progress("deidentify", done, len(files))
    mappings = [MappingIn(kind=k, pseudonym=p, original=o) for (k, p), o in seen.items()]
    record = {
        "profile": "PS3.15 Annex E Basic",
        "options": options.model_dump(),
        "burned_in_files": burned,
    }
    return [target], mappings, record


def _describe(local: Sequence[Any], secret: bytes | None) -> tuple[dict[str, Any], list[SeriesIn]]:
    """Tabular schemas and the DICOM index of the files."""
    tables = {}
    tabular = [f for f in local if f.path.lower().endswith((".csv", ".tsv", ".parquet"))]
    if tabular:  # pyarrow is imported only when there is a table to describe
        from medops.datasets.tabular import describe

        for item in tabular:
            tables[item.path] = describe(item.path, item.abspath).model_dump(mode="json")
    # Only Part 10 files (the "DICM" marker after the preamble) are read as DICOM, and pydicom
    # is imported only when there is one.
    dicom = [f for f in local if _has_dicom_marker(f.abspath)]
    series: list[SeriesIn] = []
    if dicom:
        from medops.datasets.dicom import series_of

        found = series_of(((f.path, f.abspath) for f in dicom), project_secret=secret)
        series = [SeriesIn(**s.model_dump()) for s in found]
    contents = {
        "tables": tables,
        "dicom": {"series": len(series), "slices": sum(s.slices for s in series)},
    }
    return contents, series


def _has_dicom_marker(path: Path) -> bool:
    """Whether a file starts as a DICOM Part 10 file does: 128 bytes, then ``DICM``."""
    with path.open("rb") as handle:
        head = handle.read(132)
    return len(head) == 132 and head[128:] == b"DICM"
