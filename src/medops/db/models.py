"""Import every domain's tables so that ``Base.metadata`` knows them all (Alembic, tests)."""

from medops.audit.models import AuditCheckpoint, AuditEvent
from medops.auth.models import ApiToken, BreakGlassGrant, LoginThrottle, RecoveryCode, User
from medops.db.base import Base

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "BreakGlassGrant",
    "LoginThrottle",
    "RecoveryCode",
    "User",
    "metadata",
]
