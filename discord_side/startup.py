"""Discord at start-up: is it reachable and is the token good, and a first run that explains itself.

Before anything else the bot asks Discord who it is (``GET /users/@me``, with a deadline), so an
unreachable host or a refused token is one clear line instead of a traceback. Once connected it
logs, once, the servers it is in, whether its slash commands are synced and where (one
``GET`` of the registered commands, no sync), and the invite URL; with nothing synced and no
``DEV_GUILD_ID`` it says exactly what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from core.reachability import DEFAULT_TIMEOUT, host_of, probe
from discord_side.client import AppClient
from discord_side.inputs import BOT_PERMISSIONS

log = logging.getLogger(__name__)

INVITE_SCOPES = ("bot", "applications.commands")
SHOWN_GUILDS = 10  # the log names this many servers, then counts the rest


class TokenRefused(Exception):
    """Discord answered 401 to the bot's token."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"token refused by Discord ({host} answered 401): copy the bot's token again from the"
            " developer portal (Bot → Reset Token) into DISCORD_TOKEN"
        )


class DiscordUnavailable(Exception):
    """Discord answered, but not with the bot's identity (an outage, a proxy in the way)."""


@dataclass(frozen=True, slots=True)
class BotIdentity:
    user_id: int
    username: str


async def who_am_i(
    session: aiohttp.ClientSession, api_base: str, token: str, *, within: float = DEFAULT_TIMEOUT
) -> BotIdentity:
    """The bot user the token belongs to, within ``within`` seconds.

    Raises :class:`core.reachability.Unreachable`, :class:`TokenRefused` (a 401, whatever the
    base URL) or :class:`DiscordUnavailable`. The token travels only in the header.
    """
    url = api_base.rstrip("/") + "/users/@me"
    status, body = await probe(
        session, url, headers={"Authorization": f"Bot {token.strip()}"}, within=within
    )
    host = host_of(api_base)
    if status == 401:
        raise TokenRefused(host)
    if status != 200 or not isinstance(body, dict) or "id" not in body:
        raise DiscordUnavailable(f"{host} answered HTTP {status} to GET /users/@me")
    return BotIdentity(int(body["id"]), str(body.get("username", "?")))


@dataclass(frozen=True, slots=True)
class GatewayAdvice:
    """What ``GET /gateway/bot`` recommends: the shard count, and IDENTIFYs allowed at once."""

    shards: int
    max_concurrency: int


async def gateway_advice(
    session: aiohttp.ClientSession, api_base: str, token: str, *, within: float = DEFAULT_TIMEOUT
) -> GatewayAdvice | None:
    """Discord's recommended shard count for this bot, or None when it cannot be read."""
    url = api_base.rstrip("/") + "/gateway/bot"
    try:
        status, body = await probe(
            session, url, headers={"Authorization": f"Bot {token.strip()}"}, within=within
        )
    except Exception:  # advice only: --check has already judged the host and the token
        return None
    if status != 200 or not isinstance(body, dict):
        return None
    limit = body.get("session_start_limit")
    try:
        shards = int(body.get("shards", 1))
        concurrency = int(limit.get("max_concurrency", 1)) if isinstance(limit, dict) else 1
    except (TypeError, ValueError):
        return None
    return GatewayAdvice(shards, concurrency)


def shard_line(
    shard_count: int | None, shard_ids: Sequence[int] | None, advice: GatewayAdvice | None
) -> str:
    """``--check``'s line on sharding: what this process runs, and what Discord recommends."""
    if shard_count is None:
        mine = "this process: not sharded"
    else:
        ids = shard_ids if shard_ids is not None else range(shard_count)
        mine = f"this process: {len(ids)} of {shard_count} shard(s)"
    if advice is None:
        return f"discord shards: {mine}; Discord's recommendation could not be read"
    line = (
        f"discord shards: {mine}; Discord recommends {advice.shards}"
        f" (IDENTIFY max_concurrency {advice.max_concurrency})"
    )
    if advice.shards > (shard_count or 1):
        line += ": raise SHARD_COUNT (README, Scaling out)"
    return line


def invite_url(application_id: int) -> str:
    """The invite link with the scopes and permissions the bot needs."""
    return discord.utils.oauth_url(
        application_id, permissions=BOT_PERMISSIONS, scopes=INVITE_SCOPES
    )


# --- are the commands synced? ---------------------------------------------------------------------


def _shape(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    """What members see of a command or option: names, types, descriptions, options, choices."""
    choices = tuple(str(choice.get("name")) for choice in payload.get("choices") or ())
    return (
        payload.get("name"),
        int(payload.get("type") or 1),
        payload.get("description") or "",
        bool(payload.get("required", False)),
        tuple(_shape(option) for option in payload.get("options") or ()),
        choices,
    )


def command_differences(
    local: Iterable[Mapping[str, Any]], remote: Iterable[Mapping[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """(missing on Discord, only on Discord, different), each a sorted list of names."""
    mine = {str(c["name"]): _shape(c) for c in local}
    theirs = {str(c["name"]): _shape(c) for c in remote}
    missing = sorted(set(mine) - set(theirs))
    extra = sorted(set(theirs) - set(mine))
    changed = sorted(name for name in set(mine) & set(theirs) if mine[name] != theirs[name])
    return missing, extra, changed


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"/{name}" for name in names)


def describe_sync(
    scope: str,
    local: Sequence[Mapping[str, Any]],
    remote: Sequence[Mapping[str, Any]],
) -> tuple[bool, str]:
    """(in sync, a sentence) for the commands registered in ``scope`` ("globally", "in X")."""
    if not remote:
        return False, f"no slash commands are registered {scope}"
    missing, extra, changed = command_differences(local, remote)
    if not (missing or extra or changed):
        return True, f"{len(remote)} slash command(s) are synced {scope}"
    parts = []
    if missing:
        parts.append(f"missing {_names(missing)}")
    if extra:
        parts.append(f"left over {_names(extra)}")
    if changed:
        parts.append(f"changed {_names(changed)}")
    return False, f"the slash commands registered {scope} are out of date ({'; '.join(parts)})"


async def explain_start(bot: AppClient) -> None:
    """Log, once after the first READY, what an operator needs to know to get going."""
    user = bot.user
    application_id = bot.application_id or (user.id if user else None)
    url = invite_url(application_id) if application_id else "(unknown application id)"
    guilds = sorted(bot.guilds, key=lambda g: g.name.lower())
    if not guilds:
        log.warning("the bot is in no server yet: invite it with %s", url)
    else:
        shown = ", ".join(f"{g.name} ({g.id})" for g in guilds[:SHOWN_GUILDS])
        more = f" and {len(guilds) - SHOWN_GUILDS} more" if len(guilds) > SHOWN_GUILDS else ""
        log.info("in %d server(s): %s%s", len(guilds), shown, more)
        log.info("invite URL (to add the bot to another server): %s", url)

    local = [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
    try:
        remote = [command.to_dict() for command in await bot.tree.fetch_commands()]
    except discord.HTTPException as exc:
        log.warning("could not read the registered slash commands (HTTP %s)", exc.status)
        return
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("could not read the registered slash commands (%s)", type(exc).__name__)
        return
    synced, sentence = describe_sync("globally", local, remote)
    dev_guild = bot.settings.dev_guild_id
    if synced:
        log.info("%s", sentence)
        if dev_guild is not None:
            log.warning(
                "commands are synced globally and to DEV_GUILD_ID %s: that server shows each"
                " command twice; unset DEV_GUILD_ID outside development",
                dev_guild,
            )
    elif dev_guild is not None:
        log.info(
            "%s; they are synced to DEV_GUILD_ID %s at every start (other servers see none"
            " until `python bot.py --sync`)",
            sentence,
            dev_guild,
        )
    else:
        log.warning(
            "%s, so members see no /video. Run `python bot.py --sync` once (it registers the"
            " commands globally and exits; run it again after an upgrade that changes commands),"
            " or set DEV_GUILD_ID to a server id to sync there at every start",
            sentence,
        )
