"""Dataset versions made directly through the tables, for lineage tests (the dataset
service adds them for real; lineage only reads the rows)."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime

from sqlalchemy import func, select

from medops.audit.service import exempt_from_audit_guard
from medops.datasets.tables import Dataset, DatasetVersion
from medops.db.engine import Database
from medops.services import Services

WHEN = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
COLUMNS = [{"name": "age", "type": "integer"}, {"name": "bmi", "type": "float"}]
TABLES = {"tables": [{"name": "vitals.csv", "columns": COLUMNS}]}


def add_version(
    services: Services | Database,
    dataset: str,
    *,
    derived_from: str | None = None,
    derivation: str | None = None,
    deleted: bool = False,
    contents: dict[str, object] | None = None,
) -> DatasetVersion:
    """The next version of ``dataset`` (created on first use); returns the row. ``services``
    may be a bare Database (the CLI tests' installation)."""
    db = services if isinstance(services, Database) else services.db
    with db.transaction() as session:
        exempt_from_audit_guard(session)  # a fixture, not an action
        if session.get(Dataset, dataset) is None:
            session.add(
                Dataset(
                    name=dataset,
                    description=None,
                    project="default",
                    created_at=WHEN,
                    created_by="ds",
                )
            )
            session.flush()
        number = (
            session.scalar(
                select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset == dataset)
            )
            or 0
        ) + 1
        root = "sha256:" + hashlib.sha256(f"{dataset}/{number}".encode()).hexdigest()
        row = DatasetVersion(
            id=f"dv_{secrets.token_hex(8)}",
            dataset=dataset,
            number=number,
            root=root,
            manifest="sha256:" + "0" * 64,
            file_count=3,
            total_bytes=300,
            message=None,
            source=json.dumps({"host": "lab", "paths": ["data"]}),
            derived_from=derived_from,
            derivation=derivation,
            deidentification=None,
            contents=json.dumps(contents if contents is not None else TABLES),
            created_at=WHEN,
            created_by="ds",
            deleted_at=WHEN if deleted else None,
            deleted_by="admin" if deleted else None,
            deleted_reason="test" if deleted else None,
        )
        session.add(row)
        session.flush()
        session.expunge(row)
        return row
