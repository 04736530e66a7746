"""Webhook mode (scenario 8): the bot submits each task with its own webhook URL on its HTTP
server, the fake API signs its notifications with the shared secret, and a completion arrives
and is delivered without a single status read. A forged notification is refused with 401.

With the default settings the bot's first fallback read comes at twice the prior run time
(minutes), so any status read during the test would be one the webhooks should have made needless.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.e2e.harness import Options, World
from tests.fakes.wan_server import API_PATH, sign_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET = "e2e-webhook-secret"


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(task_seconds=0.3, webhook_secret=SECRET)


async def make_video(world: World, prompt: str) -> tuple[str, dict[str, object]]:
    user = world.new_user("hooked")
    reply = await world.command(
        "video", {"prompt": prompt, "ref1": world.image("hero.png")}, user=user
    )
    body = (await world.until(lambda: world.creates_for(prompt), what="the create"))[0]
    return reply.job_id, body


def status_reads(world: World) -> list[str]:
    return [r.path for r in world.wan.requests if r.method == "GET" and r.path != API_PATH]


async def test_a_completion_arrives_by_webhook_and_is_delivered_without_polling(
    world: World,
) -> None:
    job_id, body = await make_video(world, "Image 1 is delivered by webhook")
    url = str(body["webhook_url"])
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("127.0.0.1", world.http_port)
    assert parts.path.startswith("/webhooks/wan/")
    token = parts.path.rsplit("/", 1)[1]
    assert token not in world.job(job_id)["webhook_token_hash"]  # only its digest is stored

    job = await world.wait_state(job_id, "delivered")

    assert len(world.deliveries(job_id)) == 1
    assert status_reads(world) == []
    hooks = [hook for hook in world.wan.webhooks if hook.url == url]
    statuses = [hook.payload["status"] for hook in hooks]
    assert statuses == ["IN_PROGRESS", "COMPLETED"]
    assert all(hook.response_status == 200 for hook in hooks)
    assert job["poll_count"] == 0


async def test_a_forged_webhook_is_refused(world: World) -> None:
    world.wan.task_seconds = None  # this task waits: only a notification could move it
    try:
        job_id, body = await make_video(world, "Image 1 is not fooled")
    finally:
        world.wan.task_seconds = 0.3
    await world.wait_state(job_id, "submitted")
    task_id = world.tasks_for("not fooled")[0]
    url = str(body["webhook_url"])
    forged = json.dumps(
        {"task_id": task_id, "status": "COMPLETED", "generated": ["https://evil.example/x.mp4"]}
    ).encode()
    timestamp = str(int(time.time()))
    signatures = {
        "wrong secret": sign_webhook("not-the-secret", "msg_forged", timestamp, forged),
        "tampered body": sign_webhook(SECRET, "msg_forged", timestamp, forged[:-1] + b" }"),
        "no signature": None,
    }
    async with aiohttp.ClientSession() as session:
        for what, signature in signatures.items():
            headers = {
                "Content-Type": "application/json",
                "webhook-id": "msg_forged",
                "webhook-timestamp": timestamp,
            }
            if signature is not None:
                headers["webhook-signature"] = signature
            async with session.post(url, data=forged, headers=headers) as response:
                assert response.status == 401, what
        async with session.get(f"http://127.0.0.1:{world.http_port}/healthz") as health:
            assert health.status == 200
            assert (await health.json())["ok"] is True

    job = world.job(job_id)
    assert job["state"] == "submitted" and job["result_url"] is None
    # The genuine, signed notification still gets through, and brings the real video.
    world.wan.complete(task_id)
    job = await world.wait_state(job_id, "delivered")
    assert "evil.example" not in str(job["result_url"])
    assert len(world.deliveries(job_id)) == 1
    assert status_reads(world) == []
