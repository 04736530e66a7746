"""What the operator sees of a running bot: /healthz that tells the truth, /metrics that match
what happened, and a DEBUG log without a secret or an interaction token in it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.e2e.harness import WAN_API_KEY, Options, World, free_port
from tests.fakes.wan_server import API_PATH

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
T = TypeVar("T")


@pytest.fixture(scope="module")
def world_options() -> Options:
    # The HTTP server on (the harness turns it off by default); tasks move when the test says.
    return Options(env={"WEBHOOK_PORT": str(free_port())}, task_seconds=None)


async def get(world: World, path: str) -> tuple[int, str]:
    port = world.process.env["WEBHOOK_PORT"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        return resp.status, await resp.text()


async def health(world: World) -> tuple[int, dict[str, Any]]:
    port = world.process.env["WEBHOOK_PORT"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as resp,
    ):
        return resp.status, await resp.json()


def sample(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{wanted}}}" if labels else name) + r" (\S+)$"
    for line in text.splitlines():
        found = re.match(pattern, line)
        if found:
            return float(found.group(1))
    return 0.0


async def test_healthz_is_200_once_ready_and_while_the_database_answers(world: World) -> None:
    # Connected is not ready yet: discord.py first waits for every server's data.
    async def ready() -> dict[str, Any] | None:
        status, report = await health(world)
        if status == 503:
            assert report["problems"] == ["not connected to the Discord gateway yet (starting)"]
        return report if status == 200 else None

    report = await poll(world, ready, "/healthz to say 200")
    assert report["ok"] is True and report["problems"] == []
    assert report["guilds"] == 1
    assert isinstance(report["unfinished_jobs"], dict)


async def test_healthz_is_503_while_the_gateway_is_down(world: World) -> None:
    world.discord.gateway_refused = True  # an outage: reconnects are refused too
    try:
        await world.discord.drop_gateway()

        async def down() -> dict[str, Any] | None:
            status, report = await health(world)
            return report if status == 503 else None

        report = await poll(world, down, "/healthz to say 503")
        assert report["ok"] is False
        assert any("gateway connection is down" in p for p in report["problems"]), report
    finally:
        world.discord.gateway_refused = False

    async def up() -> bool:
        status, _report = await health(world)
        return status == 200

    await poll(world, up, "/healthz to be 200 again after the reconnect", timeout=60)
    assert world.discord.connected


async def poll(
    world: World, check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0
) -> T:
    """Ask ``check`` again until it returns something truthy (the HTTP server has no events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if not world.process.running:
            raise AssertionError(f"the bot exited waiting for {what}")
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


async def test_metrics_count_what_the_scenario_did(world: World) -> None:
    user = world.new_user("watched")
    since = len(world.discord.calls)
    _status, before = await get(world, "/metrics")
    errors_before = sample(
        before, "wanbot_discord_rest_errors_total", route="messages", status="429"
    )
    api = "wanbot_api_requests_total"
    creates_before = sample(before, api, operation="create", status="200")
    gets_before = sample(before, api, operation="get", status="200")
    files_before = sample(before, "wanbot_deliveries_total", outcome="file")
    lags_before = sample(before, "wanbot_completion_to_post_seconds_count")
    runs_before = sample(before, "wanbot_task_run_seconds_count")
    # Two refused posts on the way (the status message), which discord.py retries.
    world.discord.rate_limit_next("POST", "/channels/{channel_id}/messages", times=2)
    reply = await world.command(
        "video", {"prompt": "Image 1 is watched", "ref1": world.image()}, user=user
    )
    job_id = reply.job_id
    job = await world.wait_state(job_id, "submitted", "running")
    state = job["state"]

    status, text = await get(world, "/metrics")
    assert status == 200
    in_state = len(world.rows("SELECT id FROM jobs WHERE state = ?", state))
    assert sample(text, "wanbot_jobs", state=state) == in_state >= 1
    assert sample(text, "wanbot_jobs", state="reserved") == len(
        world.rows("SELECT id FROM jobs WHERE state = 'reserved'")
    )

    task_id = (await world.until(lambda: world.tasks_for("Image 1 is watched")))[0]
    world.wan.complete(task_id)
    await world.wait_state(job_id, "delivered")

    async def settled() -> str | None:
        _status, now = await get(world, "/metrics")
        return now if sample(now, "wanbot_jobs", state=state) == in_state - 1 else None

    text = await poll(world, settled, "the job to leave the jobs gauge")
    limited = [
        call
        for call in world.discord.calls[since:]
        if call.route == "/channels/{channel_id}/messages" and call.status == 429
    ]
    assert len(limited) == 2
    errors = sample(text, "wanbot_discord_rest_errors_total", route="messages", status="429")
    assert errors - errors_before == len(limited)
    # The API calls the job took, as the fake WAN server saw them; its one delivery, a file.
    assert sample(text, api, operation="create", status="200") - creates_before == 1
    reads = len(world.wan.requests_to("GET", f"{API_PATH}/{task_id}"))
    assert sample(text, api, operation="get", status="200") - gets_before == reads >= 1
    assert sample(text, "wanbot_deliveries_total", outcome="file") - files_before == 1
    assert sample(text, "wanbot_completion_to_post_seconds_count") - lags_before == 1
    assert sample(text, "wanbot_task_run_seconds_count") - runs_before == 1
    assert sample(text, "wanbot_api_rate_limit_wait_seconds_count") >= 2
    assert sample(text, "wanbot_event_loop_lag_seconds_count") >= 1
    assert sample(text, "process_resident_memory_bytes") > 0
    for line in text.splitlines():  # no id of a user, guild, job or task is ever a label
        assert str(user.id) not in line and job_id not in line and task_id not in line


async def test_the_debug_log_holds_no_secret_and_no_interaction_token(world: World) -> None:
    user = world.new_user("private")
    await world.command("quota", user=user)
    await world.command("help", user=user)
    log = world.process.log_text()
    assert " DEBUG " in log and "/callback" in log  # the log is at DEBUG and shows those calls
    assert world.discord.token not in log
    assert WAN_API_KEY not in log
    tokens = [interaction.token for interaction in world.discord.interactions.values()]
    assert len(tokens) >= 2
    leaked = [token for token in tokens if token in log]
    assert leaked == []
