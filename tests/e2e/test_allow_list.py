"""A server not on ALLOWED_GUILD_IDS, with LEAVE_UNLISTED_GUILDS=false: the bot stays, and every
command there (moderators' included) answers politely that it is not enabled; nothing is spent."""

from __future__ import annotations

import pytest

from core.service import NOT_ENABLED_MESSAGE
from tests.e2e.harness import Options, World

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

OTHER_GUILD = "123456789012345678"  # the fake's guild is never this one


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(env={"ALLOWED_GUILD_IDS": OTHER_GUILD, "LEAVE_UNLISTED_GUILDS": "false"})


async def test_video_is_refused_and_nothing_is_spent(world: World) -> None:
    member = world.new_user("member")
    options = {"prompt": "Image 1 waves", "ref1": world.image("hero.png"), "duration": 5}

    reply = await world.command("video", options, user=member)

    assert reply.ephemeral
    assert NOT_ENABLED_MESSAGE in reply.text
    assert world.jobs_of(member) == []
    assert world.ledger(member) == []
    assert world.wan.creates == []


@pytest.mark.parametrize(
    ("command", "moderator"),
    [("quota", False), ("history", False), ("admin usage", True), ("character list", False)],
)
async def test_every_command_answers_that_the_bot_is_not_enabled(
    world: World, command: str, moderator: bool
) -> None:
    user = world.new_user("someone", moderator=moderator)
    reply = await world.command(command, {}, user=user)
    assert reply.ephemeral
    assert NOT_ENABLED_MESSAGE in reply.text


async def test_the_bot_stays_when_told_not_to_leave(world: World) -> None:
    assert world.discord.left_guilds == []
    assert "not on ALLOWED_GUILD_IDS" in world.process.log_text()
