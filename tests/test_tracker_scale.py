"""Several trackers on one PostgreSQL database and one WAN API: each job is created once and
delivered once, the API budget is kept by all of them together, a stopped or killed tracker's
jobs are taken over, and a tracker that lost a lease changes nothing.

Each tracker is a "process" of its own: its own store (pool), owner id, LISTEN connection and
budget session, as ``core.app`` builds them (the tracker rig, ``coordinated``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from core.jobs import Job, JobState
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.store import Store
from core.tracker import VideoSource
from core.wan import Task, TaskStatus
from core.webhook_tokens import webhook_url_source
from tests.coordination import FakeWanProcess, fake_wan_process
from tests.fakes.wan_server import FakeWanServer
from tests.postgres import fresh_database
from tests.rates import most_in_one_second
from tests.tracker_rig import API_KEY, FAST, WHO, RecordingEvents, Rig, rig, until

ROOT = Path(__file__).resolve().parent.parent
ENV = {"QUOTA_MAX_CONCURRENT": "100", "QUOTA_DAILY_SECONDS": "9999"}
# The production budget (8 requests a second), which the tight read lag below saturates.
BUDGET = dataclasses.replace(FAST, max_rps=8.0, burst=8)


async def all_in(
    store: Store, jobs: Sequence[Job], state: JobState, timeout: float, *more: JobState
) -> None:
    """Until every job is in ``state`` (or one of ``more``)."""
    wanted = {state, *more}
    async with asyncio.timeout(timeout):
        while True:
            current = [await store.get_job(job.id) for job in jobs]
            if all(job is not None and job.state in wanted for job in current):
                return
            await asyncio.sleep(0.05)


async def commits(store: Store, jobs: Sequence[Job]) -> dict[str, int]:
    day = min(job.quota_day for job in jobs)
    counted: dict[str, int] = {}
    for entry in await store.ledger_entries(1, since_day=day):
        if entry.kind == "commit" and entry.job_id is not None:
            counted[entry.job_id] = counted.get(entry.job_id, 0) + 1
    return counted


@asynccontextmanager
async def network(
    tmp_path: Path, wan: FakeWanServer | FakeWanProcess
) -> AsyncIterator[tuple[str, AsyncExitStack]]:
    """A fresh database, and a stack on which each test opens its processes."""
    async with fresh_database() as url, AsyncExitStack() as stack:
        yield url, stack


async def process(
    stack: AsyncExitStack,
    url: str,
    tmp_path: Path,
    wan: FakeWanServer | FakeWanProcess,
    name: str,
    **options: Any,
) -> Rig:
    store = await stack.enter_async_context(Store.open(url))
    (tmp_path / name).mkdir()
    options.setdefault("config", BUDGET)
    options.setdefault("env", ENV)
    if isinstance(wan, FakeWanProcess):
        options["wan_url"] = wan.base_url
    else:
        options["wan"] = wan
    return await stack.enter_async_context(rig(tmp_path / name, store=store, **options))


def reads(wan: FakeWanServer) -> int:
    return sum(1 for request in wan.requests if request.method == "GET")


async def test_two_trackers_create_and_deliver_every_job_once_within_one_budget(
    tmp_path: Path,
) -> None:
    # The fake API in a process of its own counts arrivals on its own clock and loop.
    async with (
        fake_wan_process(API_KEY, "--task-seconds", "0.6") as wan,
        network(tmp_path, wan) as (url, stack),
    ):
        first = await process(stack, url, tmp_path, wan, "a")
        second = await process(stack, url, tmp_path, wan, "b", holds_budget=False)
        assert first.tracker.budget.held and not second.tracker.budget.held
        # Accepted in both processes; the budget holder claims and submits them all.
        jobs = [await (first if n % 2 else second).accept() for n in range(12)]
        await all_in(first.store, jobs, JobState.DELIVERED, timeout=60)

        delivered = [first.events.delivered, second.events.delivered]
        assert sorted(job_id for got in delivered for job_id in got) == sorted(
            job.id for job in jobs
        )  # each job delivered by exactly one process
        assert first.events.deliveries + second.events.deliveries == len(jobs)
        assert await wan.creates() == len(jobs) and await wan.tasks() == len(jobs)
        assert await commits(first.store, jobs) == {job.id: 1 for job in jobs}
        arrivals = await wan.arrivals()
        peak = most_in_one_second(arrivals)
        print(
            f"12 jobs: deliveries {len(delivered[0])} + {len(delivered[1])},"
            f" {len(arrivals)} API requests, at most {peak} in one second (budget 8)"
        )
        assert peak <= BUDGET.max_rps


async def test_a_stopping_holder_hands_its_jobs_and_the_budget_over_within_the_rate(
    tmp_path: Path,
) -> None:
    async with (
        fake_wan_process(API_KEY, "--task-seconds", "4") as wan,
        network(tmp_path, wan) as (url, stack),
    ):
        first = await process(stack, url, tmp_path, wan, "a")
        second = await process(stack, url, tmp_path, wan, "b", holds_budget=False)
        jobs = [await first.accept() for _ in range(8)]
        # Every create answered (a create cut off by the stop would be reconciled instead).
        await all_in(first.store, jobs, JobState.SUBMITTED, 30, JobState.RUNNING)
        stopped = time.monotonic()
        await first.tracker.stop()
        await until(lambda: second.tracker.budget.held, timeout=5)
        took = time.monotonic() - stopped
        await all_in(second.store, jobs, JobState.DELIVERED, timeout=60)

        assert sorted(second.events.delivered) == sorted(job.id for job in jobs)
        assert await wan.creates() == len(jobs)
        assert await commits(second.store, jobs) == {job.id: 1 for job in jobs}
        peak = most_in_one_second(await wan.arrivals())
        print(f"budget handed over in {took:.2f}s; at most {peak} API requests in one second")
        assert took < 2.0
        assert peak <= BUDGET.max_rps


async def test_a_killed_trackers_jobs_are_taken_over_once_their_leases_expire(
    tmp_path: Path,
) -> None:
    lease = 3.0
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)  # tasks finish when told
    async with wan, network(tmp_path, wan) as (url, stack):
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, read with a timeout below
            [sys.executable, "-m", "tests.scale_worker", url, wan.base_url, str(lease)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 60)
            started = json.loads(line)
            assert started["held"]  # alone: it holds the budget
            survivor = await process(
                stack,
                url,
                tmp_path,
                wan,
                "b",
                holds_budget=False,
                config=dataclasses.replace(BUDGET, lease_seconds=lease),
            )
            jobs = [await survivor.accept() for _ in range(5)]  # claimed by the worker
            await all_in(survivor.store, jobs, JobState.SUBMITTED, timeout=30)
            assert len(await survivor.store.held_leases(started["owner"])) == len(jobs)
        finally:
            worker.kill()  # kill -9: no lease given back, its sessions just end
            killed = time.monotonic()
            await asyncio.to_thread(worker.wait)

        await until(lambda: survivor.tracker.budget.held, timeout=5)
        budget_taken = time.monotonic() - killed
        await until(lambda: len(survivor.tracker.claims) == len(jobs), timeout=lease + 10)
        jobs_taken = time.monotonic() - killed
        for task_id in wan.tasks:
            wan.complete(task_id)
        await all_in(survivor.store, jobs, JobState.DELIVERED, timeout=30)

        assert sorted(survivor.events.delivered) == sorted(job.id for job in jobs)
        assert len(wan.creates) == len(jobs)
        assert await commits(survivor.store, jobs) == {job.id: 1 for job in jobs}
        print(f"after kill -9: budget taken in {budget_taken:.2f}s, jobs in {jobs_taken:.2f}s")
        assert budget_taken < 2.0
        assert jobs_taken <= lease + 5.0  # the lease expiry, and a claim round or few


async def accept_720p(r: Rig) -> Job:
    image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10_000, 512, 512)
    options = GenerationOptions(resolution="720P")
    return await r.service.accept(
        WHO, build_request("Image 1 waves", [ReferenceInput(1, image)], options)
    )


class Gated(RecordingEvents):
    """Deliveries that wait for the test to let them finish."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def deliver(self, job: Job, video: VideoSource) -> int:
        self.entered.set()
        await self.gate.wait()
        return await super().deliver(job, video)


async def test_a_tracker_whose_lease_was_taken_over_changes_nothing(tmp_path: Path) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    async with wan, network(tmp_path, wan) as (url, stack):
        # A process whose clock runs far behind: every lease it takes looks long expired to the
        # others, and it renews rarely, so it still believes in its lease when it writes.
        late = await process(
            stack,
            url,
            tmp_path,
            wan,
            "late",
            config=dataclasses.replace(BUDGET, lease_seconds=300.0),
            clock=lambda: time.time() - 1000.0,
        )
        late_events = Gated()
        late.tracker.set_events(late_events)
        job = await late.accept()
        await until(lambda: len(wan.tasks) == 1, timeout=10)
        wan.complete(next(iter(wan.tasks)))
        await asyncio.wait_for(late_events.entered.wait(), 10)  # delivering, under its lease

        other = await process(stack, url, tmp_path, wan, "other", holds_budget=False)
        other_events = Gated()
        other.tracker.set_events(other_events)
        await asyncio.wait_for(other_events.entered.wait(), 10)  # took the lease over

        late_events.gate.set()  # the late one's upload ends: it would record the delivery
        await until(lambda: late.tracker.stats()["running"] == 0, timeout=10)
        assert job.id in late_events.delivered  # its upload did finish; its write did not count
        unchanged = await other.store.get_job(job.id)
        assert unchanged.state is JobState.COMPLETED and unchanged.delivered_message_id is None
        assert await commits(other.store, [job]) == {}
        assert JobState.DELIVERED not in late_events.states(job.id)  # and told nobody so

        other_events.gate.set()
        await all_in(other.store, [job], JobState.DELIVERED, timeout=10)
        final = await other.store.get_job(job.id)
        assert final.delivered_message_id == 1000 + other_events.deliveries
        assert await commits(other.store, [job]) == {job.id: 1}


async def test_a_webhook_another_process_receives_makes_the_owner_read_at_once(
    tmp_path: Path,
) -> None:
    wan = FakeWanServer(api_key=API_KEY, task_seconds=None)
    # Webhooks on, and no fallback read for ten minutes: only the webhook can move the job.
    hooks = {**ENV, "WEBHOOK_PUBLIC_URL": "http://127.0.0.1:9", "WEBHOOK_PORT": "8080"}
    config = dataclasses.replace(BUDGET, webhook_poll_interval=600.0)
    async with wan, network(tmp_path, wan) as (url, stack):
        owner = await process(
            stack, url, tmp_path, wan, "a", webhooks=True, config=config, env=hooks
        )
        other = await process(
            stack,
            url,
            tmp_path,
            wan,
            "b",
            webhooks=True,
            config=config,
            env=hooks,
            holds_budget=False,
        )
        # Of another resolution: what the first completion teaches does not re-plan its reads.
        signalled, swept = await owner.accept(), await accept_720p(owner)
        await all_in(owner.store, [signalled, swept], JobState.SUBMITTED, timeout=10)
        source = webhook_url_source(owner.service.settings)
        assert source is not None
        task_of = {task.webhook_url: task.task_id for task in wan.tasks.values()}
        hook_url = {job.id: source(job) for job in (signalled, swept)}
        before = reads(wan)

        # Received by the process that does not hold the job: recorded, and the owner woken.
        task_id = task_of[hook_url[signalled.id]]
        wan.complete(task_id)
        token = str(hook_url[signalled.id]).rsplit("/", 1)[1]
        assert await other.tracker.on_webhook(token, Task(task_id, TaskStatus.COMPLETED), False)
        await all_in(owner.store, [signalled], JobState.DELIVERED, timeout=10)
        assert reads(wan) == before + 1  # the owner read that task, once

        # Recorded with no signal (one lost, say): the owner's sweep finds it.
        wan.complete(task_of[hook_url[swept.id]])
        await owner.store.note_webhook(swept.id, time.time())
        await all_in(owner.store, [swept], JobState.DELIVERED, timeout=15)
        assert reads(wan) == before + 2
