"""The world the fake Discord keeps: its guilds (one to start with; tests add more), their roles,
members, channels and threads, the bot's DMs, messages and interactions, on a clock that tests
can move.

Plain data and the payloads Discord builds from it; the REST, gateway and CDN modules read and
change it. Every change the fake makes goes through :meth:`State.notify`, which wakes the waiters
of ``FakeDiscord.wait_for``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass, field

from tests.fakes.discord.protocol import (
    BOT_PERMISSIONS,
    DISCORD_EPOCH_MS,
    EVERYONE_PERMISSIONS,
    JSON,
    MIB,
    MODERATOR_PERMISSIONS,
    THREAD_TYPES,
    TIER_UPLOAD_LIMITS,
    ApiError,
    MessageFlag,
    Perm,
    iso,
)


@dataclass(frozen=True)
class FakeUser:
    id: int
    username: str
    bot: bool = False
    role_ids: tuple[int, ...] = ()

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(frozen=True)
class FakeGuild:
    """A server the bot is in: its roles, a category and a first text channel. Every user is a
    member of every guild; roles other than the bot's are the first guild's."""

    id: int
    name: str
    owner_id: int
    bot_role_id: int
    category_id: int
    channel_id: int  # "general", the system channel
    role_ids: tuple[int, ...]  # @everyone (the guild's id) first

    def shard(self, shard_count: int) -> int:
        """The shard whose gateway session gets this guild's events (Discord's formula)."""
        return shard_of(self.id, shard_count)


def shard_of(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and how the bot answered it."""

    id: int
    token: str
    type: int  # 2 application command, 3 component, 4 autocomplete, 5 modal submit
    user_id: int
    channel_id: int
    guild_id: int
    name: str  # command path ("admin quota set") or component custom_id
    payload: JSON  # exactly what the bot received
    created_at: float  # fake clock
    message_id: int | None = None  # component interactions: the message clicked
    response_type: int | None = None
    response_data: JSON | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    ephemeral: bool = False
    loading: bool = False


class State:
    """The guild, its people, channels, messages and interactions; the clock and the ids."""

    def __init__(self, *, token: str | None, premium_tier: int, upload_limit: int | None) -> None:
        self._last_id = 0
        self._clock_offset = 0.0
        self._changed = asyncio.Event()
        self.token = token or f"fake.{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(27)}"
        self.premium_tier = premium_tier
        self.upload_limit_override = upload_limit
        self.port = 0  # set once the server listens

        self.guild_id = self.snowflake()
        self.moderator_role_id = self.snowflake()
        self.bot_role_id = self.snowflake()
        self.guilds: dict[int, FakeGuild] = {}  # every guild the bot is in, the first one first
        self.bot_user = FakeUser(
            self.snowflake(), "wan-bot", bot=True, role_ids=(self.bot_role_id,)
        )
        self.application_id = self.bot_user.id  # as for every modern Discord bot
        self.owner = FakeUser(self.snowflake(), "owner")
        self.member = FakeUser(self.snowflake(), "alice")
        self.moderator = FakeUser(self.snowflake(), "mod", role_ids=(self.moderator_role_id,))
        self.users: dict[int, FakeUser] = {
            u.id: u for u in (self.bot_user, self.owner, self.member, self.moderator)
        }
        self.joined_at = self.now()
        self.roles: dict[int, JSON] = {
            self.guild_id: _role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            self.moderator_role_id: _role(
                self.moderator_role_id, "Moderator", MODERATOR_PERMISSIONS, 1
            ),
            self.bot_role_id: _role(self.bot_role_id, "wan-bot", BOT_PERMISSIONS, 2),
        }
        self.roles[self.bot_role_id]["managed"] = True
        self.roles[self.bot_role_id]["tags"] = {"bot_id": str(self.bot_user.id)}

        self.channels: dict[int, JSON] = {}  # guild channels and threads
        self.dm_channels: dict[int, JSON] = {}  # the bot's DMs (type 1), by channel id
        self.dms_closed: set[int] = set()  # members who do not take DMs from the bot
        self.category_id = self._add_channel(4, "Text Channels", position=0)
        self.channel_id = self._add_channel(0, "general", position=0, parent=self.category_id)
        self.other_channel_id = self._add_channel(0, "videos", position=1, parent=self.category_id)
        self.voice_channel_id = self._add_channel(2, "Lounge", position=2)
        self.guilds[self.guild_id] = FakeGuild(
            id=self.guild_id,
            name="WAN Test Guild",
            owner_id=self.owner.id,
            bot_role_id=self.bot_role_id,
            category_id=self.category_id,
            channel_id=self.channel_id,
            role_ids=(self.guild_id, self.moderator_role_id, self.bot_role_id),
        )

        self.left_guilds: list[int] = []  # guilds the bot left (DELETE /users/@me/guilds/{id})
        self.messages: dict[int, JSON] = {}
        self.deleted_messages: dict[int, JSON] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}

    # ------------------------------------------------------------------ clock, ids, changes

    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        self._clock_offset += seconds
        self.notify()

    def snowflake(self, *, shard: tuple[int, int] | None = None) -> int:
        """A new id: real snowflakes (timestamp << 22) so discord.py's created_at is sensible.
        ``shard=(id, count)`` gives a guild id that lands on that shard (a later millisecond)."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        if shard is not None:
            shard_id, count = shard
            if not 0 <= shard_id < count:
                raise ValueError(f"shard {shard_id} is not one of {count}")
            millis = (self._last_id >> 22) + (shard_id - (self._last_id >> 22)) % count
            self._last_id = max(self._last_id, millis << 22)
        return self._last_id

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change (take it before checking, then wait on it)."""
        return self._changed

    def notify(self) -> None:
        # Wake every waiter; each re-checks its own condition.
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ people and channels

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> FakeGuild:
        """The bot joins another server (before it connects: GUILD_CREATE comes at IDENTIFY).
        ``shard=(id, count)`` picks an id whose events go to that shard."""
        guild_id = self.snowflake(shard=shard)
        bot_role_id = self.snowflake()
        self.roles[guild_id] = _role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        self.roles[bot_role_id] = _role(bot_role_id, "wan-bot", BOT_PERMISSIONS, 1)
        self.roles[bot_role_id] |= {"managed": True, "tags": {"bot_id": str(self.bot_user.id)}}
        category_id = self._add_channel(4, "Text Channels", position=0, guild_id=guild_id)
        channel_id = self._add_channel(
            0, "general", position=0, parent=category_id, guild_id=guild_id
        )
        guild = FakeGuild(
            id=guild_id,
            name=name,
            owner_id=self.owner.id,
            bot_role_id=bot_role_id,
            category_id=category_id,
            channel_id=channel_id,
            role_ids=(guild_id, bot_role_id),
        )
        self.guilds[guild_id] = guild
        self.notify()
        return guild

    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """A guild the bot is in (None: the first one); 404 Unknown Guild otherwise."""
        found = self.guilds.get(self.guild_id if guild_id is None else guild_id)
        if found is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return found

    def guild_of_channel(self, channel_id: int) -> int | None:
        """The guild a channel or thread is in; None for a DM."""
        raw = self.channel(channel_id).get("guild_id")
        return int(raw) if raw is not None else None

    def _add_channel(
        self,
        kind: int,
        name: str,
        *,
        position: int,
        parent: int | None = None,
        guild_id: int | None = None,
    ) -> int:
        channel_id = self.snowflake()
        channel: JSON = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": position,
            "parent_id": str(parent) if parent else None,
            "permission_overwrites": [],
            "nsfw": False,
            "flags": 0,
        }
        if kind in (0, 5):
            channel |= {
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "default_auto_archive_duration": 1440,
            }
        elif kind == 2:
            channel |= {
                "bitrate": 64000,
                "user_limit": 0,
                "rtc_region": None,
                "last_message_id": None,
            }
        self.channels[channel_id] = channel
        return channel_id

    def add_user(self, username: str, *, moderator: bool = False, bot: bool = False) -> FakeUser:
        roles = (self.moderator_role_id,) if moderator else ()
        user = FakeUser(self.snowflake(), username, bot=bot, role_ids=roles)
        self.users[user.id] = user
        return user

    def channel(self, channel_id: int) -> JSON:
        found = self.channels.get(channel_id) or self.dm_channels.get(channel_id)
        if found is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return found

    @property
    def threads(self) -> dict[int, JSON]:
        return {i: c for i, c in self.channels.items() if c["type"] in THREAD_TYPES}

    def role_ids_of(self, user: FakeUser, guild_id: int | None = None) -> tuple[int, ...]:
        """The user's roles in a guild (None: the first): their own there, or the bot's role."""
        guild = self.guild(guild_id)
        if guild.id == self.guild_id:
            return user.role_ids
        return (guild.bot_role_id,) if user.id == self.bot_user.id else ()

    def permissions_of(self, user: FakeUser, guild_id: int | None = None) -> int:
        guild = self.guild(guild_id)
        if user.id == guild.owner_id:
            return Perm.ALL
        value = int(self.roles[guild.id]["permissions"])
        for role_id in self.role_ids_of(user, guild.id):
            value |= int(self.roles[role_id]["permissions"])
        return Perm.ALL if value & Perm.ADMINISTRATOR else value

    @property
    def upload_limit(self) -> int:
        if self.upload_limit_override is not None:
            return self.upload_limit_override
        return TIER_UPLOAD_LIMITS.get(self.premium_tier, 10 * MIB)

    # ------------------------------------------------------------------ reading messages

    def channel_messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[JSON]:
        """Messages in a channel or thread, oldest first."""
        return [
            m
            for m in self.messages.values()
            if int(m["channel_id"]) == channel_id
            and (include_ephemeral or not m["flags"] & MessageFlag.EPHEMERAL)
        ]

    def dm_messages(self, user: FakeUser) -> list[JSON]:
        """What the bot sent ``user`` in DMs, oldest first."""
        return [
            message
            for channel_id, channel in self.dm_channels.items()
            if int(channel["recipients"][0]["id"]) == user.id
            for message in self.channel_messages(channel_id)
        ]

    def interaction_messages(self, interaction_id: int) -> list[JSON]:
        """What the user saw for an interaction: its original response, then follow-ups."""
        interaction = self.interactions[interaction_id]
        ids = [interaction.original_message_id, *interaction.followup_ids]
        return [self.messages[i] for i in ids if i is not None and i in self.messages]

    # ------------------------------------------------------------------ payloads

    def user_payload(self, user: FakeUser) -> JSON:
        return {
            "id": str(user.id),
            "username": user.username,
            "discriminator": "0",
            "global_name": None if user.bot else user.username.title(),
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "bot": user.bot,
        }

    def me_payload(self) -> JSON:
        return self.user_payload(self.bot_user) | {
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "flags": 0,
            "email": None,
        }

    def member_payload(
        self, user: FakeUser, *, with_user: bool = True, guild_id: int | None = None
    ) -> JSON:
        member: JSON = {
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.role_ids_of(user, guild_id)],
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self.user_payload(user)
        return member

    def guild_payload(self, guild_id: int | None = None) -> JSON:
        guild = self.guild(guild_id)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "roles": [self.roles[r] for r in guild.role_ids],
            "emojis": [],
            "stickers": [],
            "features": [],
            "application_id": None,
            "system_channel_id": str(guild.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(self.premium_tier, 0),
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "max_members": 500000,
            "max_video_channel_users": 25,
            "approximate_member_count": len(self.users),
            "approximate_presence_count": 0,
        }

    def guild_channels(self, guild_id: int | None = None) -> list[JSON]:
        """A guild's channels and threads."""
        wanted = str(self.guild(guild_id).id)
        return [c for c in self.channels.values() if c.get("guild_id") == wanted]

    def guild_create_payload(self, guild_id: int | None = None) -> JSON:
        guild = self.guild_payload(guild_id)
        guild.pop("approximate_member_count")
        guild.pop("approximate_presence_count")
        channels = self.guild_channels(guild_id)
        # Like Discord: only active threads; archived ones the bot learns of when it asks.
        threads = [
            c
            for c in channels
            if c["type"] in THREAD_TYPES and not c["thread_metadata"]["archived"]
        ]
        return guild | {
            "joined_at": iso(self.joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(self.users),
            "voice_states": [],
            # Like Discord for bots without the presences intent: only the bot itself; the
            # rest come from GUILD_MEMBERS_CHUNK (op 8), interactions and messages.
            "members": [self.member_payload(self.bot_user, guild_id=guild_id)],
            "channels": [c for c in channels if c["type"] not in THREAD_TYPES],
            "threads": threads,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": "WAN Bot",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(str(self.application_id).encode()).hexdigest(),
            "owner": self.user_payload(self.owner),
            "team": None,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "bot": self.user_payload(self.bot_user),
            "approximate_guild_count": len(self.guilds),
        }


def _role(role_id: int, name: str, permissions: int, position: int) -> JSON:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }
