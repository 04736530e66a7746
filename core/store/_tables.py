"""Every table of the store, for SQLAlchemy Core (the queries) and Alembic (the migrations).

The schema is the one the legacy SQL migrations 001-007 built on SQLite, plus revision 0002's
leases. Discord snowflakes are :data:`Snowflake` (BIGINT on PostgreSQL, INTEGER on SQLite, which
is 64-bit there, and must stay INTEGER for ``INTEGER PRIMARY KEY`` to be the rowid); times are
:data:`Seconds` (double precision; REAL on SQLite). JSON documents are kept as text, so a copy
between engines is byte for byte.

Partial indexes keep their predicates as literal SQL (:data:`UNFINISHED`, :data:`CLAIMABLE`):
SQLite only uses a partial index when the query repeats its condition word for word, so the
queries that need one use the same text.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

Snowflake: Final[TypeEngine[int]] = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
Seconds: Final[TypeEngine[float]] = Double().with_variant(sqlite.REAL(), "sqlite")
RowId: Final = Snowflake  # an INTEGER PRIMARY KEY on SQLite (the rowid), BIGSERIAL on PostgreSQL

# What SQLite needs to see, in this very form, to use the partial indexes below.
UNFINISHED: Final = "state NOT IN ('delivered', 'failed', 'cancelled')"
UNNOTIFIED: Final = "state IN ('failed', 'cancelled') AND user_notified_at IS NULL"
# A job with work left: unfinished, or ended without its requester being told yet.
CLAIMABLE: Final = (
    "(state NOT IN ('delivered', 'failed', 'cancelled')"
    " OR (state IN ('failed', 'cancelled') AND user_notified_at IS NULL))"
)

metadata = MetaData()


def _where(sql: str) -> dict[str, Any]:
    """A partial index's predicate, for both engines."""
    return {"sqlite_where": text(sql), "postgresql_where": text(sql)}


def _at(name: str, *, nullable: bool = True) -> Column[float]:
    return Column(name, Seconds, nullable=nullable)


jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("channel_id", Snowflake, nullable=False),
    Column("user_id", Snowflake, nullable=False),
    Column("origin", Text, nullable=False),
    Column("parent_job_id", Text, ForeignKey("jobs.id")),
    Column("state", Text, nullable=False),
    Column("request_json", Text, nullable=False),
    Column("references_json", Text, nullable=False),
    Column("cost_seconds", Integer, nullable=False),
    Column("quota_day", Text, nullable=False),
    Column("webhook_token_hash", Text, unique=True),  # sha256 of the job's webhook URL token
    Column("task_id", Text, unique=True),
    Column("submit_attempts", Integer, nullable=False, server_default=text("0")),
    Column("poll_count", Integer, nullable=False, server_default=text("0")),
    Column("delivery_attempts", Integer, nullable=False, server_default=text("0")),
    _at("deadline_at", nullable=False),
    Column("result_url", Text),
    Column("error", Text),
    Column("status_message_id", Snowflake),
    Column("thread_id", Snowflake),
    Column("delivered_message_id", Snowflake),
    _at("created_at", nullable=False),
    _at("submitting_at"),
    _at("submitted_at"),
    _at("running_at"),
    _at("completed_at"),
    _at("delivered_at"),
    _at("failed_at"),
    _at("cancelled_at"),
    _at("updated_at", nullable=False),
    _at("user_notified_at"),
    Column("reference_copies_json", Text, nullable=False, server_default="{}"),
    Column("user_name", Text),
    # Leases (revision 0002): which process runs the job's next action, until when, and the
    # fencing counter every write after a claim checks.
    Column("lease_owner", Text),
    _at("lease_until"),
    Column("lease_fence", Integer, nullable=False, server_default="0"),  # as 0002 adds it
    _at("webhook_at"),  # a webhook arrived and is not acted on yet
    CheckConstraint("origin IN ('command', 'reroll', 'reply')"),
    CheckConstraint(
        "state IN ('reserved', 'submitting', 'submitted', 'running',"
        " 'completed', 'delivered', 'failed', 'cancelled')"
    ),
    CheckConstraint("cost_seconds >= 0"),
)
Index("jobs_unfinished", jobs.c.state, **_where(UNFINISHED))
Index("jobs_by_user", jobs.c.guild_id, jobs.c.user_id, jobs.c.created_at)
Index("jobs_by_thread", jobs.c.thread_id, jobs.c.created_at)
Index("jobs_by_guild", jobs.c.guild_id, jobs.c.created_at)
Index("jobs_unnotified", jobs.c.state, **_where(UNNOTIFIED))
Index("jobs_claim", jobs.c.created_at, **_where(CLAIMABLE))
Index("jobs_leased", jobs.c.lease_owner, **_where(CLAIMABLE))
Index("jobs_webhooks", jobs.c.lease_owner, **_where("webhook_at IS NOT NULL"))

# Append-only: `seconds` is the signed change to a member's usage of `day` (reserve +cost,
# refund -cost, grant -extra, reset -used, commit 0 as a marker).
quota_ledger = Table(
    "quota_ledger",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("user_id", Snowflake, nullable=False),
    Column("job_id", Text, ForeignKey("jobs.id")),
    Column("kind", Text, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("day", Text, nullable=False),
    Column("actor_id", Snowflake),
    Column("note", Text),
    _at("created_at", nullable=False),
    CheckConstraint("kind IN ('reserve', 'commit', 'refund', 'grant', 'reset')"),
)
# A job reserves, commits and refunds at most once each: the database itself says so.
Index(
    "ledger_once_per_job",
    quota_ledger.c.job_id,
    quota_ledger.c.kind,
    unique=True,
    **_where("job_id IS NOT NULL"),
)
Index("ledger_by_user_day", quota_ledger.c.guild_id, quota_ledger.c.user_id, quota_ledger.c.day)
# Covering indexes: the sums inside every reservation read the index alone.
Index("ledger_spend_by_day", quota_ledger.c.day, quota_ledger.c.kind, quota_ledger.c.seconds)
Index(
    "ledger_spend_by_guild_day",
    quota_ledger.c.guild_id,
    quota_ledger.c.day,
    quota_ledger.c.kind,
    quota_ledger.c.seconds,
)

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("daily_seconds", Integer),
    Column("max_concurrent", Integer),
    Column("max_duration", Integer),
    Column("max_resolution", Text),
    Column("exempt_role_id", Snowflake),
    Column("moderator_role_id", Snowflake),
    Column("paused", Integer, nullable=False, server_default=text("0")),
    Column("pause_reason", Text),
    Column("nsfw_only", Integer, nullable=False, server_default=text("0")),
    _at("updated_at", nullable=False),
    Column("server_daily_seconds", Integer),
    CheckConstraint("server_daily_seconds IS NULL OR server_daily_seconds > 0"),
)

user_overrides = Table(
    "user_overrides",
    metadata,
    Column("guild_id", Snowflake, nullable=False),
    Column("user_id", Snowflake, nullable=False),
    Column("daily_seconds", Integer),
    Column("max_concurrent", Integer),
    _at("updated_at", nullable=False),
    PrimaryKeyConstraint("guild_id", "user_id"),
)

bans = Table(
    "bans",
    metadata,
    Column("guild_id", Snowflake, nullable=False),
    Column("user_id", Snowflake, nullable=False),
    Column("reason", Text),
    Column("actor_id", Snowflake, nullable=False),
    _at("created_at", nullable=False),
    PrimaryKeyConstraint("guild_id", "user_id"),
)

channel_rules = Table(
    "channel_rules",
    metadata,
    Column("guild_id", Snowflake, nullable=False),
    Column("channel_id", Snowflake, nullable=False),
    Column("rule", Text, nullable=False),
    PrimaryKeyConstraint("guild_id", "channel_id"),
    CheckConstraint("rule IN ('allow', 'deny')"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("actor_id", Snowflake, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("before_json", Text),
    Column("after_json", Text),
    _at("created_at", nullable=False),
)
Index("audit_by_guild", audit_log.c.guild_id, audit_log.c.id)

# Saved characters: names unique per owner (scope 'me') and per server (scope 'server'),
# compared case-insensitively through name_key.
characters = Table(
    "characters",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("owner_id", Snowflake, nullable=False),
    Column("scope", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("media_json", Text, nullable=False),
    Column("voice_json", Text),
    Column("files_json", Text, nullable=False),  # {"media": [channel, message, position], ...}
    _at("created_at", nullable=False),
    _at("updated_at", nullable=False),
    CheckConstraint("scope IN ('me', 'server')"),
    CheckConstraint("kind IN ('image', 'video')"),
)
Index(
    "characters_own_names",
    characters.c.guild_id,
    characters.c.owner_id,
    characters.c.name_key,
    unique=True,
    **_where("scope = 'me'"),
)
Index(
    "characters_server_names",
    characters.c.guild_id,
    characters.c.name_key,
    unique=True,
    **_where("scope = 'server'"),
)
Index("characters_by_guild", characters.c.guild_id, characters.c.scope, characters.c.name_key)

character_libraries = Table(  # the thread each server's character files are posted in
    "character_libraries",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("channel_id", Snowflake, nullable=False),
    _at("created_at", nullable=False),
)

character_settings = Table(  # who besides moderators may save server characters
    "character_settings",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("editor_role_id", Snowflake),
    _at("updated_at", nullable=False),
)

job_prompts = Table(  # the prompt as the member wrote it, when the sent one differs (labels)
    "job_prompts",
    metadata,
    Column("job_id", Text, ForeignKey("jobs.id"), primary_key=True),
    Column("prompt", Text, nullable=False),
)

thread_hints = Table(  # video threads told, once, how to ask for a new video there
    "thread_hints",
    metadata,
    Column("thread_id", Snowflake, primary_key=True, autoincrement=False),
    _at("created_at", nullable=False),
)

identify_slots = Table(  # the gateway's IDENTIFY turns per max_concurrency bucket (shards)
    "identify_slots",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    _at("identified_at", nullable=False),
)
