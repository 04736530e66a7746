"""Migrations: Alembic's numbered revisions at open, on both engines, building one schema
whichever way a database got there; SQLite files made before Alembic upgrade in place with
nothing lost; legacy migration 004 scrubs webhook tokens from old databases down to the bytes on
disk."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from core.jobs import JobState
from core.request import GenerationRequest, Reference
from core.store import Database, NewJob, QuotaLimits, Store, utc_day
from core.store._migrate import alembic_config, head, legacy_migrations
from core.store._tables import metadata
from tests.store.helpers import NOW, USER, make_job
from tests.store.legacy import DAY, SNOWFLAKE, fill, legacy_database
from tests.store.schema import rows_of, schema_of

NEW_JOB_COLUMNS = {"lease_owner": None, "lease_until": None, "lease_fence": 0, "webhook_at": None}


async def revision_of(db: Database) -> str:
    async with db.engine.connect() as conn:
        return str((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar())


async def test_a_new_database_is_at_head_and_reopening_keeps_its_rows(
    database: Path | str,
) -> None:
    async with Store.open(database) as store:
        assert await revision_of(store.database) == head()
    async with Store.open(database) as reopened:  # the second open applies nothing
        await reopened.create_job(make_job(), QuotaLimits(60, 2), NOW)
    async with Store.open(database) as again:
        assert await again.unfinished_count(10, USER) == 1
        assert await revision_of(again.database) == head()


async def test_processes_opening_a_new_database_together_migrate_it_once(
    database: Path | str,
) -> None:
    async def open_and_write(user: int) -> str:
        async with Store.open(database) as store:
            await store.create_job(make_job(user=user), QuotaLimits(60, 2), NOW)
            return await revision_of(store.database)

    assert await asyncio.gather(*(open_and_write(user) for user in range(3))) == [head()] * 3
    async with Store.open(database) as store:
        assert sum([await store.unfinished_count(10, user) for user in range(3)]) == 3


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Store.open(path):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_legacy_migrations_are_numbered_without_gaps_and_revisions_in_a_line() -> None:
    versions = [version for version, _ in legacy_migrations()]
    assert versions == list(range(1, 8))
    from core.store._migrate import _script

    chain = [revision.revision for revision in reversed(list(_script().walk_revisions()))]
    assert chain == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert chain[-1] == head()


def _every_revision(sync: Connection) -> None:
    command.upgrade(alembic_config(sync), "head")


async def _schemas(database: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the schema a new database gets at open, the one every revision in turn builds)."""
    async with Database.open(database) as db, db.engine.connect() as conn:
        at_open = await conn.run_sync(schema_of)
        await conn.run_sync(lambda sync: metadata.drop_all(sync))
        await conn.execute(text("DROP TABLE alembic_version"))
        await conn.commit()
        async with conn.begin():
            await conn.run_sync(_every_revision)
        by_revisions = await conn.run_sync(schema_of)
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert diff == []  # _tables.py says what the revisions build
    return at_open, by_revisions


async def test_a_new_database_gets_the_schema_the_revisions_build(database: Path | str) -> None:
    at_open, by_revisions = await _schemas(database)
    assert at_open == by_revisions
    assert "identify_slots" in at_open


async def test_an_old_file_upgrades_to_the_schema_of_a_new_one(tmp_path: Path) -> None:
    legacy_database(tmp_path / "old.sqlite3", 7).close()
    async with Database.open(tmp_path / "old.sqlite3") as db, db.engine.connect() as conn:
        upgraded = await conn.run_sync(schema_of)
    at_open, _ = await _schemas(tmp_path / "new.sqlite3")
    assert upgraded == at_open


@pytest.mark.parametrize("version", [1, 3, 7])
async def test_an_old_file_keeps_every_row_through_the_upgrade(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "db.sqlite3"
    conn = legacy_database(path, version)
    fill(conn)
    conn.close()
    before = rows_of(path)
    assert before["jobs"] and before["quota_ledger"] and before["audit_log"]

    async with Store.open(path) as store:
        assert await revision_of(store.database) == head()
        # The old rows read back through the new queries.
        jobs = {job.state: job for job in await store.jobs_in_guild(SNOWFLAKE, limit=10)}
        done = jobs[JobState.DELIVERED]
        assert done.task_id == "task-done" and done.status_message_id == SNOWFLAKE + 3
        assert jobs[JobState.RESERVED].parent_job_id == done.id
        assert await store.usage(SNOWFLAKE, 21, DAY) == -25  # reserve, refund, grant, reset
        settings = await store.guild_settings(SNOWFLAKE)
        assert settings.paused and settings.nsfw_only and settings.exempt_role_id == SNOWFLAKE + 6
        assert (await store.user_override(SNOWFLAKE, 21)).daily_seconds == 300
        assert (await store.get_ban(SNOWFLAKE, 23)).reason == "spam"
        assert await store.channel_rules(SNOWFLAKE) == {SNOWFLAKE + 1: "allow", 77: "deny"}
        assert [e.action for e in await store.audit_entries(SNOWFLAKE)] == ["quota.grant", "ban"]
        # ... and the upgraded file takes new work.
        new = await store.create_job(make_job(user=30), QuotaLimits(60, 2), NOW)
        claimed = await store.claim_jobs("local", [JobState.RESERVED], NOW, 20, 10)
        assert {lease.job_id for lease in claimed} == {new.id, jobs[JobState.RESERVED].id}

    after = rows_of(path)
    assert set(after) >= set(before) | {"alembic_version", "identify_slots"}
    for table, rows in before.items():
        # Every old row, every old column, as it was (columns added since take their defaults;
        # the claim above leased the reroll).
        kept, added = after[table][: len(rows)], after[table][len(rows) :]
        assert [{k: row[k] for k in old} for row, old in zip(kept, rows, strict=True)] == rows
        assert all(new.id in (row.get("id"), row.get("job_id")) for row in added), table
    untouched = [row for row in after["jobs"] if row["lease_owner"] is None]
    assert len(untouched) == 3
    assert all({k: row[k] for k in NEW_JOB_COLUMNS} == NEW_JOB_COLUMNS for row in untouched)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7  # legacy all applied


async def test_a_failing_legacy_migration_rolls_back_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite3"
    legacy_database(path, 3).close()
    broken = [
        *legacy_migrations()[:3],
        (4, "CREATE TABLE fourth (id INTEGER);\nINSERT INTO missing VALUES (1);"),
    ]
    monkeypatch.setattr("core.store._migrate.legacy_migrations", lambda: broken)
    with pytest.raises(OperationalError, match="missing"):
        async with Database.open(path):
            pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "fourth" not in tables and "alembic_version" not in tables


async def test_a_file_from_a_newer_bot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Store.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(RuntimeError, match="newer version"):
        async with Store.open(path):
            pass


# --- the stored request, and databases written before it ---------------------------------------


def test_the_stored_request_round_trips_and_never_carries_the_webhook_url() -> None:
    request = GenerationRequest(
        prompt="Image 1 and Video 1 dance",
        image_refs=(Reference("https://cdn.example/a.png", "https://cdn.example/a.mp3"),),
        video_refs=(Reference("https://cdn.example/b.mp4"),),
        negative_prompt="rain",
        start_image_url="https://cdn.example/s.png",
        aspect_ratio="9:16",
        resolution="720P",
        duration=8,
        seed=0,
        prompt_extend=False,
        webhook_url="https://bot.example/webhooks/wan/secret-token-0123456789",
    )
    stored = json.loads(json.dumps(request.to_stored()))
    assert stored["v"] == 1 and "secret-token" not in json.dumps(stored)
    loaded = GenerationRequest.from_stored(stored)
    assert loaded == request and loaded.webhook_url is None
    assert loaded.to_json() == request.replace(webhook_url=None).to_json()  # the same body
    with pytest.raises(ValueError, match="version 2"):
        GenerationRequest.from_stored({**stored, "v": 2})


OLD_SCHEMA_VERSION = 3  # the last migration before requests had a stored form of their own


def old_database(path: Path, jobs: list[tuple[NewJob, str, str | None]]) -> None:
    """A database as the code before migration 004 wrote it, left as a crash leaves it.

    Each job is (job, final state, webhook token): the request stored as the API body with the
    webhook URL in it, inserted and moved the way the old store did. The files are copied while
    the connection is open, so the WAL still holds every page (the token was found there).
    """
    live = path.with_name("live.sqlite3")
    conn = legacy_database(live, OLD_SCHEMA_VERSION)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    for job, state, token in jobs:
        url = None if token is None else f"https://bot.example/webhooks/wan/{token}"
        conn.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, origin, parent_job_id,"
            " state, request_json, references_json, cost_seconds, quota_day,"
            " webhook_token_hash, deadline_at, thread_id, created_at, updated_at,"
            " reference_copies_json)"
            " VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.guild_id,
                job.channel_id,
                job.user_id,
                job.origin.value,
                None,
                json.dumps(job.request.replace(webhook_url=url).to_json()),
                json.dumps([ref.to_json() for ref in job.references]),
                job.cost_seconds,
                utc_day(NOW),
                None if token is None else hashlib.sha256(token.encode()).hexdigest(),
                job.deadline_at,
                None,
                NOW,
                NOW,
                "{}",
            ),
        )
        # The old store's transitions rewrote the row, leaving old copies in the file's pages.
        for step, name in enumerate(("submitting", "submitted", "running", "completed")):
            if state == "reserved" or (state == "submitted" and step > 1):
                break
            conn.execute(
                f"UPDATE jobs SET state = ?, {name}_at = ?, task_id = ? WHERE id = ?",
                (name, NOW + 10 * (step + 1), f"task-{job.id}", job.id),
            )
        if state == "delivered":
            conn.execute(
                "UPDATE jobs SET state = 'delivered', delivered_at = ? WHERE id = ?", (NOW, job.id)
            )
    try:
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{live}{suffix}", f"{path}{suffix}")
    finally:
        conn.close()


def disk_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


async def test_a_database_from_before_the_stored_form_loads_and_loses_its_tokens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    waiting, running, done, plain = (make_job(user=USER + n) for n in range(4))
    tokens = {job.id: secrets.token_urlsafe(32) for job in (waiting, running, done)}
    old_database(
        path,
        [
            (waiting, "reserved", tokens[waiting.id]),
            (running, "submitted", tokens[running.id]),
            (done, "delivered", tokens[done.id]),
            (plain, "delivered", None),  # accepted while webhooks were off
        ],
    )
    on_disk = disk_bytes(path)
    assert all(token.encode() in on_disk for token in tokens.values())  # as the issue found

    async with Store.open(path) as store:
        for new in (waiting, running, done, plain):
            job = await store.get_job(new.id)
            assert job is not None
            assert job.request == new.request and job.request.webhook_url is None
            assert job.references == new.references
            token = tokens.get(new.id)
            assert job.webhook_token_hash == (None if token is None else digest_of(token))
        # A webhook for a job submitted before the upgrade still finds it by the kept digest.
        assert (await store.job_by_webhook_token_hash(digest_of(tokens[running.id]))).id == (
            running.id
        )
        assert (await store.get_job(running.id)).state is JobState.SUBMITTED
        # Old rows (the API body, version 0) and new ones (version 1) count for run times alike.
        fresh = await store.create_job(make_job(user=99), QuotaLimits(60, 2), NOW)
        await store.transition(fresh.id, JobState.SUBMITTING, NOW)
        await store.transition(fresh.id, JobState.SUBMITTED, NOW, task_id="task-fresh")
        await store.transition(fresh.id, JobState.COMPLETED, NOW + 7)
        completions = await store.recent_completions(10)
        assert sorted(s for r, d, s in completions if (r, d) == ("1080P", 5)) == [7.0, 20.0, 20.0]

        on_disk = disk_bytes(path)
        assert not [job_id for job_id, token in tokens.items() if token.encode() in on_disk]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
            rows = dict(conn.execute("SELECT id, request_json FROM jobs").fetchall())
        assert all("webhook_url" not in raw for raw in rows.values())
        assert json.loads(rows[fresh.id])["v"] == 1 and "v" not in json.loads(rows[plain.id])


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
