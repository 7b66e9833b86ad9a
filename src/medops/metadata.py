"""Every domain's tables in one SQLAlchemy metadata (``Base.metadata``), for Alembic and the
schema tests. It imports every domain and nothing imports it but the migrations' environment
and tests, so the domains can build on ``db`` without an import cycle through it."""

from medops.alerting.slo_tables import SloObjectiveVersion
from medops.alerting.tables import (
    Alert,
    AlertDocument,
    AlertGroup,
    AlertNotification,
    AlertNotificationLink,
    AlertSilence,
)
from medops.audit.tables import AuditCheckpoint, AuditEvent
from medops.auth.tables import ApiToken, BreakGlassGrant, LoginThrottle, RecoveryCode, User
from medops.datasets.tables import (
    DataBlob,
    DataHold,
    DataObject,
    DataReplica,
    Dataset,
    DatasetVersion,
    DeidMapping,
    DeidProject,
    DicomSeries,
)
from medops.db.base import Base
from medops.features.online.tables import FeatureBinding, FeatureMaterialization
from medops.features.tables import FeatureDefinition
from medops.jobs import JobLease
from medops.lineage.tables import LineageEdge, LineageEvent
from medops.monitoring.tables import (
    MonitoringConfiguration,
    MonitoringProfile,
    MonitoringResult,
)
from medops.registry.tables import (
    AliasEvent,
    Approval,
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    ValidationReport,
)
from medops.retraining.job_tables import (
    TrainingActive,
    TrainingRun,
    TrainingSpecVersion,
    TrainingTrigger,
    TrainingTriggerEvent,
)
from medops.retraining.plan_tables import (
    CandidateEvaluation,
    ChangeControlPlan,
    PlanRollout,
    PlanSignature,
)
from medops.serving.tables import (
    Deployment,
    DeploymentEvent,
    Outcome,
    Prediction,
    PredictionExplanation,
    ServingUsage,
)

metadata = Base.metadata

__all__ = [
    "Alert",
    "AlertDocument",
    "AlertGroup",
    "AlertNotification",
    "AlertNotificationLink",
    "AlertSilence",
    "AliasEvent",
    "ApiToken",
    "Approval",
    "AuditCheckpoint",
    "AuditEvent",
    "BreakGlassGrant",
    "CandidateEvaluation",
    "ChangeControlPlan",
    "DataBlob",
    "DataHold",
    "DataObject",
    "DataReplica",
    "Dataset",
    "DatasetVersion",
    "DeidMapping",
    "DeidProject",
    "Deployment",
    "DeploymentEvent",
    "DicomSeries",
    "FeatureBinding",
    "FeatureDefinition",
    "FeatureMaterialization",
    "JobLease",
    "LineageEdge",
    "LineageEvent",
    "LoginThrottle",
    "ModelAlias",
    "ModelCard",
    "ModelVersion",
    "MonitoringConfiguration",
    "MonitoringProfile",
    "MonitoringResult",
    "Outcome",
    "PlanRollout",
    "PlanSignature",
    "Prediction",
    "PredictionExplanation",
    "RecoveryCode",
    "RegisteredModel",
    "ServingUsage",
    "SloObjectiveVersion",
    "TrainingActive",
    "TrainingRun",
    "TrainingSpecVersion",
    "TrainingTrigger",
    "TrainingTriggerEvent",
    "User",
    "ValidationReport",
    "metadata",
]
