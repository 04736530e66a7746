"""Per-job webhook URLs: only a digest is stored, the URL is derived again at submit time."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from core.jobs import Job
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.wan import Task
from core.webhook_tokens import (
    WEBHOOK_ROUTE,
    JobWebhooks,
    job_webhooks,
    token_digest,
    webhook_url_source,
)
from tests.discord_mocks import open_harness

PUBLIC = "https://bot.example"
HOOKS = {"WEBHOOK_PUBLIC_URL": PUBLIC, "WEBHOOK_PORT": "8080"}
SECRET = "dashboard-signing-secret"
WHO = Requester(guild_id=1, channel_id=2, user_id=3)
ROUTE = PUBLIC + WEBHOOK_ROUTE.replace("{token}", "")


async def accept(service: VideoService) -> Job:
    image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10_000, 512, 512)
    built = build_request("Image 1 waves", [ReferenceInput(1, image)], GenerationOptions())
    return await service.accept(WHO, built)


def database_bytes(db_path: Path) -> bytes:
    """Everything SQLite keeps on disk for this database (file, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def token_of(url: str) -> str:
    assert url.startswith(ROUTE)
    return url.removeprefix(ROUTE)


async def test_the_database_keeps_only_the_digest_and_the_url_is_derived(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    async with open_harness(db, env={**HOOKS, "WEBHOOK_SECRET": SECRET}) as h:
        job = await accept(h.service)
        source = webhook_url_source(h.settings)
        assert source is not None
        url = source(job)
        assert url is not None
        token = token_of(url)
        assert job.webhook_token_hash == token_digest(token)
        stored = await h.store.get_job(job.id)
        assert stored is not None and stored.request.webhook_url is None
        assert source(stored) == url  # what the tracker gets back from the store is enough

        # The receiver finds the job by the token in the URL the API calls.
        task = Task.from_json({"task_id": "t-1", "status": "IN_PROGRESS"})
        assert await h.tracker.on_webhook(token, task, False)

        with sqlite3.connect(db) as conn:
            (raw,) = conn.execute("SELECT request_json FROM jobs").fetchone()
        assert json.loads(raw)["v"] == 1 and "webhook" not in raw
        assert token.encode() not in database_bytes(db)

    # After a restart, the same settings give the same URL: nothing else had to be kept.
    again = job_webhooks(h.settings)
    assert again is not None and again.url(job) == url


@pytest.mark.parametrize(
    ("env", "key"),
    [({"WEBHOOK_SECRET": SECRET}, SECRET), ({}, "test-key")],  # test-key: TEST_ENV's API key
    ids=["webhook secret", "api key without one"],
)
async def test_tokens_are_keyed_by_the_webhook_secret_else_the_api_key(
    tmp_path: Path, env: dict[str, str], key: str
) -> None:
    async with open_harness(tmp_path / "db.sqlite3", env={**HOOKS, **env}) as h:
        job = await accept(h.service)
    assert job.webhook_token_hash == JobWebhooks(key, PUBLIC).digest(job.id)
    assert job.webhook_token_hash != JobWebhooks("some-other-key", PUBLIC).digest(job.id)


async def test_without_webhooks_nothing_is_derived(tmp_path: Path) -> None:
    async with open_harness(tmp_path / "db.sqlite3") as h:
        job = await accept(h.service)
        assert job.webhook_token_hash is None
        assert webhook_url_source(h.settings) is None
        # Webhooks turned on later: a job accepted without them is tracked by polling.
        assert JobWebhooks(SECRET, PUBLIC).url(job) is None


async def test_a_key_change_leaves_waiting_jobs_to_polling_and_submitted_ones_reachable(
    tmp_path: Path,
) -> None:
    async with open_harness(tmp_path / "db.sqlite3", env={**HOOKS, "WEBHOOK_SECRET": SECRET}) as h:
        job = await accept(h.service)
        old_url = JobWebhooks(SECRET, PUBLIC).url(job)
        assert old_url is not None
        rotated = JobWebhooks("the-new-secret", PUBLIC)
        # Not yet submitted: its token cannot be rebuilt, so it is submitted without a URL.
        assert rotated.url(job) is None
        # Submitted before the change: the API calls the old URL, whose digest is still stored.
        task = Task.from_json({"task_id": "t-1", "status": "IN_PROGRESS"})
        assert await h.tracker.on_webhook(token_of(old_url), task, False)


def test_the_key_never_shows() -> None:
    webhooks = JobWebhooks(SECRET, PUBLIC)
    assert SECRET not in repr(webhooks)
    url = webhooks.url
    assert SECRET not in repr(url)
