"""A first run as a new operator meets it: no DEV_GUILD_ID, commands never synced.

The bot must say where it is, how to invite it, and exactly what to do about the commands;
``python bot.py --sync`` then registers them and exits, and the next start says they are synced.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from discord_side.inputs import BOT_PERMISSIONS
from tests.e2e.harness import BOT_SCRIPT, ROOT, START_TIMEOUT, Options, World

pytestmark = pytest.mark.e2e

NOT_SYNCED = "no slash commands are registered globally, so members see no /video."


def log_saying(world: World, part: str) -> str | None:
    text = world.process.log_text()
    return text if part in text else None


async def test_the_first_run_says_what_to_do_and_sync_does_it(tmp_path: Path) -> None:
    world = World(tmp_path, Options(env={"DEV_GUILD_ID": ""}))
    await world.open()
    try:
        world.process.spawn()
        log = await world.until(
            lambda: log_saying(world, NOT_SYNCED),
            START_TIMEOUT,
            "the bot to explain that its commands are not synced",
        )
        assert "Run `python bot.py --sync` once" in log
        assert "or set DEV_GUILD_ID" in log
        assert f"in 1 server(s): WAN Test Guild ({world.discord.guild_id})" in log
        assert f"client_id={world.discord.application_id}" in log
        assert f"permissions={BOT_PERMISSIONS.value}" in log
        assert world.discord.commands.get(None) is None  # it only looked (a GET), no sync
        assert await world.process.terminate() == 0

        sync = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT_SCRIPT),
            "--sync",
            cwd=ROOT,
            env=world.process.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(sync.communicate(), START_TIMEOUT)
        assert sync.returncode == 0, output.decode()
        assert "command(s) globally" in output.decode()
        assert world.discord.find_command("video") is not None

        world.process.spawn()
        log = await world.until(
            lambda: log_saying(world, "synced globally"),
            START_TIMEOUT,
            "the bot to say its commands are synced",
        )
        restarted = log[log.rindex("===== bot starting =====") :]
        assert "slash command(s) are synced globally" in restarted
        assert NOT_SYNCED not in restarted
        assert await world.process.terminate() == 0
    finally:
        await world.close()
