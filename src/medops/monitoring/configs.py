"""Each deployment's monitoring configuration: read (the defaults until one is stored) and
replaced under audit, in the same transaction, as ``monitoring.configure`` with before and
after. Runs read it with ``load`` (``service.py``); what it means is in ``thresholds.py``."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import NotFoundError
from medops.monitoring.schemas import MonitoringConfig, MonitoringConfigIn, MonitoringConfigOut
from medops.monitoring.tables import MonitoringConfiguration
from medops.registry.approvals import canonical_json
from medops.serving.tables import Deployment


class MonitoringConfigService:
    """Reads and replaces deployments' monitoring configurations."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    def get(self, deployment: str) -> MonitoringConfigOut:
        """The deployment's configuration; the defaults (no ``updated_at``) until one is set."""
        with self._db.session() as session:
            check_deployment(session, deployment)
            row = session.get(MonitoringConfiguration, deployment)
            return _out(deployment, row)

    def set(self, ctx: Context, data: MonitoringConfigIn) -> MonitoringConfigOut:
        """Replace the deployment's configuration (fields left out take their defaults)."""
        actor = require_actor(ctx)
        config = MonitoringConfig.model_validate(data.model_dump(exclude={"deployment"}))
        after = config.model_dump(mode="json")
        with self._db.transaction() as session:
            check_deployment(session, data.deployment, for_update=True)  # one change at a time
            row = session.get(MonitoringConfiguration, data.deployment, with_for_update=True)
            before = _config_of(row).model_dump(mode="json") if row is not None else None
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="monitoring.configure",
                    resource_type="deployment",
                    resource_id=data.deployment,
                    details={"before": before, "after": after},
                ),
            )
            if row is None:
                row = MonitoringConfiguration(deployment=data.deployment)
                session.add(row)
            row.thresholds = canonical_json(after["thresholds"])
            row.correction = config.correction
            row.thresholds_mode = config.thresholds_mode
            row.min_samples = config.min_samples
            row.updated_at = self._clock.now()
            row.updated_by = actor.username
            return _out(data.deployment, row)


def load(db: Database, deployment: str) -> MonitoringConfig:
    """The configuration a run applies to ``deployment``'s windows (the defaults when none)."""
    with db.session() as session:
        return _config_of(session.get(MonitoringConfiguration, deployment))


def check_deployment(session: Session, name: str, *, for_update: bool = False) -> None:
    """Raise ``NotFoundError`` unless ``name`` is a deployment (locking its row when asked:
    one change of its settings at a time)."""
    query = select(Deployment.name).where(Deployment.name == name)
    if for_update:
        query = query.with_for_update()
    if session.scalar(query) is None:
        msg = f"no deployment named {name!r}"
        raise NotFoundError(msg)


def _config_of(row: MonitoringConfiguration | None) -> MonitoringConfig:
    if row is None:
        return MonitoringConfig()
    return MonitoringConfig.model_validate(
        {
            "thresholds": json.loads(row.thresholds),
            "correction": row.correction,
            "thresholds_mode": row.thresholds_mode,
            "min_samples": row.min_samples,
        }
    )


def _out(deployment: str, row: MonitoringConfiguration | None) -> MonitoringConfigOut:
    config = _config_of(row).model_dump()
    if row is None:
        return MonitoringConfigOut(deployment=deployment, **config)
    return MonitoringConfigOut(
        deployment=deployment, updated_at=row.updated_at, updated_by=row.updated_by, **config
    )
