"""A server not on ALLOWED_GUILD_IDS, by default: at start-up the bot tells the server's owner
why, then leaves it (DELETE /users/@me/guilds/{id}), and says so in its log."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Options, World, message_text

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(env={"ALLOWED_GUILD_IDS": "123456789012345678"})


async def test_the_bot_tells_the_owner_and_leaves(world: World) -> None:
    fake = world.discord
    await world.until(lambda: fake.left_guilds, what="the bot leaving the unlisted server")

    assert fake.left_guilds == [fake.guild_id]
    notices = [message_text(m) for m in fake.dm_messages(fake.owner)]
    assert len(notices) == 1
    assert "only enabled in the servers its operator chose" in notices[0]
    # Told first, then left: the DM was sent before the leave.
    calls = [(c.method, c.path) for c in fake.calls]
    dm_at = next(i for i, (m, p) in enumerate(calls) if m == "POST" and p.endswith("/messages"))
    left_at = next(i for i, (m, p) in enumerate(calls) if m == "DELETE" and "/guilds/" in p)
    assert dm_at < left_at
    await world.until(
        lambda: "left server" in world.process.log_text(), what="the log line about leaving"
    )
