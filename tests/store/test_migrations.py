"""Numbered migrations: applied once, in order; migration 004 scrubs webhook tokens from old
databases down to the bytes on disk."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from core.jobs import JobState
from core.request import GenerationRequest, Reference
from core.store import Database, NewJob, QuotaLimits, Store, utc_day
from core.store._db import migrations
from tests.store.helpers import NOW, USER, make_job


async def test_migrations_set_user_version_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Store.open(path):
        pass
    async with Store.open(path) as reopened:  # second open applies nothing and keeps data
        await reopened.create_job(make_job(), QuotaLimits(60, 2), NOW)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_a_failing_migration_rolls_back_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "some_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "001_first.sql").write_text("CREATE TABLE first (id INTEGER);\n")
    (package / "002_broken.sql").write_text(
        "-- the second statement fails: the first must not stay\n"
        "CREATE TABLE second (id INTEGER);\nINSERT INTO missing VALUES (1);\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("core.store._db.MIGRATIONS_PACKAGE", "some_migrations")
    path = tmp_path / "db.sqlite3"
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        async with Database.open(path):
            pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"first"}


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
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    folder = resources.files("core.migrations")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql") and int(entry.name[:3]) <= OLD_SCHEMA_VERSION:
            conn.executescript(entry.read_text(encoding="utf-8"))
    conn.execute(f"PRAGMA user_version = {OLD_SCHEMA_VERSION}")
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
            assert conn.execute("PRAGMA user_version").fetchone()[0] >= 4
            rows = dict(conn.execute("SELECT id, request_json FROM jobs").fetchall())
        assert all("webhook_url" not in raw for raw in rows.values())
        assert json.loads(rows[fresh.id])["v"] == 1 and "v" not in json.loads(rows[plain.id])


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
