"""The jobs table's one mapping: it covers every Job field and every column, each value comes
back as it went in, and a new job's row is what the columns' defaults made before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from core.jobs import Job, JobOrigin, JobState
from core.store import Database, NewJob
from core.store._job_rows import COLUMNS, INSERT, SELECT_LIST, insert_params, job_from_row, reserved
from tests.store.helpers import NOW, make_job


def test_every_job_field_has_one_column() -> None:
    attrs = [column.attr for column in COLUMNS]
    assert len(attrs) == len(set(attrs))
    assert set(attrs) == {field.name for field in dataclasses.fields(Job)}


async def test_every_column_of_the_table_is_declared(tmp_path: Path) -> None:
    async with Database.open(tmp_path / "db.sqlite3") as db:
        table = [row["name"] for row in await db.fetchall("PRAGMA table_info(jobs)")]
    assert sorted(column.name for column in COLUMNS) == sorted(table)


async def test_a_job_with_every_field_set_reads_back_equal(tmp_path: Path) -> None:
    new = make_job()
    job = dataclasses.replace(
        reserved(new, "2026-05-28", NOW),
        origin=JobOrigin.REROLL,
        state=JobState.DELIVERED,
        webhook_token_hash="digest",
        task_id="task-1",
        submit_attempts=2,
        poll_count=3,
        delivery_attempts=1,
        result_url="https://cdn.example/out.mp4",
        error="a retry",
        status_message_id=11,
        thread_id=12,
        delivered_message_id=13,
        submitting_at=NOW + 1,
        submitted_at=NOW + 2,
        running_at=NOW + 3,
        completed_at=NOW + 4,
        delivered_at=NOW + 5,
        failed_at=NOW + 6,
        cancelled_at=NOW + 7,
        updated_at=NOW + 8,
        user_notified_at=NOW + 9,
        reference_copies={"ref:1": [1, 2, 0]},
        user_name="Mika",
    )
    async with Database.open(tmp_path / "db.sqlite3") as db:
        async with db.transaction() as conn:
            parent = reserved(make_job(), "2026-05-28", NOW)
            await conn.execute(INSERT, insert_params(parent))
            job = dataclasses.replace(job, parent_job_id=parent.id)
            await conn.execute(INSERT, insert_params(job))
        row = await db.fetchone(f"SELECT {SELECT_LIST} FROM jobs WHERE id = ?", (job.id,))
    assert row is not None
    assert job_from_row(row) == job
    assert all(getattr(job, field.name) is not None for field in dataclasses.fields(Job))


async def test_a_new_jobs_row_is_what_the_column_defaults_gave(tmp_path: Path) -> None:
    # Before the mapping, a new job was inserted with only these columns and the table's
    # defaults filled the rest: the whole-row insert must leave the same row.
    def named(new: NewJob) -> NewJob:
        return dataclasses.replace(new, thread_id=77, user_name="Mika")

    by_defaults, by_mapping = named(make_job()), named(make_job())
    async with Database.open(tmp_path / "db.sqlite3") as db:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO jobs (id, guild_id, channel_id, user_id, origin, parent_job_id,"
                " state, request_json, references_json, cost_seconds, quota_day,"
                " webhook_token_hash, deadline_at, thread_id, created_at, updated_at,"
                " reference_copies_json, user_name)"
                " VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    by_defaults.id,
                    by_defaults.guild_id,
                    by_defaults.channel_id,
                    by_defaults.user_id,
                    by_defaults.origin.value,
                    by_defaults.parent_job_id,
                    json.dumps(by_defaults.request.to_stored()),
                    json.dumps([ref.to_json() for ref in by_defaults.references]),
                    by_defaults.cost_seconds,
                    "2026-05-28",
                    by_defaults.webhook_token_hash,
                    by_defaults.deadline_at,
                    by_defaults.thread_id,
                    NOW,
                    NOW,
                    json.dumps(by_defaults.reference_copies),
                    by_defaults.user_name,
                ),
            )
            await conn.execute(INSERT, insert_params(reserved(by_mapping, "2026-05-28", NOW)))
        rows = {
            row["id"]: dict(row)
            for row in await db.fetchall("SELECT * FROM jobs ORDER BY rowid")  # every column
        }
    old, new = rows.pop(by_defaults.id), rows.pop(by_mapping.id)
    assert old.pop("id") != new.pop("id")
    assert old == new
