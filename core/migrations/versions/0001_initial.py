"""The schema the legacy SQL migrations 001-007 made (core/migrations/legacy/).

A SQLite file made by those is stamped with this revision instead of running it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here: a revision never changes with core/store/_tables.py.
SNOWFLAKE: Final[TypeEngine[int]] = sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
SECONDS: Final[TypeEngine[float]] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
UNFINISHED: Final = "state NOT IN ('delivered', 'failed', 'cancelled')"


def where(sql: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(sql), "postgresql_where": sa.text(sql)}


def at(name: str, *, nullable: bool = True) -> sa.Column[float]:
    return sa.Column(name, SECONDS, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("channel_id", SNOWFLAKE, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("parent_job_id", sa.Text, sa.ForeignKey("jobs.id")),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("request_json", sa.Text, nullable=False),
        sa.Column("references_json", sa.Text, nullable=False),
        sa.Column("cost_seconds", sa.Integer, nullable=False),
        sa.Column("quota_day", sa.Text, nullable=False),
        sa.Column("webhook_token_hash", sa.Text, unique=True),
        sa.Column("task_id", sa.Text, unique=True),
        sa.Column("submit_attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("poll_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("delivery_attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        at("deadline_at", nullable=False),
        sa.Column("result_url", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("status_message_id", SNOWFLAKE),
        sa.Column("thread_id", SNOWFLAKE),
        sa.Column("delivered_message_id", SNOWFLAKE),
        at("created_at", nullable=False),
        at("submitting_at"),
        at("submitted_at"),
        at("running_at"),
        at("completed_at"),
        at("delivered_at"),
        at("failed_at"),
        at("cancelled_at"),
        at("updated_at", nullable=False),
        at("user_notified_at"),
        sa.Column("reference_copies_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("user_name", sa.Text),
        sa.CheckConstraint("origin IN ('command', 'reroll', 'reply')"),
        sa.CheckConstraint(
            "state IN ('reserved', 'submitting', 'submitted', 'running',"
            " 'completed', 'delivered', 'failed', 'cancelled')"
        ),
        sa.CheckConstraint("cost_seconds >= 0"),
    )
    op.create_index("jobs_unfinished", "jobs", ["state"], **where(UNFINISHED))
    op.create_index("jobs_by_user", "jobs", ["guild_id", "user_id", "created_at"])
    op.create_index("jobs_by_thread", "jobs", ["thread_id", "created_at"])
    op.create_index("jobs_by_guild", "jobs", ["guild_id", "created_at"])
    op.create_index(
        "jobs_unnotified",
        "jobs",
        ["state"],
        **where("state IN ('failed', 'cancelled') AND user_notified_at IS NULL"),
    )

    op.create_table(
        "quota_ledger",
        sa.Column("id", SNOWFLAKE, primary_key=True, autoincrement=True),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("actor_id", SNOWFLAKE),
        sa.Column("note", sa.Text),
        at("created_at", nullable=False),
        sa.CheckConstraint("kind IN ('reserve', 'commit', 'refund', 'grant', 'reset')"),
    )
    op.create_index(
        "ledger_once_per_job",
        "quota_ledger",
        ["job_id", "kind"],
        unique=True,
        **where("job_id IS NOT NULL"),
    )
    op.create_index("ledger_by_user_day", "quota_ledger", ["guild_id", "user_id", "day"])
    op.create_index("ledger_spend_by_day", "quota_ledger", ["day", "kind", "seconds"])
    op.create_index(
        "ledger_spend_by_guild_day", "quota_ledger", ["guild_id", "day", "kind", "seconds"]
    )

    op.create_table(
        "guild_settings",
        sa.Column("guild_id", SNOWFLAKE, primary_key=True, autoincrement=False),
        sa.Column("daily_seconds", sa.Integer),
        sa.Column("max_concurrent", sa.Integer),
        sa.Column("max_duration", sa.Integer),
        sa.Column("max_resolution", sa.Text),
        sa.Column("exempt_role_id", SNOWFLAKE),
        sa.Column("moderator_role_id", SNOWFLAKE),
        sa.Column("paused", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("pause_reason", sa.Text),
        sa.Column("nsfw_only", sa.Integer, nullable=False, server_default=sa.text("0")),
        at("updated_at", nullable=False),
        sa.Column("server_daily_seconds", sa.Integer),
        sa.CheckConstraint("server_daily_seconds IS NULL OR server_daily_seconds > 0"),
    )
    op.create_table(
        "user_overrides",
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("daily_seconds", sa.Integer),
        sa.Column("max_concurrent", sa.Integer),
        at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "user_id"),
    )
    op.create_table(
        "bans",
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("user_id", SNOWFLAKE, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor_id", SNOWFLAKE, nullable=False),
        at("created_at", nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "user_id"),
    )
    op.create_table(
        "channel_rules",
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("channel_id", SNOWFLAKE, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "channel_id"),
        sa.CheckConstraint("rule IN ('allow', 'deny')"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", SNOWFLAKE, primary_key=True, autoincrement=True),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("actor_id", SNOWFLAKE, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("before_json", sa.Text),
        sa.Column("after_json", sa.Text),
        at("created_at", nullable=False),
    )
    op.create_index("audit_by_guild", "audit_log", ["guild_id", "id"])

    op.create_table(
        "characters",
        sa.Column("id", SNOWFLAKE, primary_key=True, autoincrement=True),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("owner_id", SNOWFLAKE, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("media_json", sa.Text, nullable=False),
        sa.Column("voice_json", sa.Text),
        sa.Column("files_json", sa.Text, nullable=False),
        at("created_at", nullable=False),
        at("updated_at", nullable=False),
        sa.CheckConstraint("scope IN ('me', 'server')"),
        sa.CheckConstraint("kind IN ('image', 'video')"),
    )
    op.create_index(
        "characters_own_names",
        "characters",
        ["guild_id", "owner_id", "name_key"],
        unique=True,
        **where("scope = 'me'"),
    )
    op.create_index(
        "characters_server_names",
        "characters",
        ["guild_id", "name_key"],
        unique=True,
        **where("scope = 'server'"),
    )
    op.create_index("characters_by_guild", "characters", ["guild_id", "scope", "name_key"])
    op.create_table(
        "character_libraries",
        sa.Column("guild_id", SNOWFLAKE, primary_key=True, autoincrement=False),
        sa.Column("channel_id", SNOWFLAKE, nullable=False),
        at("created_at", nullable=False),
    )
    op.create_table(
        "character_settings",
        sa.Column("guild_id", SNOWFLAKE, primary_key=True, autoincrement=False),
        sa.Column("editor_role_id", SNOWFLAKE),
        at("updated_at", nullable=False),
    )
    op.create_table(
        "job_prompts",
        sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("prompt", sa.Text, nullable=False),
    )
    op.create_table(
        "thread_hints",
        sa.Column("thread_id", SNOWFLAKE, primary_key=True, autoincrement=False),
        at("created_at", nullable=False),
    )


def downgrade() -> None:
    for table in (
        "thread_hints",
        "job_prompts",
        "character_settings",
        "character_libraries",
        "characters",
        "audit_log",
        "channel_rules",
        "bans",
        "user_overrides",
        "guild_settings",
        "quota_ledger",
        "jobs",
    ):
        op.drop_table(table)
