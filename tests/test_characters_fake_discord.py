"""The local Discord's message context menus, autocomplete and modals, driven by the real
discord.py client (what ``cogs.make_video`` and the ``characters`` option rely on)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from discord_side.endpoint import point_discord_at, restore_discord_defaults
from tests.fakes.discord import FakeDiscord


class Probe:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def get(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.queue.get(), 5)


def build_bot(fake: FakeDiscord, probe: Probe) -> commands.Bot:
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.05,
    )
    guild = discord.Object(fake.guild_id)

    class Form(discord.ui.Modal, title="Tell me"):
        prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt", custom_id="p")
        extra: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Extra", custom_id="x", required=False, max_length=5
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"got {self.prompt.value}", ephemeral=True)
            probe.queue.put_nowait(("submitted", (self.prompt.value, self.extra.value)))

    async def on_message_menu(interaction: discord.Interaction, message: discord.Message) -> None:
        probe.queue.put_nowait(("menu", message))
        await interaction.response.send_modal(Form())

    bot.tree.add_command(
        app_commands.ContextMenu(name="Look at this", callback=on_message_menu), guild=guild
    )

    async def names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        probe.queue.put_nowait(("typed", current))
        return [app_commands.Choice(name=f"{current}!", value=f"{current}-value")]

    @app_commands.command(name="pick", description="Pick a name")
    @app_commands.autocomplete(name=names)
    async def pick(interaction: discord.Interaction, other: str, name: str) -> None:
        await interaction.response.send_message(name)

    bot.tree.add_command(pick, guild=guild)
    return bot


@pytest.fixture
async def running() -> AsyncIterator[tuple[FakeDiscord, commands.Bot, Probe]]:
    probe = Probe()
    async with FakeDiscord() as fake:
        bot = build_bot(fake, probe)
        task: asyncio.Task[None] | None = None
        try:
            await point_discord_at(fake.api_base, fake.token)
            await bot.login(fake.token)
            task = asyncio.create_task(bot.connect())
            await fake.wait_until_ready()
            await bot.tree.sync(guild=discord.Object(fake.guild_id))
            yield fake, bot, probe
        finally:
            await bot.close()
            if task is not None:
                await asyncio.wait_for(task, 5)
            restore_discord_defaults()
        assert fake.server_errors == [] and fake.unhandled == []


async def test_a_message_menu_opens_a_modal_whose_values_come_back(
    running: tuple[FakeDiscord, commands.Bot, Probe],
) -> None:
    fake, _bot, probe = running
    assert fake.find_message_command("Look at this") is not None
    assert fake.find_command("Look at this") is None  # slash commands only
    photo = fake.register_file(b"\x89PNG\r\n\x1a\n" + bytes(32), "a.png", ephemeral=False)
    posted = await fake.post_message(fake.channel_id, "see", attachments=[photo])

    opened = await fake.dispatch_message_command("Look at this", posted, user=fake.moderator)
    kind, message = await probe.get()
    assert kind == "menu" and isinstance(message, discord.Message)
    assert message.id == int(posted["id"]) and message.attachments[0].filename == "a.png"
    modal = await fake.wait_for(lambda: fake.modal_of(opened), what="a modal")
    assert modal["title"] == "Tell me"

    with pytest.raises(ValueError, match="required"):
        await fake.submit_modal(opened, {"x": "ok"})
    with pytest.raises(ValueError, match="0-5 characters"):
        await fake.submit_modal(opened, {"p": "hello", "x": "far too long"})
    submitted = await fake.submit_modal(opened, {"p": "hello"})
    assert await probe.get() == ("submitted", ("hello", ""))
    record = fake.interactions[submitted]
    assert record.type == 5 and record.user_id == fake.moderator.id
    await fake.wait_for(lambda: record.response_type == 4, what="the modal's answer")
    [answer] = fake.interaction_messages(submitted)
    assert answer["content"] == "got hello"


async def test_autocomplete_sends_the_typed_value_and_records_the_choices(
    running: tuple[FakeDiscord, commands.Bot, Probe],
) -> None:
    fake, _bot, probe = running
    asked = await fake.dispatch_autocomplete("pick", "name", {"other": "x", "name": "fo"})
    assert await probe.get() == ("typed", "fo")
    record = fake.interactions[asked]
    await fake.wait_for(lambda: record.response_type == 8, what="choices")
    assert record.response_data == {"choices": [{"name": "fo!", "value": "fo-value"}]}
    with pytest.raises(LookupError):
        await fake.dispatch_message_command("Look at this", 12345)
