"""Permissions are data: a ``Permission`` enum and a role -> permissions table.

Every API route declares the one permission it needs (see api/deps.py); a test fails when a
route declares none. Least privilege: a role gets a permission only when its work needs it.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    """The built-in roles; each user has exactly one."""

    ADMIN = "admin"
    DATA_SCIENTIST = "data_scientist"
    ML_ENGINEER = "ml_engineer"
    CLINICIAN = "clinician"
    AUDITOR = "auditor"
    SERVICE = "service"


class Permission(StrEnum):
    """One thing an actor may do; routes and CLI commands name exactly one."""

    SELF = "self"
    TOKENS_CREATE = "tokens:create"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"
    BREAKGLASS_USE = "breakglass:use"
    BREAKGLASS_REVIEW = "breakglass:review"
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    MODELS_CARD = "models:card"
    MODELS_APPROVE = "models:approve"
    MODELS_PROMOTE = "models:promote"
    MODELS_POLICY = "models:policy"
    DEPLOYMENTS_READ = "deployments:read"
    DEPLOYMENTS_MANAGE = "deployments:manage"
    PREDICT = "predict"
    OUTCOMES_WRITE = "outcomes:write"
    MONITORING_READ = "monitoring:read"
    MONITORING_RUN = "monitoring:run"
    MONITORING_CONFIGURE = "monitoring:configure"
    ALERTS_READ = "alerts:read"
    ALERTS_RESPOND = "alerts:respond"
    ALERTS_CONFIGURE = "alerts:configure"
    ALERTS_RUN = "alerts:run"
    SLO_READ = "slo:read"
    DATA_READ = "data:read"
    DATA_CHECKOUT = "data:checkout"
    DATA_WRITE = "data:write"
    DATA_MANAGE = "data:manage"
    DATA_REIDENTIFY = "data:reidentify"
    LINEAGE_READ = "lineage:read"
    FEATURES_READ = "features:read"
    FEATURES_WRITE = "features:write"
    FEATURES_MATERIALIZE = "features:materialize"
    PLANS_WRITE = "plans:write"
    TRAINING_READ = "training:read"
    TRAINING_RUN = "training:run"
    TRAINING_CONFIGURE = "training:configure"


PERMISSION_DESCRIPTIONS: MappingProxyType[Permission, str] = MappingProxyType(
    {
        Permission.SELF: "See one's own identity and tokens; revoke one's own tokens (log out).",
        Permission.TOKENS_CREATE: "Create API tokens for oneself.",
        Permission.USERS_READ: "List user accounts and their roles.",
        Permission.USERS_MANAGE: (
            "Create, disable and re-enable accounts, reset passwords and MFA, unlock, "
            "issue service tokens."
        ),
        Permission.AUDIT_READ: "Search and export the audit trail.",
        Permission.BREAKGLASS_USE: "Take time-limited emergency access, with a reason.",
        Permission.BREAKGLASS_REVIEW: "List break-glass grants and record their review.",
        Permission.MODELS_READ: (
            "See models, versions, validation reports, model cards, signatures and history."
        ),
        Permission.MODELS_WRITE: (
            "Create models, register versions (ONNX) and compute validation reports."
        ),
        Permission.MODELS_CARD: "Write the team's fields of a model card.",
        Permission.MODELS_APPROVE: "Sign a model version electronically (with re-authentication).",
        Permission.MODELS_PROMOTE: "Move model aliases (promote, gated) and roll them back.",
        Permission.MODELS_POLICY: "Set a model's promotion policy (thresholds, approvals).",
        Permission.DEPLOYMENTS_READ: "See deployments, what they serve, their history and "
        "live figures.",
        Permission.DEPLOYMENTS_MANAGE: (
            "Create deployments; start and end canary and shadow rollouts; roll back."
        ),
        Permission.PREDICT: "Send patient records to a deployment for a prediction.",
        Permission.OUTCOMES_WRITE: "Attach ground-truth outcomes to earlier predictions.",
        Permission.MONITORING_READ: (
            "See monitoring results: drift, performance, calibration and fairness per window."
        ),
        Permission.MONITORING_RUN: "Compute the monitoring windows that are due.",
        Permission.MONITORING_CONFIGURE: (
            "Set a deployment's drift thresholds, multiple-testing correction and minimum rows."
        ),
        Permission.ALERTS_READ: "See alerts, their history, silences, rules and routing.",
        Permission.ALERTS_RESPOND: (
            "Acknowledge and resolve alerts; create and expire silences (with a reason)."
        ),
        Permission.ALERTS_CONFIGURE: (
            "Change alert rules, routing, receivers, escalation policies, on-call schedules, "
            "service-level objectives and prices."
        ),
        Permission.ALERTS_RUN: "Evaluate alert rules and send the notifications that are due.",
        Permission.SLO_READ: (
            "See service-level objectives, error budgets, monthly SLA reports and cost reports."
        ),
        Permission.DATA_READ: (
            "See datasets, their versions, manifests, schemas, DICOM indexes and differences."
        ),
        Permission.DATA_CHECKOUT: (
            "Read a dataset version's bytes (checkout, verify), audited with a purpose and the "
            "patient references it holds."
        ),
        Permission.DATA_WRITE: (
            "Add dataset versions (de-identifying DICOM on the way in) and push or pull them "
            "between the store and a remote."
        ),
        Permission.DATA_MANAGE: (
            "Place and release legal holds, delete dataset versions under the retention rule, "
            "rotate the data encryption keys."
        ),
        Permission.DATA_REIDENTIFY: (
            "Map a de-identified pseudonym or UID back to the original, with a reason; every "
            "re-identification is audited."
        ),
        Permission.LINEAGE_READ: (
            "See lineage: which data made which model, where it is deployed, what it predicted, "
            "and the impact of a dataset version."
        ),
        Permission.FEATURES_READ: (
            "See entities, feature views, on-demand features, materialization state and "
            "training-serving skew reports."
        ),
        Permission.FEATURES_WRITE: (
            "Apply feature definitions (entities, feature views, on-demand features) and build "
            "point-in-time training sets."
        ),
        Permission.FEATURES_MATERIALIZE: (
            "Write the latest feature values to the online store and run the online/offline "
            "skew check."
        ),
        Permission.PLANS_WRITE: (
            "Draft change-control plans (what a retraining may change, the floors a candidate "
            "must meet, the rollout protocol); signing one needs models:approve."
        ),
        Permission.TRAINING_READ: "See training runs, their logs, triggers and comparisons.",
        Permission.TRAINING_RUN: (
            "Start a training run for a model (a person's trigger) and register its candidate."
        ),
        Permission.TRAINING_CONFIGURE: (
            "Set a model's retraining triggers (schedule, monitoring verdicts, labelled-data "
            "size), pause and resume them."
        ),
    }
)

_PEOPLE = frozenset({Permission.SELF, Permission.TOKENS_CREATE})

_EMERGENCY = frozenset({Permission.BREAKGLASS_USE})

# Those paged by alerts see them, answer them, and see the objectives they are judged by.
_ON_CALL = frozenset({Permission.ALERTS_READ, Permission.ALERTS_RESPOND, Permission.SLO_READ})

_MODEL_AUTHOR = frozenset({Permission.MODELS_READ, Permission.MODELS_WRITE, Permission.MODELS_CARD})

# Those who build models version the data they train on, and trace it.
_DATA_AUTHOR = frozenset(
    {
        Permission.DATA_READ,
        Permission.DATA_CHECKOUT,
        Permission.DATA_WRITE,
        Permission.LINEAGE_READ,
    }
)

# Those who build models define and reuse features, and train.
_FEATURE_AUTHOR = frozenset(
    {
        Permission.FEATURES_READ,
        Permission.FEATURES_WRITE,
        Permission.PLANS_WRITE,
        Permission.TRAINING_READ,
        Permission.TRAINING_RUN,
    }
)

ROLE_PERMISSIONS: MappingProxyType[Role, frozenset[Permission]] = MappingProxyType(
    {
        # Separation of duties: admins manage accounts but do not read (or police) the
        # audit trail; auditors do.
        Role.ADMIN: _PEOPLE
        | {Permission.USERS_READ, Permission.USERS_MANAGE, Permission.BREAKGLASS_REVIEW},
        Role.DATA_SCIENTIST: _PEOPLE
        | _EMERGENCY
        | _MODEL_AUTHOR
        | _DATA_AUTHOR
        | _FEATURE_AUTHOR
        | {Permission.MONITORING_READ}
        | _ON_CALL,
        # Separation of duties within the registry is enforced per version: whoever
        # registered a version cannot sign it.
        Role.ML_ENGINEER: _PEOPLE
        | _EMERGENCY
        | _MODEL_AUTHOR
        | _DATA_AUTHOR
        | _FEATURE_AUTHOR
        | {
            # Retention and legal holds are run by those who run the platform's data.
            Permission.DATA_MANAGE,
            # The online store and the retraining triggers are run by those who run serving.
            Permission.FEATURES_MATERIALIZE,
            Permission.TRAINING_CONFIGURE,
            Permission.MODELS_APPROVE,
            Permission.MODELS_PROMOTE,
            Permission.MODELS_POLICY,
            Permission.DEPLOYMENTS_READ,
            Permission.DEPLOYMENTS_MANAGE,
            Permission.MONITORING_READ,
            Permission.MONITORING_RUN,
            # What counts as drift for a deployment: set by those who run it, audited.
            Permission.MONITORING_CONFIGURE,
            # Those who run deployments own how they are watched, and may run the jobs.
            Permission.ALERTS_CONFIGURE,
            Permission.ALERTS_RUN,
        }
        | _ON_CALL,
        # Clinicians score their patients and report what happened to them.
        Role.CLINICIAN: _PEOPLE
        | _EMERGENCY
        | {
            Permission.MODELS_READ,
            Permission.MODELS_CARD,
            Permission.MODELS_APPROVE,
            Permission.DEPLOYMENTS_READ,
            Permission.PREDICT,
            Permission.OUTCOMES_WRITE,
            Permission.MONITORING_READ,
            # Which data a model learned from is part of trusting it.
            Permission.LINEAGE_READ,
            # They sign change-control plans, so they see what each retraining did.
            Permission.TRAINING_READ,
            # Re-identification (an incidental finding back to the treating team) is a
            # clinical act, with a reason, audited, reviewed by auditors.
            Permission.DATA_REIDENTIFY,
        }
        # The clinical safety team is paged for fairness and performance alerts.
        | _ON_CALL,
        Role.AUDITOR: _PEOPLE
        | {
            Permission.USERS_READ,
            Permission.AUDIT_READ,
            Permission.BREAKGLASS_REVIEW,
            Permission.MODELS_READ,
            Permission.DEPLOYMENTS_READ,
            Permission.MONITORING_READ,
            Permission.ALERTS_READ,
            Permission.SLO_READ,
            Permission.DATA_READ,
            Permission.LINEAGE_READ,
            Permission.FEATURES_READ,
            Permission.TRAINING_READ,
        },
        # A service account acts only through tokens an admin issues to it; it mints none.
        # Hospital systems (the EHR integration) predict and send outcomes through one.
        Role.SERVICE: frozenset(
            {
                Permission.SELF,
                Permission.MODELS_READ,
                Permission.DEPLOYMENTS_READ,
                Permission.PREDICT,
                Permission.OUTCOMES_WRITE,
                Permission.MONITORING_RUN,
                # A Kubernetes CronJob may evaluate rules and send notifications.
                Permission.ALERTS_RUN,
                # ... and materialize features on a schedule.
                Permission.FEATURES_MATERIALIZE,
            }
        ),
    }
)


# What break-glass may grant: reads needed in an emergency, never management or review
# (so it cannot be turned into a lasting privilege). Patient-data reads join as they land.
BREAKGLASS_ELIGIBLE = frozenset(
    {
        Permission.AUDIT_READ,
        Permission.USERS_READ,
        Permission.MODELS_READ,
        Permission.DEPLOYMENTS_READ,
    }
)


def permissions_of(role: str) -> frozenset[Permission]:
    """The permissions a role grants; an unknown role grants nothing."""
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


def render_matrix() -> str:
    """The role x permission table as Markdown, as it appears in docs/security.md."""
    roles = list(Role)
    lines = [
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        marks = ["yes" if permission in ROLE_PERMISSIONS[r] else "-" for r in roles]
        lines.append(
            f"| `{permission.value}` | {PERMISSION_DESCRIPTIONS[permission]} | "
            + " | ".join(marks)
            + " |"
        )
    return "\n".join(lines) + "\n"
