"""The jobs table's one mapping: it covers every Job field and every column but the leases,
each value comes back as it went in, and a new job's row is what the columns' defaults made
before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sqlalchemy import insert, inspect, select

from core.jobs import Job, JobOrigin, JobState
from core.store import Database, NewJob
from core.store._job_rows import (
    COLUMNS,
    LEASE_COLUMNS,
    insert_params,
    job_from_row,
    reserved,
    select_jobs,
)
from core.store._tables import jobs
from tests.store.helpers import NOW, make_job


def test_every_job_field_has_one_column() -> None:
    attrs = [column.attr for column in COLUMNS]
    assert len(attrs) == len(set(attrs))
    assert set(attrs) == {field.name for field in dataclasses.fields(Job)}


async def test_every_column_of_the_table_is_declared(database: Path | str) -> None:
    async with Database.open(database) as db, db.engine.connect() as conn:
        table = await conn.run_sync(
            lambda sync: [column["name"] for column in inspect(sync).get_columns("jobs")]
        )
    assert sorted([column.name for column in COLUMNS] + list(LEASE_COLUMNS)) == sorted(table)


async def test_a_job_with_every_field_set_reads_back_equal(database: Path | str) -> None:
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
        status_message_id=1_234_567_890_123_456_789,
        thread_id=12,
        delivered_message_id=13,
        submitting_at=NOW + 1,
        submitted_at=NOW + 2,
        running_at=NOW + 3,
        completed_at=NOW + 4,
        delivered_at=NOW + 5,
        failed_at=NOW + 6,
        cancelled_at=NOW + 7.25,
        updated_at=NOW + 8,
        user_notified_at=NOW + 9,
        reference_copies={"ref:1": [1, 2, 0]},
        user_name="Mika",
    )
    async with Database.open(database) as db:
        async with db.transaction() as conn:
            parent = reserved(make_job(), "2026-05-28", NOW)
            await conn.execute(insert(jobs), insert_params(parent))
            job = dataclasses.replace(job, parent_job_id=parent.id)
            await conn.execute(insert(jobs), insert_params(job))
        row = await db.fetchone(select_jobs().where(jobs.c.id == job.id))
    assert row is not None
    read = job_from_row(row)
    assert read == job
    assert all(getattr(job, field.name) is not None for field in dataclasses.fields(Job))
    assert all(isinstance(read.cancelled_at, float) for read in (read,))


async def test_a_new_jobs_row_is_what_the_column_defaults_gave(database: Path | str) -> None:
    # Before the mapping, a new job was inserted with only these columns and the table's
    # defaults filled the rest: the whole-row insert must leave the same row.
    def named(new: NewJob) -> NewJob:
        return dataclasses.replace(new, thread_id=77, user_name="Mika")

    by_defaults, by_mapping = named(make_job()), named(make_job())
    async with Database.open(database) as db:
        async with db.transaction() as conn:
            await conn.execute(
                insert(jobs).values(
                    id=by_defaults.id,
                    guild_id=by_defaults.guild_id,
                    channel_id=by_defaults.channel_id,
                    user_id=by_defaults.user_id,
                    origin=by_defaults.origin.value,
                    parent_job_id=by_defaults.parent_job_id,
                    state="reserved",
                    request_json=json.dumps(by_defaults.request.to_stored()),
                    references_json=json.dumps([ref.to_json() for ref in by_defaults.references]),
                    cost_seconds=by_defaults.cost_seconds,
                    quota_day="2026-05-28",
                    webhook_token_hash=by_defaults.webhook_token_hash,
                    deadline_at=by_defaults.deadline_at,
                    thread_id=by_defaults.thread_id,
                    created_at=NOW,
                    updated_at=NOW,
                    reference_copies_json=json.dumps(by_defaults.reference_copies),
                    user_name=by_defaults.user_name,
                )
            )
            await conn.execute(insert(jobs), insert_params(reserved(by_mapping, "2026-05-28", NOW)))
        rows = {
            row["id"]: dict(row)
            for row in (r._mapping for r in await db.fetchall(select(jobs)))  # every column
        }
    old, new = rows.pop(by_defaults.id), rows.pop(by_mapping.id)
    assert old.pop("id") != new.pop("id")
    assert old == new
