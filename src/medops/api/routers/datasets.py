"""Datasets over HTTP: versions (add through object uploads and a commit, list, show,
manifest, diff), audited checkout with a read grant and object reads, verify, the retention
rule's delete, legal holds, de-identification secrets, re-identification, push and pull."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.datasets.keys import RotationSummary
from medops.datasets.records import (
    CheckoutIn,
    CheckoutOut,
    CommitIn,
    CommitOut,
    DeleteIn,
    DeleteOut,
    DiffOut,
    HoldIn,
    HoldOut,
    ManifestOut,
    MissingIn,
    MissingOut,
    ReadFileIn,
    ReidentifyIn,
    ReidentifyOut,
    SecretOut,
    TransferIn,
    TransferOut,
    UploadOut,
    VerifyOut,
    VersionDetail,
)
from medops.datasets.schemas import DIGEST_PATTERN, DatasetOut, DatasetRef, VersionOut

router = APIRouter(tags=["datasets"])
Reader = Annotated[Context, Depends(require(Permission.DATA_READ))]
Checkout = Annotated[Context, Depends(require(Permission.DATA_CHECKOUT))]
Writer = Annotated[Context, Depends(require(Permission.DATA_WRITE))]
Manager = Annotated[Context, Depends(require(Permission.DATA_MANAGE))]
Reidentifier = Annotated[Context, Depends(require(Permission.DATA_REIDENTIFY))]
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
Version = Annotated[str, Path(pattern=r"^(latest|[0-9]{1,10}|sha256:[0-9a-f]{8,64})$")]
ObjectDigest = Annotated[str, Path(pattern=DIGEST_PATTERN)]
DATASETS = f"{API_PREFIX}/datasets"
OBJECTS = f"{API_PREFIX}/data/objects"


def _ref(name: str, version: str) -> DatasetRef:
    return DatasetRef.parse(f"{name}@{version}", field="version")


@router.post(f"{OBJECTS}/missing", name="data.objects.missing")
def missing_blobs(body: MissingIn, services: ServicesDep, _ctx: Writer) -> MissingOut:
    """The file digests whose bytes the server has not stored (an add uploads only these)."""
    return MissingOut(missing=services.datasets.missing_blobs(body.digests))


@router.put(f"{OBJECTS}/{{digest}}", name="data.objects.put")
async def put_object(
    digest: ObjectDigest,
    request: Request,
    services: ServicesDep,
    ctx: Writer,
    kind: Annotated[str, Header(alias="x-medops-kind", pattern=r"^(pack|chunk)$")],
) -> UploadOut:
    """Upload one object (a pack or a chunk, octets); verified and stored encrypted; audited."""
    data = await request.body()
    return await run_in_threadpool(services.datasets.upload, ctx, digest, kind, data)


@router.get(f"{OBJECTS}/{{digest}}", name="data.objects.get")
async def get_object(
    digest: ObjectDigest,
    services: ServicesDep,
    ctx: Checkout,
    grant: Annotated[str, Query(min_length=10, max_length=200)],
) -> Response:
    """An object's bytes (decrypted and verified) for the holder of a checkout's grant."""
    data = await run_in_threadpool(services.datasets.read_object, ctx, grant, digest)
    return Response(content=data, media_type="application/octet-stream")


@router.get(DATASETS, name="datasets.list")
def list_datasets(services: ServicesDep, _ctx: Reader) -> list[DatasetOut]:
    """Every dataset, by name."""
    return services.datasets.list_datasets()


@router.get(f"{DATASETS}/{{name}}", name="datasets.show")
def show_dataset(name: Name, services: ServicesDep, _ctx: Reader) -> DatasetOut:
    """One dataset."""
    return services.datasets.dataset(name)


@router.get(f"{DATASETS}/{{name}}/versions", name="datasets.versions")
def list_versions(
    name: Name, services: ServicesDep, _ctx: Reader, include_deleted: bool = False
) -> list[VersionOut]:
    """A dataset's versions, newest first."""
    return services.datasets.versions(name, include_deleted=include_deleted)


@router.post(f"{DATASETS}/{{name}}/versions", name="datasets.commit", status_code=201)
async def commit_version(
    name: Name, body: CommitIn, services: ServicesDep, ctx: Writer
) -> CommitOut:
    """Commit a version whose files are all stored (atomic; the latest's root again answers
    that version, unchanged); audited ``data.version.add``."""
    return await run_in_threadpool(services.datasets.commit, ctx, name, body)


@router.get(f"{DATASETS}/{{name}}/versions/{{version}}", name="datasets.version")
def show_version(
    name: Name, version: Version, services: ServicesDep, _ctx: Reader
) -> VersionDetail:
    """A version with its contents (tabular schemas, DICOM summary), series and holds."""
    return services.datasets.show(_ref(name, version))


@router.get(f"{DATASETS}/{{name}}/versions/{{version}}/manifest", name="datasets.manifest")
def version_manifest(
    name: Name, version: Version, services: ServicesDep, _ctx: Reader
) -> ManifestOut:
    """A version's files: paths, sizes, digests."""
    return services.datasets.manifest(_ref(name, version))


@router.get(f"{DATASETS}/{{name}}/diff", name="datasets.diff")
def diff_versions(
    name: Name,
    services: ServicesDep,
    _ctx: Reader,
    old: Annotated[str, Query(max_length=80)],
    new: Annotated[str, Query(max_length=80)] = "latest",
) -> DiffOut:
    """What changed from version ``old`` to ``new`` of a dataset."""
    return services.datasets.diff(_ref(name, old), _ref(name, new))


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/checkout", name="datasets.checkout")
async def checkout_version(
    name: Name, version: Version, body: CheckoutIn, services: ServicesDep, ctx: Checkout
) -> CheckoutOut:
    """The files, where their bytes are, and a grant to read them; audited ``data.checkout``
    with the purpose and the version's patient references."""
    return await run_in_threadpool(
        services.datasets.checkout, ctx, _ref(name, version), body.purpose
    )


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/read", name="datasets.read")
async def read_file(
    name: Name, version: Version, body: ReadFileIn, services: ServicesDep, ctx: Checkout
) -> Response:
    """One file's bytes read on the server; audited ``data.read`` with the purpose."""
    data = await run_in_threadpool(
        services.datasets.read_file, ctx, _ref(name, version), body.path, body.purpose
    )
    return Response(content=data, media_type="application/octet-stream")


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/verify", name="datasets.verify")
async def verify_version(
    name: Name, version: Version, services: ServicesDep, ctx: Checkout
) -> VerifyOut:
    """Decrypt every object and hash every file of a version; names what is bad; audited."""
    return await run_in_threadpool(services.datasets.verify, ctx, _ref(name, version))


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/delete", name="datasets.delete")
async def delete_version(
    name: Name, version: Version, body: DeleteIn, services: ServicesDep, ctx: Manager
) -> DeleteOut:
    """Delete a version under the retention rule (409 while a model version or a legal
    hold needs it); audited with the reason."""
    return await run_in_threadpool(services.datasets.delete, ctx, _ref(name, version), body.reason)


@router.get(f"{DATASETS}/{{name}}/holds", name="datasets.holds")
def list_holds(name: Name, services: ServicesDep, _ctx: Reader) -> list[HoldOut]:
    """A dataset's active legal holds."""
    return services.datasets.holds(name)


@router.post(f"{DATASETS}/{{name}}/holds", name="datasets.hold", status_code=201)
def place_hold(name: Name, body: HoldIn, services: ServicesDep, ctx: Manager) -> HoldOut:
    """Place a legal hold on a dataset or one version; audited with the reason."""
    return services.datasets.place_hold(ctx, name, body.version, body.reason)


@router.post(f"{API_PREFIX}/data/holds/{{hold_id}}/release", name="datasets.hold.release")
def release_hold(
    hold_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    services: ServicesDep,
    ctx: Manager,
) -> HoldOut:
    """Release a legal hold; audited."""
    return services.datasets.release_hold(ctx, hold_id)


@router.post(f"{API_PREFIX}/data/projects/{{project}}/secret", name="data.project.secret")
def project_secret(project: Name, services: ServicesDep, ctx: Writer) -> SecretOut:
    """A de-identification project's secret for an add with --deidentify; audited."""
    return services.datasets.project_secret(ctx, project)


@router.post(f"{API_PREFIX}/data/reidentify", name="data.reidentify")
def reidentify(body: ReidentifyIn, services: ServicesDep, ctx: Reidentifier) -> ReidentifyOut:
    """Map a pseudonym back to its original; audited with the reason."""
    return services.datasets.reidentify(ctx, body.project, body.pseudonym, body.reason, body.kind)


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/push", name="datasets.push")
async def push_version(
    name: Name, version: Version, body: TransferIn, services: ServicesDep, ctx: Writer
) -> TransferOut:
    """Copy a version's encrypted objects to the remote (resumable); audited."""
    return await run_in_threadpool(services.datasets.push, ctx, _ref(name, version), body.remote)


@router.post(f"{DATASETS}/{{name}}/versions/{{version}}/pull", name="datasets.pull")
async def pull_version(
    name: Name, version: Version, body: TransferIn, services: ServicesDep, ctx: Writer
) -> TransferOut:
    """Fetch a version's objects from the remote, each verified; audited."""
    return await run_in_threadpool(services.datasets.pull, ctx, _ref(name, version), body.remote)


@router.post(f"{API_PREFIX}/data/keys/rotate", name="data.keys.rotate")
async def rotate_keys(services: ServicesDep, ctx: Manager) -> RotationSummary:
    """Re-wrap every data key and sealed secret under the current KEK; audited."""
    return await run_in_threadpool(services.datasets.rotate_keys, ctx)
