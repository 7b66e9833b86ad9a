"""audit: a MAC on every record, so that only a holder of the signing key can add one

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 10:00:00

``audit_events.mac`` holds HMAC-SHA256 of the record's hash under a key derived from the audit
signing key (src/medops/audit/chain.py). Records written before this migration keep no MAC:
their chains began without a signed opening and are grandfathered (src/medops/audit/anchor.py).
A plain ADD COLUMN (no SQLite batch copy), so the append-only triggers stay in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both dialects (SQLite >= 3.35): no table copy, so the
    # append-only triggers survive.
    op.execute("ALTER TABLE audit_events DROP COLUMN mac")
