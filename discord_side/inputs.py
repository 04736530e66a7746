"""Discord values become core values: attachments, who asks and where, a reply's files.

Shared by ``/video``, replies, "Make a video", ``/character`` and the buttons; also what the bot
needs in a channel to post a job there (:data:`BOT_PERMISSIONS`, the invite asks for it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import discord

from core.errors import UserError
from core.jobs import Job
from core.references import Attachment, GenerationOptions, ReferenceInput, is_audio, pair_slots
from core.request import SEED_MAX, GenerationRequest
from core.service import Requester
from discord_side.members import role_ids


def to_core_attachment(attachment: discord.Attachment) -> Attachment:
    return Attachment(
        url=attachment.url,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
    )


def requester_of(source: discord.Interaction | discord.Message) -> Requester:
    user = source.user if isinstance(source, discord.Interaction) else source.author
    channel = source.channel
    if source.guild is None or channel is None:
        raise UserError("Videos can only be made in a server.")
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    nsfw_source = channel.parent if isinstance(channel, discord.Thread) else channel
    return Requester(
        guild_id=source.guild.id,
        channel_id=channel.id,
        user_id=user.id,
        role_ids=role_ids(user),
        parent_channel_id=parent_id,
        channel_is_nsfw=bool(getattr(nsfw_source, "nsfw", False)),
        display_name=getattr(user, "display_name", None),
    )


def reply_requester(message: discord.Message, old: Job) -> Requester:
    """Who replies in ``old``'s thread, and where: the thread's channel is the store's word.

    discord.py may not know the thread (archived, or never announced), and the channel's rules
    must hold in its threads all the same.
    """
    who = requester_of(message)
    parent = message.guild.get_channel(old.channel_id) if message.guild else None
    return replace(
        who,
        parent_channel_id=old.channel_id,
        channel_is_nsfw=bool(getattr(parent, "nsfw", False)),
    )


def random_seed() -> int:
    return random.randint(0, SEED_MAX)


# What the bot asks for when invited (the README's permissions integer is this value).
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def missing_permissions(permissions: discord.Permissions, in_thread: bool) -> list[str]:
    """What the bot needs in a channel to run a job there, that it lacks."""
    needed = {
        "Send Messages in Threads" if in_thread else "Send Messages": (
            permissions.send_messages_in_threads if in_thread else permissions.send_messages
        ),
        "Embed Links": permissions.embed_links,
        "Attach Files": permissions.attach_files,
    }
    return [name for name, present in needed.items() if not present]


def options_from(request: GenerationRequest, seed: int | None) -> GenerationOptions:
    return GenerationOptions(
        negative_prompt=request.negative_prompt,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        duration=request.duration,
        seed=seed,
        prompt_extend=request.prompt_extend,
    )


def reply_file_keys(attachments: Sequence[discord.Attachment]) -> list[str]:
    """What each file of a reply becomes: ``ref:N`` (images/videos) or ``voice:N`` (audio)."""
    counts = {"ref": 0, "voice": 0}
    keys = []
    for attachment in attachments:
        kind = "voice" if is_audio(to_core_attachment(attachment)) else "ref"
        counts[kind] += 1
        keys.append(f"{kind}:{counts[kind]}")
    return keys


def split_reply_attachments(
    attachments: Sequence[discord.Attachment],
) -> tuple[list[ReferenceInput], dict[int, Attachment]]:
    """New files on a reply: images/videos become refs 1…n, audio files their voices in order."""
    media: dict[int, Attachment] = {}
    voices: dict[int, Attachment] = {}
    for key, attachment in zip(reply_file_keys(attachments), attachments, strict=True):
        kind, slot = key.split(":")
        (voices if kind == "voice" else media)[int(slot)] = to_core_attachment(attachment)
    return pair_slots(media, voices)


def check_channel_permissions(interaction: discord.Interaction) -> None:
    """Refuse, before anything is spent, a channel where the bot could not post the video."""
    in_thread = isinstance(interaction.channel, discord.Thread)
    missing = missing_permissions(interaction.app_permissions, in_thread)
    if missing:
        raise UserError(
            "I can't post videos in this channel: I need " + ", ".join(missing) + "."
            " Ask a moderator, or try another channel. Nothing was charged."
        )
