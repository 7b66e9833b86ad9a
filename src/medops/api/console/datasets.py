"""The dataset pages (``data:read``): ``/datasets`` lists the datasets, ``/datasets/{name}``
a dataset's versions and holds, ``/datasets/{name}/{number}`` one version: its facts, files
summary, DICOM series, tabular schemas, holds and a link to its lineage. Reading bytes is not
offered here: checkout is audited with a purpose through the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    badge,
    cell,
    definitions,
    link,
    page,
    section,
    table,
    viewer_of,
)
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.datasets.schemas import DatasetRef

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Reader = Annotated[Context, Depends(require(Permission.DATA_READ))]
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]


@router.get("/datasets", name="console.datasets", response_class=HTMLResponse)
async def datasets_page(services: ServicesDep, ctx: Reader) -> Response:
    """Every dataset: project, versions, latest, holds."""
    found = await run_in_threadpool(services.datasets.list_datasets)
    rows = [
        [
            link(f"/datasets/{d.name}", d.name),
            cell(d.project),
            cell(d.versions),
            cell(d.latest),
            badge("held", "warn") if d.holds else "—",
            cell(d.created_by),
        ]
        for d in found
    ]
    body = table(
        ("dataset", "project", "versions", "latest", "holds", "created by"),
        rows,
        numeric=(2, 3),
        empty="No datasets yet: medops data add NAME PATH",
    )
    return page("Datasets", body, actor=viewer_of(ctx), active="datasets")


@router.get("/datasets/{name}", name="console.dataset", response_class=HTMLResponse)
async def dataset_page(name: Name, services: ServicesDep, ctx: Reader) -> Response:
    """A dataset's versions, newest first, and its holds."""
    versions = await run_in_threadpool(services.datasets.versions, name)
    holds = await run_in_threadpool(services.datasets.holds, name)
    rows = [
        [
            link(f"/datasets/{name}/{v.number}", v.ref),
            f"<code>{cell(v.root[:19])}</code>",
            cell(v.file_count),
            cell(v.total_bytes),
            badge("de-identified", "ok") if v.deidentified else "—",
            cell(v.created_by),
            cell(v.created_at.isoformat()),
            cell(v.message),
        ]
        for v in versions
    ]
    body = section(
        "Versions",
        table(
            ("version", "root", "files", "bytes", "de-identification", "by", "at", "message"),
            rows,
            numeric=(2, 3),
        ),
    )
    body += section("Legal holds", _holds(holds))
    crumbs = [("Datasets", "/datasets"), (name, None)]
    return page(name, body, actor=viewer_of(ctx), active="datasets", crumbs=crumbs)


@router.get(
    "/datasets/{name}/{number}", name="console.dataset_version", response_class=HTMLResponse
)
async def version_page(
    name: Name,
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    services: ServicesDep,
    ctx: Reader,
) -> Response:
    """One version: facts, DICOM series, tabular schemas, holds, lineage link."""
    ref = DatasetRef(name=name, version=str(number))
    detail = await run_in_threadpool(services.datasets.show, ref)
    v = detail.version
    facts = definitions(
        [
            ("root", f"<code>{cell(v.root)}</code>"),
            ("files", cell(v.file_count)),
            ("bytes", cell(v.total_bytes)),
            ("de-identified", badge("yes", "ok") if v.deidentified else badge("no", "muted")),
            ("derived from", cell(v.derived_from)),
            ("added by", cell(v.created_by)),
            ("added at", cell(v.created_at.isoformat())),
            ("message", cell(v.message)),
            ("source host", cell(v.source.host)),
            ("deleted", cell(v.deleted_at.isoformat()) if v.deleted_at else "—"),
            ("lineage", link("/lineage", "show the lineage", ref=f"{name}@{number}")),
        ]
    )
    series = table(
        ("series", "modality", "patient (pseudonym)", "slices", "bytes", "burned in"),
        [
            [
                f"<code>{cell(s.series_uid)}</code>",
                cell(s.modality),
                cell(s.patient_ref),
                cell(s.slices),
                cell(s.bytes),
                badge(str(s.burned_in), "bad") if s.burned_in else cell(0),
            ]
            for s in detail.series
        ],
        numeric=(3, 4, 5),
        empty="No DICOM series.",
    )
    tables = (
        "".join(
            section(f"Table {path}", _columns(profile))
            for path, profile in sorted((detail.contents.get("tables") or {}).items())
        )
        or "<p>No tabular files.</p>"
    )
    body = facts + section("DICOM series", series) + section("Tabular files", tables)
    body += section("Legal holds", _holds(detail.holds))
    crumbs = [("Datasets", "/datasets"), (name, f"/datasets/{name}"), (f"@{number}", None)]
    return page(f"{name}@{number}", body, actor=viewer_of(ctx), active="datasets", crumbs=crumbs)


def _columns(profile: Any) -> str:
    columns = profile.get("columns", []) if isinstance(profile, dict) else []
    rows = [
        [cell(c.get("name")), cell(c.get("type")), cell(c.get("count")), cell(c.get("nulls"))]
        for c in columns
        if isinstance(c, dict)
    ]
    return table(("column", "type", "count", "nulls"), rows, numeric=(2, 3))


def _holds(holds: list[Any]) -> str:
    rows = [
        [
            cell(h.id),
            cell(h.version or "every version"),
            cell(h.reason),
            cell(h.placed_by),
            cell(h.placed_at.isoformat()),
        ]
        for h in holds
    ]
    return table(("hold", "version", "reason", "placed by", "at"), rows, empty="No holds.")
