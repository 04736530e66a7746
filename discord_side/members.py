"""Who the invoking member is, and their roles, as the core's rules want them."""

from __future__ import annotations

import discord

from core.errors import UserError


def guild_member(interaction: discord.Interaction) -> discord.Member:
    """The invoking member; commands that count per server refuse direct messages."""
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        raise UserError("This command only works in a server.")
    return interaction.user


def role_ids(member: discord.Member | discord.User) -> list[int]:
    """The member's role ids, for the core's rules (a ``User`` outside a server has none)."""
    return [role.id for role in getattr(member, "roles", ())]
