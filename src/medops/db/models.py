"""Import every domain's tables so that ``Base.metadata`` knows them all (Alembic, tests)."""

from medops.audit.models import AuditCheckpoint, AuditEvent
from medops.auth.models import ApiToken, BreakGlassGrant, LoginThrottle, RecoveryCode, User
from medops.db.base import Base
from medops.monitoring.models import (
    MonitoringConfiguration,
    MonitoringProfile,
    MonitoringResult,
)
from medops.registry.models import (
    AliasEvent,
    Approval,
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    ValidationReport,
)
from medops.serving.models import Deployment, DeploymentEvent, Outcome, Prediction

metadata = Base.metadata

__all__ = [
    "AliasEvent",
    "ApiToken",
    "Approval",
    "AuditCheckpoint",
    "AuditEvent",
    "BreakGlassGrant",
    "Deployment",
    "DeploymentEvent",
    "LoginThrottle",
    "ModelAlias",
    "ModelCard",
    "ModelVersion",
    "MonitoringConfiguration",
    "MonitoringProfile",
    "MonitoringResult",
    "Outcome",
    "Prediction",
    "RecoveryCode",
    "RegisteredModel",
    "User",
    "ValidationReport",
    "metadata",
]
