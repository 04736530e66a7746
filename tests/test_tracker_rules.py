"""The tracker's rules against the fake WAN server: no stuck job, a long Retry-After holds only
creates, the deadline is checked right before a create, adoption needs evidence, webhooks keep
reads to one per job, and status messages get an ETA only once the model has earned it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.jobs import Job, JobOrigin, JobState, new_job_id
from core.quota import job_cost
from core.store import NewJob, QuotaLimits
from core.webhooks import HttpServer, WebhookReceiver, make_http_app
from tests.fakes.wan_server import FakeWanServer
from tests.tracker_rig import API_KEY, FAST, Rig, rig, settings, until, until_state

pytestmark = pytest.mark.usefixtures("both_engines")  # SQLite and PostgreSQL

MANY = {"QUOTA_MAX_CONCURRENT": "10", "QUOTA_DAILY_SECONDS": "999"}


async def accept_raw(r: Rig, prompt: str) -> Job:
    """A job straight into the store, past the door's checks (as a bug upstream would let in)."""
    built = await r.accept()  # a valid job to copy from, then cancelled
    await r.tracker.cancel(built.id, "only a template")
    request = built.request.replace(prompt=prompt)
    job = await r.store.create_job(
        NewJob(
            id=new_job_id(),
            guild_id=1,
            channel_id=2,
            user_id=3,
            origin=JobOrigin.COMMAND,
            request=request,
            references=built.references,
            cost_seconds=job_cost(request, 1.0),
            deadline_at=time.time() + 1800,
        ),
        QuotaLimits(999, 10),
        time.time(),
    )
    r.tracker.enqueue(job)
    return job


async def test_an_unexpected_exception_fails_the_job_refunds_it_and_tells_the_member(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, env=MANY) as r:
        job = await accept_raw(r, "Image 1 waves \ud800")  # a lone surrogate: cannot be encoded
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert "went wrong on our side" in (final.error or "")
        assert await r.store.usage(1, 3, final.quota_day) == 0
        assert r.events.states(job.id)[-1] is JobState.FAILED
        assert r.wan.creates == []  # nothing was sent, nothing was paid
        assert r.tracker.stats()["running"] == 0


async def test_a_long_retry_after_on_a_create_holds_creates_and_nothing_else(
    tmp_path: Path,
) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan, rig(tmp_path, wan=wan, env=MANY) as r:
        first = await r.accept()
        await until_state(r, first, JobState.SUBMITTED)
        wan.rate_limit_next(1, retry_after="3600", method="POST")
        held = await r.accept()
        # Back to reserved, and its member is told on the status message when it may be sent.
        await until(lambda: JobState.RESERVED in r.events.states(held.id))
        waiting = await r.store.get_job(held.id)
        assert waiting is not None and waiting.state is JobState.RESERVED
        shown = r.tracker.progress(waiting)
        assert shown.waiting_until is not None
        assert shown.waiting_until == waiting.deadline_at  # the hold outlasts its deadline
        assert shown.may_expire
        later = await r.accept()  # accepted during the hold: queued, not sent
        # Reads and deliveries go on: the first job's video is delivered.
        wan.complete(next(iter(wan.tasks)))
        assert (await r.wait_finished(first)).state is JobState.DELIVERED
        assert len(wan.creates) == 2  # the first job's, and the refused one; none since
        queued = await r.store.get_job(later.id)
        assert queued is not None and queued.state is JobState.RESERVED
        assert r.tracker.progress(queued).waiting_until is not None


async def test_the_deadline_is_checked_again_right_before_the_create(tmp_path: Path) -> None:
    # The job is still in time when the tracker picks it up, but not when the create would
    # leave (the client's clock is past the deadline): nothing is sent, the job is refunded.
    late = {"wall_clock": lambda: time.time() + 10_000}
    async with rig(tmp_path, client_options=late) as r:
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.FAILED
        assert "in time" in (final.error or "")
        assert r.wan.creates == []
        assert await r.store.usage(1, 3, final.quota_day) == 0


async def test_the_webhook_url_comes_from_the_hook_given_to_the_tracker(tmp_path: Path) -> None:
    def url_for(job: Job) -> str:
        return f"http://127.0.0.1:9/webhooks/wan/{job.id}"

    async with rig(tmp_path, webhook_url=url_for) as r:
        job = await r.accept()
        final = await r.wait_finished(job)
        assert final.state is JobState.DELIVERED
        assert r.wan.creates[0].json["webhook_url"] == url_for(job)


async def webhook_rig_server(r: Rig, tmp_path: Path, secret: str | None) -> HttpServer:
    receiver = WebhookReceiver(r.tracker.on_webhook, secret=secret)
    server = HttpServer(make_http_app(receiver, lambda: {"ok": True}), "127.0.0.1", 0)
    await server.start()
    env = {**MANY, "WEBHOOK_PUBLIC_URL": f"http://127.0.0.1:{server.port}"}
    if secret is not None:
        env["WEBHOOK_SECRET"] = secret
    r.service.settings = settings(tmp_path / "db.sqlite3", **env)
    return server


async def test_a_dropped_create_is_adopted_when_its_own_webhook_names_the_task(
    tmp_path: Path,
) -> None:
    secret = "whsec-evidence"
    wan = FakeWanServer(api_key=API_KEY, task_seconds=0.4, webhook_secret=secret)
    async with wan, rig(tmp_path, wan=wan, webhooks=True, start=False) as r:
        server = await webhook_rig_server(r, tmp_path, secret)
        try:
            await r.tracker.start()
            wan.drop_next(1, method="POST")  # the task is made; the answer never arrives
            job = await r.accept()
            final = await r.wait_finished(job)
            assert final.state is JobState.DELIVERED
            assert len(wan.creates) == 1 and final.task_id == next(iter(wan.tasks))
        finally:
            await server.stop()


async def test_without_evidence_a_webhook_bot_waits_then_refunds(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None, webhook_secret="s")
    config = replace(FAST, evidence_wait=0.5)
    async with wan, rig(tmp_path, wan=wan, webhooks=True, config=config, start=False) as r:
        server = await webhook_rig_server(r, tmp_path, "s")
        try:
            await r.tracker.start()
            wan.drop_next(1, method="POST")  # made, but it never moves: no webhook comes
            job = await r.accept()
            final = await r.wait_finished(job)
            assert final.state is JobState.FAILED
            assert "not charged" in (final.error or "")
            assert len(wan.creates) == 1
        finally:
            await server.stop()


async def test_unsigned_webhooks_cost_at_most_one_read_per_job(tmp_path: Path) -> None:
    # No secret: notifications are hints. Only one that says the task ended prompts a read.
    wan = FakeWanServer(api_key=API_KEY, task_seconds=0.3)
    async with wan, rig(tmp_path, wan=wan, webhooks=True, start=False) as r:
        server = await webhook_rig_server(r, tmp_path, None)
        try:
            await r.tracker.start()
            jobs = [await r.accept() for _ in range(3)]
            finals = [await r.wait_finished(job) for job in jobs]
            assert [final.state for final in finals] == [JobState.DELIVERED] * 3
            assert [final.poll_count for final in finals] == [1, 1, 1]
            hooks = [hook.payload["status"] for hook in wan.webhooks]
            assert hooks.count("IN_PROGRESS") == 3 and hooks.count("COMPLETED") == 3
        finally:
            await server.stop()


async def test_an_eta_is_shown_only_once_five_videos_of_the_kind_were_made(
    tmp_path: Path,
) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan, rig(tmp_path, wan=wan) as r:
        job = await r.accept()
        running = await until_state(r, job, JobState.SUBMITTED)
        assert r.tracker.progress(running).expected_seconds is None  # elapsed time only
        for seconds in (30.0, 31.0, 29.0, 32.0):
            r.tracker.model.observe(running.request.resolution, running.request.duration, seconds)
        assert r.tracker.progress(running).expected_seconds is None  # four are not enough
        r.tracker.model.observe(running.request.resolution, running.request.duration, 30.5)
        shown = r.tracker.progress(running)
        assert shown.since == running.submitted_at
        assert shown.expected_seconds is not None and 29.0 < shown.expected_seconds < 32.0


async def test_jobs_reconciling_together_share_one_listing_of_every_page(tmp_path: Path) -> None:
    async with rig(tmp_path, env=MANY) as r:
        r.wan.list_page_size = 2  # the API pages its list
        r.wan.drop_next(5, method="POST")  # five creates made tasks; no answer came
        jobs = [await r.accept() for _ in range(5)]
        finals = [await r.wait_finished(job) for job in jobs]
        assert [final.state for final in finals] == [JobState.FAILED] * 5  # no evidence
        assert len(r.wan.tasks) == 5 and len(r.wan.creates) == 5
        pages = [req.query.get("page") for req in r.wan.requests if req.method == "GET"]
        # List times are whole grid steps after each create; five creates within a few ms fall
        # on one step, or (rarely, across a boundary) two: one listing of every page per step.
        assert all(final.submitting_at for final in finals)
        steps = {r.tracker.submissions._list_after(final) for final in finals}
        assert len(steps) <= 2
        assert pages == ["1", "2", "3", "4"] * len(steps)
