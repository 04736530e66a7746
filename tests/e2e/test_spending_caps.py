"""The bot's daily budget end to end: a request that does not fit is refused before anything is
spent, saying which cap and when it resets; moderators see today's spending in /admin usage."""

from __future__ import annotations

import re

import pytest

from tests.e2e.harness import Options, World

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world_options() -> Options:
    # Tasks stay in flight: the first video's seconds are reserved while the second is asked.
    return Options(
        env={"BUDGET_DAILY_SECONDS": "8", "SERVER_DAILY_SECONDS_MAX": "100"}, task_seconds=None
    )


async def test_a_request_over_the_budget_is_refused_before_anything_is_spent(
    world: World,
) -> None:
    first, second = world.new_user("first"), world.new_user("second")
    options = {"prompt": "Image 1 waves", "ref1": world.image("hero.png"), "duration": 5}

    accepted = await world.command("video", options, user=first)
    accepted.job_id  # noqa: B018  (raises unless it was accepted)
    refused = await world.command("video", options, user=second)

    assert refused.ephemeral
    assert "The bot's daily budget has no room for this video" in refused.text
    assert "only 3 s are left today for all servers" in refused.text
    assert re.search(r"resets <t:\d+:R>", refused.text)
    assert world.jobs_of(second) == [] and world.ledger(second) == []
    assert len(world.wan.creates) <= 1  # only the first video reached the API

    usage = await world.command("admin usage", {"days": 1}, user=world.discord.moderator)
    assert "5 s of 100 s** spent today (95 s left)" in usage.text
    assert "The bot's daily budget for all servers has 3 s left." in usage.text
