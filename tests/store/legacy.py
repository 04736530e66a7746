"""SQLite files as the code before Alembic made them: the legacy SQL migrations applied
directly (as its ``migrate()`` did), ``PRAGMA user_version`` set, and rows written with that
code's own SQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from core.store._migrate import legacy_migrations, split_sql
from tests.store.helpers import NOW, make_job

DAY = "2026-05-28"
SNOWFLAKE = 1_234_567_890_123_456_789  # a real Discord id's size: past 2**53


def legacy_database(path: Path, version: int) -> sqlite3.Connection:
    """A file migrated by legacy SQL 001..``version``; returns its open connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    for number, sql in legacy_migrations():
        if number > version:
            break
        conn.execute("BEGIN IMMEDIATE")
        for statement in split_sql(sql):
            if statement.upper() != "VACUUM":
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("COMMIT")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _job_row(
    state: str, *, user: int, parent: str | None = None, **extra: object
) -> dict[str, object]:
    new = make_job(user=user)
    row: dict[str, object] = {
        "id": new.id,
        "guild_id": SNOWFLAKE,
        "channel_id": SNOWFLAKE + 1,
        "user_id": user,
        "origin": "command" if parent is None else "reroll",
        "parent_job_id": parent,
        "state": state,
        "request_json": json.dumps(new.request.to_stored()),
        "references_json": json.dumps([ref.to_json() for ref in new.references]),
        "cost_seconds": new.cost_seconds,
        "quota_day": DAY,
        "deadline_at": new.deadline_at,
        "created_at": NOW,
        "updated_at": NOW + 1.5,
    }
    row.update(extra)
    return row


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, object]) -> None:
    names = ", ".join(row)
    conn.execute(
        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )


def fill(conn: sqlite3.Connection) -> None:
    """Jobs, ledger rows, settings, overrides, bans, channel rules, audit rows, characters and
    the rest, as far as the file's schema goes."""
    tables = _tables(conn)
    jobs_columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    conn.execute("BEGIN IMMEDIATE")
    done = _job_row(
        "delivered",
        user=SNOWFLAKE + 2,
        task_id="task-done",
        submitting_at=NOW + 1,
        submitted_at=NOW + 2,
        completed_at=NOW + 32,
        delivered_at=NOW + 40,
        result_url="https://cdn.example/out.mp4",
        status_message_id=SNOWFLAKE + 3,
        thread_id=SNOWFLAKE + 4,
        delivered_message_id=SNOWFLAKE + 5,
        webhook_token_hash="digest-done",
        poll_count=3,
        submit_attempts=1,
    )
    failed = _job_row("failed", user=21, failed_at=NOW + 9, error="refused by the API")
    running = _job_row("running", user=22, task_id="task-running", running_at=NOW + 3)
    reroll = _job_row("reserved", user=SNOWFLAKE + 2, parent=str(done["id"]))
    if "user_notified_at" in jobs_columns:
        failed["user_notified_at"] = NOW + 10
    if "reference_copies_json" in jobs_columns:
        done["reference_copies_json"] = json.dumps({"ref:1": [SNOWFLAKE, SNOWFLAKE + 1, 0]})
    if "user_name" in jobs_columns:
        done["user_name"] = "Mika"
    for job in (done, failed, running, reroll):
        _insert(conn, "jobs", job)
    ledger = [
        (done, "reserve", 5),
        (done, "commit", 0),
        (failed, "reserve", 5),
        (failed, "refund", -5),
        (running, "reserve", 5),
        (reroll, "reserve", 5),
    ]
    for job, kind, seconds in ledger:
        _insert(
            conn,
            "quota_ledger",
            {
                "guild_id": job["guild_id"],
                "user_id": job["user_id"],
                "job_id": job["id"],
                "kind": kind,
                "seconds": seconds,
                "day": DAY,
                "created_at": NOW,
            },
        )
    for kind, seconds, note in (("grant", -20, "event"), ("reset", -5, None)):
        _insert(
            conn,
            "quota_ledger",
            {
                "guild_id": SNOWFLAKE,
                "user_id": 21,
                "job_id": None,
                "kind": kind,
                "seconds": seconds,
                "day": DAY,
                "actor_id": SNOWFLAKE + 9,
                "note": note,
                "created_at": NOW + 2,
            },
        )
    settings: dict[str, object] = {
        "guild_id": SNOWFLAKE,
        "daily_seconds": 120,
        "max_concurrent": 3,
        "max_duration": 10,
        "max_resolution": "720P",
        "exempt_role_id": SNOWFLAKE + 6,
        "moderator_role_id": SNOWFLAKE + 7,
        "paused": 1,
        "pause_reason": "maintenance",
        "nsfw_only": 1,
        "updated_at": NOW,
    }
    if "server_daily_seconds" in {
        row[1] for row in conn.execute("PRAGMA table_info(guild_settings)")
    }:
        settings["server_daily_seconds"] = 600
    _insert(conn, "guild_settings", settings)
    _insert(conn, "guild_settings", {"guild_id": 5, "updated_at": NOW})  # all defaults
    _insert(
        conn,
        "user_overrides",
        {
            "guild_id": SNOWFLAKE,
            "user_id": 21,
            "daily_seconds": 300,
            "max_concurrent": None,
            "updated_at": NOW,
        },
    )
    _insert(
        conn,
        "bans",
        {
            "guild_id": SNOWFLAKE,
            "user_id": 23,
            "reason": "spam",
            "actor_id": SNOWFLAKE + 9,
            "created_at": NOW,
        },
    )
    _insert(
        conn, "channel_rules", {"guild_id": SNOWFLAKE, "channel_id": SNOWFLAKE + 1, "rule": "allow"}
    )
    _insert(conn, "channel_rules", {"guild_id": SNOWFLAKE, "channel_id": 77, "rule": "deny"})
    for action in ("ban", "quota.grant"):
        _insert(
            conn,
            "audit_log",
            {
                "guild_id": SNOWFLAKE,
                "actor_id": SNOWFLAKE + 9,
                "action": action,
                "target": "user:21",
                "before_json": json.dumps(None),
                "after_json": json.dumps({"reason": "spam"}),
                "created_at": NOW,
            },
        )
    if "characters" in tables:
        media = {
            "url": "https://cdn.example/fox.png",
            "filename": "fox.png",
            "content_type": "image/png",
            "size": 900,
            "width": 512,
            "height": 512,
        }
        for scope, owner in (("me", 21), ("server", 22)):
            _insert(
                conn,
                "characters",
                {
                    "guild_id": SNOWFLAKE,
                    "owner_id": owner,
                    "scope": scope,
                    "name": "Fox",
                    "name_key": "fox",
                    "kind": "image",
                    "media_json": json.dumps(media),
                    "voice_json": None,
                    "files_json": json.dumps({"media": [SNOWFLAKE, SNOWFLAKE + 1, 0]}),
                    "created_at": NOW,
                    "updated_at": NOW,
                },
            )
        _insert(
            conn,
            "character_libraries",
            {"guild_id": SNOWFLAKE, "channel_id": SNOWFLAKE + 8, "created_at": NOW},
        )
        _insert(
            conn,
            "character_settings",
            {"guild_id": SNOWFLAKE, "editor_role_id": SNOWFLAKE + 6, "updated_at": NOW},
        )
        _insert(conn, "job_prompts", {"job_id": done["id"], "prompt": "{fox} waves"})
        _insert(conn, "thread_hints", {"thread_id": SNOWFLAKE + 4, "created_at": NOW})
    conn.execute("COMMIT")
