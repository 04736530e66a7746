"""Issue 12, several processes on one database: job leases, pending webhooks, IDENTIFY turns.

- ``jobs.lease_owner`` / ``lease_until`` / ``lease_fence``: which process runs the job's next
  action, until when, and the fencing counter every write after a claim must match;
- ``jobs.webhook_at``: a webhook arrived (at any process) and the job's owner has not acted on
  it yet;
- indexes for claiming jobs with work left, for an owner's leases and its pending webhooks;
- ``identify_slots``: when each gateway ``max_concurrency`` bucket last sent IDENTIFY.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SECONDS: Final[TypeEngine[float]] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
CLAIMABLE: Final = (
    "(state NOT IN ('delivered', 'failed', 'cancelled')"
    " OR (state IN ('failed', 'cancelled') AND user_notified_at IS NULL))"
)


def where(sql: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(sql), "postgresql_where": sa.text(sql)}


def upgrade() -> None:
    # Added columns only: on SQLite, ALTER TABLE ADD COLUMN (the batch copies no table, which
    # would drop the legacy file's unnamed CHECKs). So the default is a plain value, not an
    # expression: with an expression Alembic copies the table.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.Text))
        batch.add_column(sa.Column("lease_until", SECONDS))
        batch.add_column(sa.Column("lease_fence", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("webhook_at", SECONDS))
    op.create_index("jobs_claim", "jobs", ["created_at"], **where(CLAIMABLE))
    op.create_index("jobs_leased", "jobs", ["lease_owner"], **where(CLAIMABLE))
    op.create_index("jobs_webhooks", "jobs", ["lease_owner"], **where("webhook_at IS NOT NULL"))
    op.create_table(
        "identify_slots",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("identified_at", SECONDS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identify_slots")
    op.drop_index("jobs_webhooks", "jobs")
    op.drop_index("jobs_leased", "jobs")
    op.drop_index("jobs_claim", "jobs")
    with op.batch_alter_table("jobs") as batch:
        for column in ("webhook_at", "lease_fence", "lease_until", "lease_owner"):
            batch.drop_column(column)
