"""A reply's text as the video API should get it: words, never Discord's mention markup.

Discord writes mentions as markup: ``<@id>``/``<@!id>`` (members), ``<@&id>`` (roles), ``<#id>``
(channels), ``</name:id>`` (commands) and ``@everyone``/``@here``. The bot's own mention only
addresses the bot: it goes, wherever it stands. Every other mention becomes what members read
in Discord, without the markup: a member's display name, a role's or a channel's name,
"everyone"; so the prompt keeps its sense and the API never sees an id. A mention that cannot be
resolved (a member the bot has never seen) is dropped.
"""

from __future__ import annotations

import re
from typing import Final

import discord

_MENTION: Final = re.compile(
    r"<@!?(?P<user>\d+)>|<@&(?P<role>\d+)>|<#(?P<channel>\d+)>"
    r"|</(?P<command>[^:<>\s][^:<>]*):\d+>|@(?P<everyone>everyone|here)\b"
)
_SPACES: Final = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCTUATION: Final = re.compile(r"[ \t]+(?=[,.;:!?])")


def without_bot_mentions(text: str, bot_id: int | None) -> str:
    """``text`` with every mention of the bot taken out (a space left, so words stay apart)."""
    if bot_id is None:
        return text
    return re.sub(rf"<@!?{bot_id}>", " ", text)


def without_mentions(text: str, message: discord.Message, bot_id: int | None) -> str:
    """``text`` (from ``message``) with every mention turned into the name members see."""
    users = {user.id: user.display_name for user in message.mentions}
    roles = {role.id: role.name for role in message.role_mentions}
    guild = message.guild

    def name(match: re.Match[str]) -> str:
        if (user := match["user"]) is not None:
            user_id = int(user)
            if user_id == bot_id:
                return " "
            member = users.get(user_id)
            if member is None and guild is not None:
                found = guild.get_member(user_id)
                member = found.display_name if found is not None else None
            return member or " "
        if (role := match["role"]) is not None:
            found_role = roles.get(int(role))
            if found_role is None and guild is not None:
                cached = guild.get_role(int(role))
                found_role = cached.name if cached is not None else None
            return found_role or " "
        if (channel := match["channel"]) is not None:
            place = guild.get_channel_or_thread(int(channel)) if guild is not None else None
            return place.name if place is not None else " "
        if (command := match["command"]) is not None:
            return "/" + command
        return str(match["everyone"])

    # One pass: a name that looks like markup itself is not read again.
    return _tidy(_MENTION.sub(name, text))


def _tidy(text: str) -> str:
    lines = (_SPACE_BEFORE_PUNCTUATION.sub("", _SPACES.sub(" ", line)) for line in text.split("\n"))
    return "\n".join(line.strip() for line in lines).strip()
