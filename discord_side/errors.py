"""The one error policy for app commands, as a CommandTree subclass (and its one door: a server
not on the operator's allow-list is refused before any command runs).

- the user's fault (bad input, quota, bans, checks): their message, ephemeral, nothing spent;
- the operator's fault (bad API key, no credits): a generic message, and a loud log line;
- anything else: an error id shown to the user, the traceback logged once with that id.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from core.errors import UserError
from core.references import InvalidInput
from core.service import NotEnabledHere
from core.wan import WanOperatorError
from discord_side.limits import CONTENT_MAX, fit_content, length
from discord_side.permissions import BotServices

log = logging.getLogger(__name__)

OPERATOR_MESSAGE = (
    "The video service is not available right now; the bot's operator has been told."
    " Nothing was charged."
)


def describe_error(error: BaseException) -> tuple[str, bool]:
    """(message for the user, whether it was unexpected)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, InvalidInput):
        # Its own list, cut to fit with "…and N more" and still ending in "Nothing was charged."
        return original.render(CONTENT_MAX, measure=length), False
    if isinstance(original, UserError):
        return original.message, False
    if isinstance(original, app_commands.MissingPermissions | app_commands.CheckFailure):
        text = str(original) or "You are not allowed to use this command."
        return text, False
    if isinstance(original, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {original.retry_after:.0f} s.", False
    if isinstance(original, WanOperatorError):
        log.error("OPERATOR ACTION NEEDED: the WAN API refused the bot: %s", original)
        return OPERATOR_MESSAGE, False
    return "", True


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer ephemerally whether or not the interaction was already acknowledged."""
    text = fit_content(text)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error (interaction %s)", interaction.id)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    text, unexpected = describe_error(error)
    if unexpected:
        error_id = secrets.token_hex(4)
        log.error(
            "unexpected error %s in %s",
            error_id,
            interaction.command.qualified_name if interaction.command else "an interaction",
            exc_info=error,
        )
        text = f"Something went wrong on our side (error `{error_id}`). Please try again."
    await send_ephemeral(interaction, text)


class ServerNotEnabled(app_commands.CheckFailure):
    """The server is not on ALLOWED_GUILD_IDS: shown to the member like any failed check."""


class BotCommandTree(app_commands.CommandTree[discord.Client]):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Every app command, moderators' included, passes here first (components and modals go
        # through VideoService.check_allowed, which applies the same rule).
        client = interaction.client
        if not isinstance(client, BotServices):
            return True
        try:
            client.service.check_enabled(interaction.guild_id)
        except NotEnabledHere as exc:
            if interaction.type is discord.InteractionType.autocomplete:
                return False  # no message can answer an autocomplete: offer nothing
            log.info(
                "refused a command in guild %s: not on ALLOWED_GUILD_IDS", interaction.guild_id
            )
            raise ServerNotEnabled(exc.message) from None
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)
