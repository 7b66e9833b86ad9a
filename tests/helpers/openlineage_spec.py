"""Validating OpenLineage events against the vendored JSON schemas (openlineage_spec/,
Apache-2.0, see its README): the core RunEvent, and each facet against its own schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # dev dependency, through moto[server]
from referencing import Registry, Resource

SPEC = Path(__file__).parent.parent / "lineage" / "openlineage_spec"
# The facet schemas point at the core by these URLs (the versions their files name).
CORE_URLS = [
    f"https://openlineage.io/spec/{v}/OpenLineage.json" for v in ("1-0-1", "1-0-2", "2-0-2")
]
FACETS = {
    "schema": "SchemaDatasetFacet.json",
    "dataSource": "DatasourceDatasetFacet.json",
    "version": "DatasetVersionDatasetFacet.json",
    "jobType": "JobTypeJobFacet.json",
}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPEC / name).read_text(encoding="utf-8"))
    return data


@cache
def _registry() -> Registry:
    core = _load("OpenLineage.json")
    # The same document, its ``definitions`` also reachable as ``$defs`` (newer facets use it).
    aliased = core | {"$defs": core["definitions"]}
    resources = [(url, Resource.from_contents(aliased)) for url in CORE_URLS]
    return Registry().with_resources(resources)


def validate(event: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless ``event`` is a valid RunEvent whose facets
    each match their schema."""
    core = _load("OpenLineage.json")
    checker = jsonschema.Draft202012Validator(
        core, registry=_registry(), format_checker=jsonschema.FormatChecker()
    )
    checker.validate(event)
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    facets: list[tuple[str, Any]] = list(event["job"].get("facets", {}).items())
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        facets.extend(dataset.get("facets", {}).items())
    for name, facet in facets:
        schema = _load(f"facets/{FACETS[name]}")
        jsonschema.Draft202012Validator(
            schema, registry=_registry(), format_checker=jsonschema.FormatChecker()
        ).validate({name: facet})
