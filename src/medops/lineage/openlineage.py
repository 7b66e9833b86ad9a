"""OpenLineage run events for what medops does to data and models: a dataset version added
(job ``medops.data.add``), a dataset version derived from another (``medops.data.
deidentify``, ``medops.data.split``), a model version registered (``medops.models.
register``: inputs the pinned dataset versions, output the model version as a dataset-like
node) and a deployment changed (``medops.deploy``: input the model version(s), output the
deployment as an endpoint).

Plain JSON (the spec's RunEvent, checked in the tests against the vendored JSON schema): one
START and one COMPLETE per run, both with the same ``runId`` (a UUID derived from what the run
did, so re-emitting the same fact gives the same run). Facets: ``schema`` (the columns of a
tabular version, or a model's features), ``dataSource``, ``version`` (the Merkle root or the
artifact digest) and the job's ``jobType``. Never a patient identifier, a
file path from a patient's folder or a raw value: names, counts and digests only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import medops

PRODUCER = f"https://github.com/medops/medops/tree/v{medops.__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
SCHEMA_FACET = f"{_FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
DATASOURCE_FACET = f"{_FACETS}/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet"
VERSION_FACET = f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
JOB_TYPE_FACET = f"{_FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
_RUN_NAMESPACE = uuid.UUID("6f1d1c4e-8d7a-4c59-9b8e-6d0f3f0b2a11")

EventType = Literal["START", "COMPLETE"]


@dataclass(frozen=True)
class Node:
    """A dataset-like node of an event: a dataset version, a model version or an endpoint."""

    namespace: str  # medops://<host>/datasets, .../models, .../deployments
    name: str  # NAME@N, NAME/V, deployment name
    version: str | None = None  # sha256 root or artifact digest
    fields: Sequence[tuple[str, str]] = ()  # (name, type) for the schema facet


def _facet(schema_url: str, **content: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **content}


def namespace(base_url: str, kind: str) -> str:
    """The namespace of ``kind`` nodes of one installation (``medops://host/kind``)."""
    host = base_url.split("://", 1)[-1].rstrip("/") or "localhost"
    return f"medops://{host}/{kind}"


def dataset(node: Node) -> dict[str, Any]:
    """An input or output entry with its facets."""
    facets: dict[str, Any] = {
        "dataSource": _facet(DATASOURCE_FACET, name=node.namespace, uri=node.namespace)
    }
    if node.version is not None:
        facets["version"] = _facet(VERSION_FACET, datasetVersion=node.version)
    if node.fields:
        facets["schema"] = _facet(
            SCHEMA_FACET, fields=[{"name": n, "type": t} for n, t in node.fields]
        )
    return {"namespace": node.namespace, "name": node.name, "facets": facets}


def run_id(*identity: str) -> str:
    """A stable run id for the fact ``identity`` names (same fact, same run)."""
    return str(uuid.uuid5(_RUN_NAMESPACE, "\x1f".join(identity)))


def run_events(
    *,
    job: str,
    job_namespace: str,
    identity: Sequence[str],
    started: datetime,
    finished: datetime,
    inputs: Sequence[Node],
    outputs: Sequence[Node],
) -> list[dict[str, Any]]:
    """START and COMPLETE of one run, as JSON-ready dicts."""
    rid = run_id(job, *identity)
    job_facets = {
        "jobType": _facet(
            JOB_TYPE_FACET, processingType="BATCH", integration="MEDOPS", jobType="JOB"
        )
    }
    events = []
    for kind, when in (("START", started), ("COMPLETE", finished)):
        events.append(
            {
                "eventType": kind,
                "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
                "run": {"runId": rid},
                "job": {"namespace": job_namespace, "name": job, "facets": job_facets},
                "inputs": [dataset(n) for n in inputs] if kind == "COMPLETE" else [],
                "outputs": [dataset(n) for n in outputs] if kind == "COMPLETE" else [],
            }
        )
    return events


def dumps(event: dict[str, Any]) -> str:
    """An event as one line of compact JSON with sorted keys."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"))
