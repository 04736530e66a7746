"""A tracker in a process of its own, for tests that kill it (``kill -9``)::

    python -m tests.scale_worker DATABASE_URL WAN_BASE_URL LEASE_SECONDS

Built as ``core.app`` builds it on PostgreSQL (its own owner id, LISTEN/NOTIFY, the budget lock),
with the tracker rig's fast timings. Prints one JSON line once started (``owner``, ``held``: the
budget), then runs until killed. Its Discord side tells nothing and posts nothing (a test that
uses it completes tasks only after it is gone).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import aiohttp

from core.app import coordination
from core.jobs import Job
from core.ratelimit import RateLimiter
from core.store import Store, owner_id
from core.tracker import Tracker, VideoSource
from core.wan import RetrySettings, WanClient
from tests.tracker_rig import API_KEY, FAST


class Mute:
    async def job_changed(self, job: Job) -> None:
        return None

    async def deliver(self, job: Job, video: VideoSource) -> int:
        raise RuntimeError("this process posts nothing")


async def main(database_url: str, wan_url: str, lease_seconds: float) -> None:
    config = dataclasses.replace(FAST, lease_seconds=lease_seconds)
    async with aiohttp.ClientSession() as session, Store.open(database_url) as store:
        signals, budget = coordination(store)
        client = WanClient(
            session,
            base_url=wan_url,
            api_key=API_KEY,
            limiter=RateLimiter(config.max_rps, config.burst, admit=budget.admit),
            retry=RetrySettings(max_attempts=3, base_delay=0.01, max_delay=0.05),
        )
        tracker = Tracker(
            store,
            client,
            session,
            config=config,
            owner=owner_id(True),
            signals=signals,
            budget=budget,
        )
        tracker.set_events(Mute())
        await tracker.start()
        print(json.dumps({"owner": tracker.owner, "held": budget.held}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
