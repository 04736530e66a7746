"""Spec'd fakes of discord.py objects, for driving cog callbacks without Discord.

Every fake is a ``MagicMock(spec=<discord class>)``: reading an attribute the real class lacks
raises ``AttributeError``, and ``isinstance(fake, discord.Member)`` is true, so code under test
takes the same branches it would with the real thing. Coroutine methods are ``AsyncMock``s.

Build a server, then people and places in it, then an interaction::

    guild = make_guild()
    mod_role = make_role(guild, permissions=discord.Permissions(manage_guild=True))
    alice = make_member(guild, roles=[mod_role])
    channel = make_text_channel(guild)
    interaction = make_interaction(alice, channel=channel, client=bot)
    await cog.some_command.callback(cog, interaction, ...)
    assert "done" in last_reply(interaction).text

What is wired up, so tests don't have to:

- ids are unique, snowflake-sized integers (:func:`next_id`); ``mention`` strings match Discord's;
- a guild knows its roles, members, channels and threads (``get_role``, ``get_member``,
  ``get_channel``, ``get_thread``, ``get_channel_or_thread``); ``default_role`` is @everyone, and
  ``filesize_limit`` follows ``premium_tier`` unless given;
- a member's ``guild_permissions`` are computed live from their roles, like discord.py does
  (owner and Administrator get everything), unless given explicitly; ``resolved_permissions``
  (what an interaction carries) is None unless given;
- a member's ``send`` (a DM) records what was sent in ``member.dms`` and returns a message;
  ``make_member(..., dms_closed=True)`` refuses it with 403 (50007), as Discord does;
- an interaction's ``response`` remembers whether it was used: ``is_done()`` turns true after
  ``send_message``/``defer``/``edit_message``/…, and a second one raises
  ``discord.InteractionResponded``, as in discord.py; ``followup.send`` returns a fake
  ``WebhookMessage``;
- :func:`replies` / :func:`last_reply` read back what the code sent, as :class:`Reply` values.

The last section, :func:`open_harness`, puts the real core (settings, store, tracker, service)
behind a fake bot, with helpers to accept jobs and move them through their states.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import discord
from discord.ext import commands

from core.app import build_services
from core.config import Settings
from core.jobs import Job, JobState
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.store import Store
from core.tracker import Tracker
from discord_side.inputs import BOT_PERMISSIONS

_ids = itertools.count(1_180_000_000_000_000_000)

# By default the bot holds what its invite asks for (threads, uploads, embeds).
DEFAULT_APP_PERMISSIONS = BOT_PERMISSIONS
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024  # Discord's default upload limit since 2025
_TIER_FILESIZE_LIMITS = {
    0: DEFAULT_FILESIZE_LIMIT,
    1: DEFAULT_FILESIZE_LIMIT,
    2: 50 << 20,
    3: 100 << 20,
}


def next_id() -> int:
    """A fresh snowflake-sized id."""
    return next(_ids)


def _with_property(mock: MagicMock, name: str, getter: Any) -> None:
    # Each Mock instance has its own class, so a property set there affects only this fake.
    setattr(type(mock), name, property(lambda _self: getter()))


# ----------------------------------------------------------------- guild, roles, members


def make_guild(
    *,
    id: int | None = None,
    name: str = "Test Server",
    owner_id: int | None = None,
    premium_tier: int = 0,
    filesize_limit: int | None = None,
) -> MagicMock:
    """A server with an @everyone role and empty member, channel and thread lists."""
    guild = MagicMock(spec=discord.Guild)
    guild.id = next_id() if id is None else id
    guild.name = name
    guild.owner_id = next_id() if owner_id is None else owner_id
    guild.premium_tier = premium_tier
    guild.filesize_limit = (
        _TIER_FILESIZE_LIMITS.get(premium_tier, DEFAULT_FILESIZE_LIMIT)
        if filesize_limit is None
        else filesize_limit
    )
    guild.roles = []
    guild.members = []
    guild.channels = []
    guild.threads = []
    guild.unavailable = False
    guild.me = None  # set it to a member made with make_member(guild, bot=True) if needed

    def find(items: Iterable[Any], item_id: int) -> Any:
        return next((item for item in items if item.id == item_id), None)

    guild.get_role.side_effect = lambda role_id: find(guild.roles, role_id)
    guild.get_member.side_effect = lambda user_id: find(guild.members, user_id)
    guild.get_channel.side_effect = lambda channel_id: find(guild.channels, channel_id)
    guild.get_thread.side_effect = lambda thread_id: find(guild.threads, thread_id)
    guild.get_channel_or_thread.side_effect = lambda channel_id: find(
        [*guild.channels, *guild.threads], channel_id
    )
    everyone = make_role(guild, id=guild.id, name="@everyone", position=0)
    guild.default_role = everyone
    return guild


def make_role(
    guild: MagicMock,
    *,
    id: int | None = None,
    name: str = "role",
    permissions: discord.Permissions | None = None,
    position: int = 1,
) -> MagicMock:
    """A role, added to ``guild.roles``; the role whose id is the guild's id is @everyone."""
    role = MagicMock(spec=discord.Role)
    role.id = next_id() if id is None else id
    role.name = name
    role.guild = guild
    role.position = position
    role.permissions = permissions or discord.Permissions.none()
    role.mention = "@everyone" if role.id == guild.id else f"<@&{role.id}>"
    role.managed = False
    role.is_default.side_effect = lambda: role.id == guild.id
    guild.roles.append(role)
    return role


def make_member(
    guild: MagicMock,
    *,
    id: int | None = None,
    name: str = "member",
    display_name: str | None = None,
    roles: Sequence[MagicMock] = (),
    permissions: discord.Permissions | None = None,
    resolved_permissions: discord.Permissions | None = None,
    bot: bool = False,
    dms_closed: bool = False,
) -> MagicMock:
    """A member of ``guild`` (added to ``guild.members``) holding @everyone plus ``roles``.

    ``guild_permissions`` is ``permissions`` when given; otherwise it is computed each time it
    is read from the member's current roles (so appending to ``member.roles`` takes effect).
    """
    member = MagicMock(spec=discord.Member)
    member.id = next_id() if id is None else id
    member.name = name
    member.display_name = display_name or name
    member.global_name = display_name or name
    member.mention = f"<@{member.id}>"
    member.bot = bot
    member.guild = guild
    member.roles = [guild.default_role, *roles]
    member.resolved_permissions = resolved_permissions
    member.get_role.side_effect = lambda role_id: next(
        (role for role in member.roles if role.id == role_id), None
    )

    def computed() -> discord.Permissions:
        if permissions is not None:
            return permissions
        if guild.owner_id == member.id:
            return discord.Permissions.all()
        value = 0
        for role in member.roles:
            value |= role.permissions.value
        combined = discord.Permissions(value)
        return discord.Permissions.all() if combined.administrator else combined

    _with_property(member, "guild_permissions", computed)
    member.dms = []

    async def send(*args: Any, **kwargs: Any) -> MagicMock:
        if dms_closed:
            raise forbidden(50007, "Cannot send messages to this user")
        member.dms.append(_content(args, kwargs))
        message = MagicMock(spec=discord.Message)
        message.id = next_id()
        message.content = member.dms[-1]
        return message

    member.send = AsyncMock(side_effect=send)
    guild.members.append(member)
    return member


def http_error(
    kind: type[discord.HTTPException], status: int, code: int, message: str
) -> discord.HTTPException:
    """A discord.py HTTP error as raised for Discord's JSON error ``{code, message}``."""
    return kind(MagicMock(status=status, reason=message), {"code": code, "message": message})


def forbidden(code: int = 50013, message: str = "Missing Permissions") -> discord.HTTPException:
    return http_error(discord.Forbidden, 403, code, message)


def not_found(code: int = 10003, message: str = "Unknown Channel") -> discord.HTTPException:
    return http_error(discord.NotFound, 404, code, message)


def make_user(*, id: int | None = None, name: str = "user", bot: bool = False) -> MagicMock:
    """A user outside any server context (a DM, or someone who left)."""
    user = MagicMock(spec=discord.User)
    user.id = next_id() if id is None else id
    user.name = name
    user.display_name = name
    user.global_name = name
    user.mention = f"<@{user.id}>"
    user.bot = bot
    return user


# ----------------------------------------------------------------- channels, threads, messages


def _content(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return str(args[0] if args else kwargs.get("content") or "")


def _wire_messageable(channel: MagicMock) -> None:
    """``send`` makes a message in ``channel``; ``fetch_message`` finds one sent or raises 404."""
    sent: list[MagicMock] = []

    async def send(*args: Any, **kwargs: Any) -> MagicMock:
        reference = kwargs.get("reference")
        if reference is not None and not hasattr(reference, "to_message_reference_dict"):
            # As discord.py does (MISSING included): only None means "no reference".
            raise TypeError(
                "reference parameter must be Message, MessageReference, or PartialMessage"
            )
        message = make_message(channel, content=_content(args, kwargs))
        sent.append(message)
        return message

    async def fetch_message(message_id: int) -> MagicMock:
        for message in sent:
            if message.id == message_id:
                return message
        raise discord.NotFound(MagicMock(status=404, reason="Not Found"), "Unknown Message")

    channel.send = AsyncMock(side_effect=send)
    channel.fetch_message = AsyncMock(side_effect=fetch_message)


def make_text_channel(
    guild: MagicMock,
    *,
    id: int | None = None,
    name: str = "general",
    nsfw: bool = False,
) -> MagicMock:
    """A text channel in ``guild`` (added to ``guild.channels``).

    ``send`` returns a fake message that ``fetch_message`` can find again (others are a 404);
    ``create_thread`` returns a fake thread; ``permissions_for(member)`` returns the member's
    guild permissions (no overwrites).
    """
    channel = MagicMock(spec=discord.TextChannel)
    channel.id = next_id() if id is None else id
    channel.name = name
    channel.guild = guild
    channel.type = discord.ChannelType.text
    channel.mention = f"<#{channel.id}>"
    channel.jump_url = f"https://discord.com/channels/{guild.id}/{channel.id}"
    channel.nsfw = nsfw
    channel.is_nsfw.return_value = nsfw
    channel.category = None
    channel.permissions_for.side_effect = lambda who: who.guild_permissions
    _wire_messageable(channel)
    channel.create_thread = AsyncMock(
        side_effect=lambda *, name, **_kw: make_thread(channel, name=name)
    )
    guild.channels.append(channel)
    return channel


def make_thread(
    parent: MagicMock,
    *,
    id: int | None = None,
    name: str = "thread",
    owner_id: int | None = None,
) -> MagicMock:
    """A public thread in ``parent`` (added to the guild's threads); NSFW follows the parent."""
    guild = parent.guild
    thread = MagicMock(spec=discord.Thread)
    thread.id = next_id() if id is None else id
    thread.name = name
    thread.guild = guild
    thread.parent = parent
    thread.parent_id = parent.id
    thread.owner_id = owner_id
    thread.type = discord.ChannelType.public_thread
    thread.mention = f"<#{thread.id}>"
    thread.jump_url = f"https://discord.com/channels/{guild.id}/{thread.id}"
    thread.archived = False
    thread.locked = False
    thread.is_nsfw.side_effect = lambda: parent.is_nsfw()
    thread.permissions_for.side_effect = lambda who: who.guild_permissions
    _wire_messageable(thread)
    guild.threads.append(thread)
    return thread


def make_partial_channel(guild: MagicMock, *, id: int | None = None) -> MagicMock:
    """A channel discord.py does not have in its cache (``PartialMessageable``): what a message
    in an archived or never-announced thread carries. Not a ``Thread``, and no parent."""
    channel = MagicMock(spec=discord.PartialMessageable)
    channel.id = next_id() if id is None else id
    channel.guild = guild
    channel.type = None
    channel.jump_url = f"https://discord.com/channels/{guild.id}/{channel.id}"
    _wire_messageable(channel)
    return channel


def make_dm_channel(recipient: MagicMock, *, closed: bool = False) -> MagicMock:
    """The bot's DM channel with ``recipient``; with ``closed`` every send is refused (50007)."""
    channel = MagicMock(spec=discord.DMChannel)
    channel.id = next_id()
    channel.recipient = recipient
    channel.guild = None
    _wire_messageable(channel)
    if closed:
        channel.send.side_effect = forbidden(50007, "Cannot send messages to this user")
    return channel


def make_attachment(
    *,
    id: int | None = None,
    filename: str = "reference.png",
    content_type: str | None = "image/png",
    size: int = 250_000,
    width: int | None = 1024,
    height: int | None = 1024,
    url: str | None = None,
    duration_secs: float | None = None,
) -> MagicMock:
    """An attachment with a signed-looking CDN URL (``ex``/``is``/``hm``), as Discord sends."""
    attachment = MagicMock(spec=discord.Attachment)
    attachment.id = next_id() if id is None else id
    attachment.filename = filename
    attachment.content_type = content_type
    attachment.size = size
    attachment.width = width
    attachment.height = height
    attachment.duration_secs = duration_secs
    attachment.ephemeral = False
    attachment.url = url or (
        f"https://cdn.discordapp.com/attachments/{next_id()}/{attachment.id}/{filename}"
        "?ex=6560a000&is=655f5000&hm=0123456789abcdef"
    )
    attachment.proxy_url = attachment.url.replace("cdn.discordapp.com", "media.discordapp.net")
    attachment.read = AsyncMock(return_value=b"")
    attachment.to_file = AsyncMock(
        side_effect=lambda **_kw: discord.File(io.BytesIO(b""), filename=filename)
    )
    return attachment


def make_message(
    channel: MagicMock,
    *,
    id: int | None = None,
    author: MagicMock | None = None,
    content: str = "",
    attachments: Sequence[MagicMock] = (),
    mentions: Sequence[MagicMock] = (),
    role_mentions: Sequence[MagicMock] = (),
    reference: discord.MessageReference | None = None,
    embeds: Sequence[discord.Embed] = (),
) -> MagicMock:
    """A message in ``channel`` (a text channel or thread) with reply/edit/delete coroutines."""
    message = MagicMock(spec=discord.Message)
    message.id = next_id() if id is None else id
    message.channel = channel
    message.guild = channel.guild
    message.author = author
    message.content = content
    message.attachments = list(attachments)
    message.mentions = list(mentions)
    message.role_mentions = list(role_mentions)
    message.embeds = list(embeds)
    message.reference = reference
    message.created_at = datetime.now(UTC)
    where = "@me" if channel.guild is None else channel.guild.id
    message.jump_url = f"https://discord.com/channels/{where}/{channel.id}/{message.id}"

    async def reply(*args: Any, **kwargs: Any) -> MagicMock:
        sent: MagicMock = await channel.send(*args, **kwargs)
        return sent

    message.reply = AsyncMock(side_effect=reply)
    message.edit = AsyncMock(return_value=message)
    message.delete = AsyncMock(return_value=None)
    message.add_reaction = AsyncMock(return_value=None)
    if isinstance(channel, discord.TextChannel):
        # A thread started from a message shares the message's id, as on Discord.
        message.create_thread = AsyncMock(
            side_effect=lambda *, name, **_kw: make_thread(channel, id=message.id, name=name)
        )
    return message


# ----------------------------------------------------------------- bot and interactions


def make_bot(*, id: int | None = None, name: str = "WanBot", **services: Any) -> MagicMock:
    """A ``commands.Bot`` fake; ``services`` become attributes (``store=…``, ``service=…``).

    ``bot.user`` is a ``ClientUser`` fake with a mention; ``add_cog``/``get_cog`` are mocks.
    """
    bot = MagicMock(spec=commands.Bot)
    user = MagicMock(spec=discord.ClientUser)
    user.id = next_id() if id is None else id
    user.name = name
    user.display_name = name
    user.mention = f"<@{user.id}>"
    user.bot = True
    bot.user = user
    bot.add_cog = AsyncMock(return_value=None)
    for name_, value in services.items():
        setattr(bot, name_, value)
    return bot


def _make_response(interaction: MagicMock) -> MagicMock:
    response = MagicMock(spec=discord.InteractionResponse)
    state = {"done": False}

    def acknowledge(*_args: Any, **_kwargs: Any) -> None:
        if state["done"]:
            raise discord.InteractionResponded(interaction)
        state["done"] = True

    response.is_done.side_effect = lambda: state["done"]
    for name in ("send_message", "defer", "edit_message", "send_modal", "autocomplete"):
        setattr(response, name, AsyncMock(side_effect=acknowledge))
    return response


def make_webhook_message(*, id: int | None = None, content: str = "") -> MagicMock:
    """What ``followup.send(..., wait=True)`` returns."""
    message = MagicMock(spec=discord.WebhookMessage)
    message.id = next_id() if id is None else id
    message.content = content
    message.edit = AsyncMock(return_value=message)
    message.delete = AsyncMock(return_value=None)
    return message


def make_interaction(
    user: MagicMock,
    *,
    guild: MagicMock | None = None,
    channel: MagicMock | None = None,
    client: Any = None,
    app_permissions: discord.Permissions | None = None,
    filesize_limit: int | None = None,
    command: Any = None,
    locale: discord.Locale = discord.Locale.american_english,
) -> MagicMock:
    """An application-command interaction by ``user`` (a member, or a user for DMs).

    ``guild`` defaults to the member's guild. ``permissions`` are the user's guild permissions;
    ``app_permissions`` the bot's (:data:`DEFAULT_APP_PERMISSIONS`); ``filesize_limit`` the
    guild's upload limit.
    """
    interaction = MagicMock(spec=discord.Interaction)
    if guild is None:
        guild = getattr(user, "guild", None) if isinstance(user, discord.Member) else None
    interaction.id = next_id()
    interaction.token = f"token-{interaction.id}"
    interaction.application_id = getattr(getattr(client, "user", None), "id", None) or next_id()
    interaction.type = discord.InteractionType.application_command
    interaction.user = user
    interaction.guild = guild
    interaction.guild_id = None if guild is None else guild.id
    interaction.channel = channel
    interaction.channel_id = None if channel is None else channel.id
    interaction.client = client
    interaction.command = command
    interaction.message = None
    interaction.data = {}
    interaction.extras = {}
    interaction.locale = locale
    interaction.guild_locale = None if guild is None else locale
    interaction.created_at = datetime.now(UTC)
    interaction.permissions = (
        user.guild_permissions if isinstance(user, discord.Member) else discord.Permissions.none()
    )
    interaction.app_permissions = app_permissions or DEFAULT_APP_PERMISSIONS
    if filesize_limit is None:
        filesize_limit = DEFAULT_FILESIZE_LIMIT if guild is None else guild.filesize_limit
    interaction.filesize_limit = filesize_limit
    interaction.response = _make_response(interaction)
    interaction.followup = MagicMock(spec=discord.Webhook)
    interaction.followup.send = AsyncMock(
        side_effect=lambda *a, **kw: make_webhook_message(content=_content(a, kw))
    )
    interaction.original_response = AsyncMock(side_effect=lambda: make_webhook_message())
    interaction.edit_original_response = AsyncMock(side_effect=lambda **kw: make_webhook_message())
    interaction.delete_original_response = AsyncMock(return_value=None)
    return interaction


def make_component_interaction(
    user: MagicMock, message: MagicMock | None = None, **kwargs: Any
) -> MagicMock:
    """A button/select press on ``message``: like :func:`make_interaction`, type component."""
    interaction = make_interaction(user, **kwargs)
    interaction.type = discord.InteractionType.component
    interaction.message = message
    return interaction


# ----------------------------------------------------------------- reading back what was sent


@dataclass(frozen=True)
class Reply:
    """One message the code sent through an interaction."""

    via: str  # "response", "followup" or "edit"
    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()
    view: discord.ui.View | None = None
    files: tuple[discord.File, ...] = ()
    ephemeral: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def embed(self) -> discord.Embed | None:
        return self.embeds[0] if self.embeds else None

    @property
    def file(self) -> discord.File | None:
        return self.files[0] if self.files else None

    @property
    def text(self) -> str:
        """Content and every embed's title, description, fields and footer, one per line."""
        parts = [self.content or ""]
        for embed in self.embeds:
            parts += [embed.title or "", embed.description or ""]
            for embed_field in embed.fields:
                parts += [embed_field.name or "", embed_field.value or ""]
            parts.append(embed.footer.text or "")
        return "\n".join(part for part in parts if part)


def _reply(via: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reply:
    embeds = list(kwargs.get("embeds") or [])
    if kwargs.get("embed") is not None:
        embeds.insert(0, kwargs["embed"])
    files = list(kwargs.get("files") or [])
    if kwargs.get("file") is not None:
        files.insert(0, kwargs["file"])
    content = args[0] if args else kwargs.get("content")
    return Reply(
        via=via,
        content=content,
        embeds=tuple(embeds),
        view=kwargs.get("view"),
        files=tuple(files),
        ephemeral=bool(kwargs.get("ephemeral", False)),
        kwargs=dict(kwargs),
    )


def replies(interaction: MagicMock) -> list[Reply]:
    """Messages sent for ``interaction``: its response first, then follow-ups, in order."""
    sent = [
        _reply("response", call.args, call.kwargs)
        for call in interaction.response.send_message.await_args_list
    ]
    sent += [
        _reply("followup", call.args, call.kwargs)
        for call in interaction.followup.send.await_args_list
    ]
    return sent


def edits(interaction: MagicMock) -> list[Reply]:
    """Message edits a component interaction answered with (``response.edit_message``)."""
    return [
        _reply("edit", call.args, call.kwargs)
        for call in interaction.response.edit_message.await_args_list
    ]


def last_reply(interaction: MagicMock) -> Reply:
    """The latest message sent for ``interaction``; fails the test if none was."""
    sent = replies(interaction)
    assert sent, "nothing was sent for this interaction"
    return sent[-1]


def was_deferred(interaction: MagicMock, *, ephemeral: bool | None = None) -> bool:
    """Whether the interaction was deferred (and, if asked, with that ephemerality)."""
    calls = interaction.response.defer.await_args_list
    if ephemeral is None:
        return bool(calls)
    return any(call.kwargs.get("ephemeral", False) == ephemeral for call in calls)


# ----------------------------------------------------------------- real core services, fake bot
#
# Cog tests drive callbacks against the real store, quota and service: only Discord is faked.
# The tracker is built but never started, so nothing talks to the WAN API; cancel/fail work.

TEST_ENV: dict[str, str] = {
    "DISCORD_TOKEN": "test-token",
    "FREEPIK_API_KEY": "test-key",
    "WEBHOOK_PORT": "0",
    "QUOTA_DAILY_SECONDS": "60",
    "QUOTA_MAX_CONCURRENT": "2",
}
TEST_NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class FakeClock:
    """A clock tests move by hand; pass it wherever code takes ``clock=``."""

    def __init__(self, now: float = TEST_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class BotHarness:
    settings: Settings
    store: Store
    tracker: Tracker
    service: VideoService
    clock: FakeClock
    bot: MagicMock  # make_bot(...) with settings, store, service, tracker, wan, session


@asynccontextmanager
async def open_harness(
    db_path: Path, *, env: Mapping[str, str] | None = None, clock: FakeClock | None = None
) -> AsyncIterator[BotHarness]:
    """Real ``Settings`` (:data:`TEST_ENV` + ``env``), ``Store``, ``Tracker``, ``VideoService``."""
    settings = Settings.from_env({**TEST_ENV, "DATABASE_PATH": str(db_path), **(env or {})})
    clock = clock or FakeClock()
    async with Store.open(settings.database_target) as store:
        # The composition root bot.py uses; no request reaches the (mock) session.
        services = build_services(
            settings, store, MagicMock(spec=aiohttp.ClientSession), clock=clock
        )
        bot = make_bot(
            services=services,
            settings=settings,
            store=store,
            service=services.service,
            tracker=services.tracker,
            moderation=services.moderation,
            wan=services.client,
            session=services.session,
            metrics=services.metrics,
        )
        yield BotHarness(settings, store, services.tracker, services.service, clock, bot)


def requester_for(member: MagicMock, channel: MagicMock) -> Requester:
    """The core's view of ``member`` asking in ``channel`` (a text channel or a thread)."""
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return Requester(
        guild_id=member.guild.id,
        channel_id=channel.id,
        user_id=member.id,
        role_ids=[role.id for role in member.roles],
        parent_channel_id=parent,
        channel_is_nsfw=bool(channel.is_nsfw()),
        display_name=member.display_name,
    )


async def accept_job(
    harness: BotHarness,
    member: MagicMock,
    channel: MagicMock,
    *,
    prompt: str = "Image 1 waves hello",
    duration: int = 5,
    resolution: str = "720P",
) -> Job:
    """A job accepted through the real service (rules, quota reservation, persistence)."""
    reference = ReferenceInput(
        1,
        Attachment(
            url=f"https://cdn.example/{next_id()}.png",
            filename="ref.png",
            content_type="image/png",
            size=100_000,
            width=1024,
            height=1024,
        ),
    )
    built = build_request(
        prompt, [reference], GenerationOptions(duration=duration, resolution=resolution)
    )
    return await harness.service.accept(requester_for(member, channel), built)


# The legal path from `reserved` to each state.
_PATHS: dict[JobState, tuple[JobState, ...]] = {
    JobState.RESERVED: (),
    JobState.SUBMITTING: (JobState.SUBMITTING,),
    JobState.SUBMITTED: (JobState.SUBMITTING, JobState.SUBMITTED),
    JobState.RUNNING: (JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING),
    JobState.COMPLETED: (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED),
    JobState.DELIVERED: (
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.COMPLETED,
        JobState.DELIVERED,
    ),
    JobState.FAILED: (JobState.FAILED,),
    JobState.CANCELLED: (JobState.CANCELLED,),
}


async def move_job(harness: BotHarness, job: Job, target: JobState) -> Job:
    """Walk a freshly accepted job to ``target`` through legal transitions (refunds included)."""
    moved: Job | None = job
    for state in _PATHS[target]:
        moved = await harness.store.transition(job.id, state, harness.clock())
        assert moved is not None, f"job {job.id} could not move to {state}"
    assert moved is not None
    return moved
