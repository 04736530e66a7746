"""The tracker against the fake WAN server: a job is delivered or refunded, whatever happens."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from core.jobs import Job, JobState
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.store import utc_day
from core.webhooks import HttpServer, WebhookReceiver, make_http_app
from tests.fakes.wan_server import FakeWanServer
from tests.tracker_rig import API_KEY, DEDICATED, FAST, rig, settings, until, until_state

pytestmark = pytest.mark.usefixtures("both_engines")  # SQLite and PostgreSQL


async def test_a_job_is_submitted_polled_and_delivered(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert final.delivered_message_id == 1001
        assert r.events.delivered[job.id] == r.wan.media_bytes
        assert r.events.states(job.id)[-1] is JobState.DELIVERED
        assert JobState.COMPLETED in r.events.states(job.id)
        assert len(r.wan.creates) == 1
        body = r.wan.creates[0].json
        assert body["image_urls"] == [{"url": "https://cdn.example/a.png"}]
        kinds = [e.kind for e in await r.store.ledger_entries(1, since_day=utc_day(job.created_at))]
        assert kinds == ["reserve", "commit"]
        # Adaptive polling: a handful of reads, not a busy loop.
        assert 1 <= final.poll_count <= 8


async def test_a_failed_task_is_refunded_and_reported(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.wan.fail_next_tasks = 1
        job = await r.accept(duration=7)
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert final.error and "could not generate" in final.error
        assert await r.store.usage(1, 3, final.quota_day) == 0
        assert r.events.deliveries == 0


async def test_cancel_refunds_once_and_a_later_completion_is_ignored(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan, rig(tmp_path, wan=wan) as r:
        job = await r.accept()
        await until(lambda: len(r.wan.tasks) == 1)
        await until_state(r, job, JobState.SUBMITTED)
        cancelled = await r.tracker.cancel(job.id, "moderator said so")
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        assert await r.tracker.cancel(job.id, "again") is None
        r.wan.complete(next(iter(r.wan.tasks)))
        r.tracker.wake(job.id)  # as a webhook would: the tracker acts on the job now
        await until(lambda: r.tracker.stats() == {"scheduled": 0, "running": 0})
        final = await r.store.get_job(job.id)
        assert final is not None and final.state is JobState.CANCELLED
        assert r.events.deliveries == 0
        refunds = [
            e
            for e in await r.store.ledger_entries(1, since_day=final.quota_day)
            if e.kind == "refund"
        ]
        assert len(refunds) == 1


async def test_a_task_that_never_finishes_fails_at_its_deadline(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan, rig(tmp_path, wan=wan, env={"JOB_DEADLINE_SECONDS": "1"}) as r:
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert final.error and "too long" in final.error
        assert await r.store.usage(1, 3, final.quota_day) == 0


async def test_a_503_storm_longer_than_client_retries_still_makes_one_task(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.wan.busy_next(5, method="POST")  # the client gives up after 3; the tracker retries
        r.wan.rate_limit_next(2, retry_after="0", method="GET")
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert len(r.wan.tasks) == 1
        assert final.submit_attempts >= 2


async def test_a_dropped_create_is_adopted_when_the_key_is_ours_alone(tmp_path: Path) -> None:
    async with rig(tmp_path, config=DEDICATED) as r:
        r.wan.drop_next(1, method="POST")  # the task is created; the answer never arrives
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert len(r.wan.tasks) == 1
        assert final.task_id == next(iter(r.wan.tasks))
        assert len(r.wan.creates) == 1


async def test_a_dropped_create_fails_and_refunds_without_evidence(tmp_path: Path) -> None:
    # The key may be shared with other tools: one unowned task is no proof that it is ours.
    async with rig(tmp_path) as r:
        r.wan.drop_next(1, method="POST")
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert "not charged" in (final.error or "")
        assert await r.store.usage(1, 3, final.quota_day) == 0
        assert len(r.wan.tasks) == 1 and len(r.wan.creates) == 1  # never a second task
        assert r.events.states(job.id)[-1] is JobState.FAILED  # the member is told


async def test_a_create_that_made_nothing_is_submitted_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.wan.fail_next(500, 1, method="POST")  # outcome unknown to the client; nothing created
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert len(r.wan.tasks) == 1
        assert len(r.wan.creates) == 2


async def test_ambiguous_unowned_tasks_fail_and_refund_rather_than_pay_twice(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        # Someone else's task on the same key: the bot cannot tell which one is its own.
        await r.api.create(
            build_request(
                "Image 1 runs",
                [ReferenceInput(1, Attachment("https://x.example/b.png", "b.png", "image/png", 9))],
                GenerationOptions(),
            ).request
        )
        r.wan.drop_next(1, method="POST")
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert "not charged" in (final.error or "")
        assert await r.store.usage(1, 3, final.quota_day) == 0
        assert len(r.wan.tasks) == 2  # never a third


async def test_a_restart_mid_job_finishes_it_from_the_database(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan:
        async with rig(tmp_path, wan=wan) as first:
            job = await first.accept()
            await until_state(first, job, JobState.SUBMITTED)
        # The first process is gone; its task completes while nobody watches.
        wan.complete(next(iter(wan.tasks)))
        async with rig(tmp_path, wan=wan) as second:
            final = await second.wait_finished(job)
            assert final.state is JobState.DELIVERED
            assert len(wan.creates) == 1


async def test_a_crash_between_create_and_record_is_adopted_on_restart(tmp_path: Path) -> None:
    async with rig(tmp_path, config=DEDICATED, start=False) as r:
        job = await r.accept()
        # What a crash right after the POST leaves: the job says submitting, the task exists.
        await r.store.transition(job.id, JobState.SUBMITTING, job.created_at - 60)
        task = await r.api.create(job.request)
        await r.tracker.start()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert final.task_id == task.task_id
        assert len(r.wan.creates) == 1


async def test_a_restart_resumes_reserved_and_completed_jobs(tmp_path: Path) -> None:
    async with rig(tmp_path, start=False) as r:
        reserved = await r.accept()
        other = await r.accept()
        task = await r.api.create(other.request)
        await r.store.transition(other.id, JobState.SUBMITTING, other.created_at)
        await r.store.transition(
            other.id, JobState.SUBMITTED, other.created_at, task_id=task.task_id
        )
        r.wan.complete(task.task_id)
        await r.store.transition(
            other.id, JobState.COMPLETED, other.created_at, result_url=r.wan.media_url(task.task_id)
        )
        assert await r.tracker.start() == 2
        assert (await r.wait_finished(reserved)).state is JobState.DELIVERED
        assert (await r.wait_finished(other)).state is JobState.DELIVERED


async def test_delivery_is_retried_then_succeeds(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.events.fail_deliveries = 2
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert final.delivery_attempts == 2
        assert r.events.deliveries == 3


async def test_delivery_that_keeps_failing_fails_the_job_and_refunds(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.events.fail_deliveries = 99
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert r.events.deliveries == FAST.delivery_attempts
        assert await r.store.usage(1, 3, final.quota_day) == 0


async def test_an_expired_result_url_is_refreshed_from_the_api(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=0.2, media_ttl_seconds=-10)
    async with wan, rig(tmp_path, wan=wan) as r:
        job = await r.accept()
        await until_state(r, job, JobState.COMPLETED)
        wan.media_ttl_seconds = 3600  # the next GET hands out a live link
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED


async def test_many_jobs_at_once(tmp_path: Path) -> None:
    async with rig(
        tmp_path, env={"QUOTA_MAX_CONCURRENT": "100", "QUOTA_DAILY_SECONDS": "9999"}
    ) as r:
        jobs = [await r.accept(duration=2) for _ in range(60)]
        finals = await asyncio.gather(*(r.wait_finished(job, timeout=30) for job in jobs))
        assert all(final.state is JobState.DELIVERED for final in finals)
        assert len(r.wan.tasks) == 60
        reads = sum(final.poll_count for final in finals) / len(finals)
        assert reads < 6


async def test_webhook_completion_delivers_without_polling(tmp_path: Path) -> None:
    secret = "whsec-test-secret"
    wan = FakeWanServer(api_key=API_KEY, task_seconds=0.3, webhook_secret=secret)
    async with wan, rig(tmp_path, wan=wan, webhooks=True, start=False) as r:
        receiver = WebhookReceiver(r.tracker.on_webhook, secret=secret)
        server = HttpServer(make_http_app(receiver, lambda: {"ok": True}), "127.0.0.1", 0)
        await server.start()
        try:
            public = f"http://127.0.0.1:{server.port}"
            r.service.settings = settings(
                tmp_path / "db.sqlite3", WEBHOOK_PUBLIC_URL=public, WEBHOOK_SECRET=secret
            )
            await r.tracker.start()
            job = await r.accept()
            final = await r.wait_finished(job)
            assert final.state is JobState.DELIVERED
            assert final.poll_count == 0  # the webhook said it; no GET was needed
            assert r.wan.creates[0].json["webhook_url"].startswith(public + "/webhooks/wan/")
            token = r.wan.creates[0].json["webhook_url"].rsplit("/", 1)[1]
            assert final.webhook_token_hash is not None and token not in final.webhook_token_hash
            # A forged notification for the same job is refused.
            async with r.session.post(
                r.wan.creates[0].json["webhook_url"],
                json={"task_id": final.task_id, "status": "FAILED", "generated": []},
                headers={
                    "webhook-id": "x",
                    "webhook-timestamp": "1",
                    "webhook-signature": "v1,AA==",
                },
            ) as response:
                assert response.status == 401
        finally:
            await server.stop()


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")


async def test_a_slow_discord_does_not_hold_up_tracking(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        released = asyncio.Event()
        seen: list[JobState] = []

        async def slow_job_changed(job: Job) -> None:
            await released.wait()  # Discord answers only after the job was delivered
            seen.append(job.state)

        r.events.job_changed = slow_job_changed  # type: ignore[method-assign]
        job = await r.accept()
        await until_state(r, job, JobState.DELIVERED)
        released.set()
        await until(lambda: JobState.DELIVERED in seen)
        assert seen == sorted(seen, key=list(JobState).index)  # notices keep their order


async def test_an_ending_nobody_was_told_about_is_told_after_a_restart(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=0.1)
    async with wan:
        async with rig(tmp_path, wan=wan) as first:
            wan.fail_next_tasks = 1

            async def discord_down(job: Job) -> None:
                raise RuntimeError("Discord is unreachable")

            first.events.job_changed = discord_down  # type: ignore[method-assign]
            job = await first.accept()
            await until_state(first, job, JobState.FAILED)
            await first.tracker.notices_sent()
            unnotified = await first.store.get_job(job.id)
            assert unnotified is not None and unnotified.user_notified_at is None
        async with rig(tmp_path, wan=wan) as second:
            await asyncio.wait_for(second.events.finished(job.id).wait(), 5)
            await second.tracker.notices_sent()
            told = await second.store.get_job(job.id)
            assert told is not None and told.user_notified_at is not None
            assert second.events.states(job.id) == [JobState.FAILED]


async def test_deliveries_do_not_wait_behind_api_calls(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    config = replace(FAST, concurrency=1)  # one API call at a time
    async with wan, rig(tmp_path, wan=wan, config=config, start=False) as r:
        slow, done = await r.accept(), await r.accept()
        for job in (slow, done):
            task = await r.api.create(job.request)
            await r.store.transition(job.id, JobState.SUBMITTING, job.created_at)
            await r.store.transition(
                job.id, JobState.SUBMITTED, job.created_at, task_id=task.task_id
            )
        stored = await r.store.get_job(done.id)
        assert stored is not None and stored.task_id is not None
        done_task = stored.task_id
        wan.complete(done_task)
        await r.store.transition(
            done.id, JobState.COMPLETED, done.created_at, result_url=wan.media_url(done_task)
        )
        wan.hang_next(30, method="GET")  # the slow job's poll holds the only API slot
        await r.tracker.start()
        final = await r.wait_finished(done, timeout=5)
        assert final.state is JobState.DELIVERED
        still = await r.store.get_job(slow.id)
        assert still is not None and still.state is JobState.SUBMITTED
