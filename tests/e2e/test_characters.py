"""The character library as members use it: save characters, use them by name in /video,
reroll after Discord dropped the original files, delete one and reroll again; "Make a video" on
a message; and the words members read (hints, every problem at once). One bot serves the module.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import GIF, Reply, World, png
from tests.fakes.discord import FakeUser, MessageFlag, iter_components

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

DAY = 24 * 3600


def library_messages(world: World) -> list[dict[str, Any]]:
    """The bot's messages in the server's character library thread."""
    threads = [
        thread_id
        for thread_id, thread in world.discord.threads.items()
        if thread["name"] == "🎭 Character library"
    ]
    assert len(threads) <= 1, "one library thread per server"
    return [
        message
        for thread_id in threads
        for message in world.discord.channel_messages(thread_id)
        if message["attachments"]
    ]


async def save(world: World, user: FakeUser, name: str, ref: Any, **options: Any) -> Reply:
    return await world.command("character save", {"name": name, "ref": ref, **options}, user=user)


def urls(body: dict[str, Any], key: str) -> list[str]:
    return [item["url"] for item in body.get(key, [])]


async def test_a_cast_saved_once_is_used_by_name_and_rerolled_after_the_files_expired(
    world: World,
) -> None:
    mika = world.new_user("mika")
    saved_a = await save(world, mika, "Aster", world.image("aster.png"), voice=world.voice())
    saved_b = await save(world, mika, "bram", world.image("bram.png", 640, 360))
    assert saved_a.ephemeral and "Saved {Aster}" in saved_a.text
    assert "Saved {bram}" in saved_b.text
    kept = library_messages(world)
    assert [m["attachments"][0]["filename"] for m in kept] == ["aster.png", "bram.png"]
    assert [a["filename"] for a in kept[0]["attachments"]] == ["aster.png", "riff.mp3"]
    assert world.ledger(mika) == []  # saving costs nothing

    listed = await world.command("character list", user=mika)
    assert "{Aster}" in listed.text and "{bram}" in listed.text
    thumbnails = [embed.get("thumbnail", {}).get("url", "") for embed in listed.message["embeds"]]
    assert all("/attachments/" in url for url in thumbnails), thumbnails

    guitar = world.image("guitar.png")
    reply = await world.command(
        "video",
        {
            "prompt": "{aster} hands Image 1 to {Bram} under a tree",
            "characters": "aster, bram",
            "ref1": guitar,
        },
        user=mika,
    )

    job_id = reply.job_id
    assert "{Aster} → Image 2 (aster.png, voice: riff.mp3)" in reply.text
    assert "{bram} → Image 3 (bram.png)" in reply.text
    assert "ref 1 → Image 1 (guitar.png)" in reply.text
    body = (await world.until(lambda: world.creates_for("under a tree"), what="a create"))[0]
    assert body["prompt"] == "Image 2 hands Image 1 to Image 3 under a tree"
    library = [kept[0]["attachments"][0], kept[1]["attachments"][0]]
    assert urls(body, "image_urls")[0] == guitar["url"]
    for url, copy in zip(urls(body, "image_urls")[1:], library, strict=True):
        assert f"/{copy['id']}/" in url and "ephemeral" not in url  # the library's copies
    assert body["image_urls"][1]["reference_voice"].split("?")[0].endswith("/riff.mp3")
    job = await world.wait_state(job_id, "delivered")
    written = world.rows("SELECT prompt FROM job_prompts WHERE job_id = ?", job_id)
    assert written[0]["prompt"] == "{aster} hands Image 1 to {Bram} under a tree"
    await world.until(lambda: "ref:1" in world.job(job_id)["reference_copies_json"], what="copy")

    # A day later Discord has dropped the slash command's files and every old link expired.
    world.discord.expire_ephemeral_attachments()
    world.discord.advance_clock(DAY + 60)
    delivery = world.deliveries(job_id)[0]
    rerolled = await world.click(delivery, f"wan:reroll:{job_id}", mika)

    again = await world.wait_state(rerolled.job_id, "delivered")
    second = world.creates_for("under a tree")[1]
    assert second["prompt"] == body["prompt"]
    # Fresh links: the guitar from its copy in the video's thread, the cast from the library.
    library_thread = int(kept[0]["channel_id"])
    guitar_url, *cast_urls = urls(second, "image_urls")
    assert f"/{job['thread_id']}/" in guitar_url and guitar_url.split("?")[0].endswith("guitar.png")
    assert all(f"/{library_thread}/" in url for url in cast_urls) and len(cast_urls) == 2
    assert not set(urls(second, "image_urls")) & set(urls(body, "image_urls"))
    assert again["reference_copies_json"] == world.job(job_id)["reference_copies_json"]

    # A reply with new files replaces the attached ref; the characters stay, after the new
    # files, and the kept prompt follows them to their new labels.
    thread_id = job["thread_id"]
    drum, bass = (
        world.discord.register_file(
            png(400, 400), name, "image/png", ephemeral=False, channel_id=thread_id
        )
        for name in ("drum.png", "bass.png")
    )
    await world.discord.post_message(
        thread_id, world.discord.bot_user.mention, author=mika, attachments=[drum, bass]
    )
    third = (await world.until(lambda: world.creates_for("under a tree")[2:], what="a create"))[0]
    assert third["prompt"] == "Image 3 hands Image 1 to Image 4 under a tree"
    assert [url.split("?")[0] for url in urls(third, "image_urls")[:2]] == [
        drum["url"].split("?")[0],
        bass["url"].split("?")[0],
    ]
    assert all(f"/{library_thread}/" in url for url in urls(third, "image_urls")[2:])
    assert third["image_urls"][2]["reference_voice"].split("?")[0].endswith("/riff.mp3")
    [replied] = [row for row in world.jobs_of(mika) if row["origin"] == "reply"]
    await world.wait_state(replied["id"], "delivered")

    # The member deletes one character: a reroll says so, and costs nothing.
    deleted = await world.command("character delete", {"name": "Aster"}, user=mika)
    assert "Deleted {Aster}" in deleted.text
    assert int(kept[0]["id"]) in world.discord.deleted_messages
    ledger = world.ledger(mika)
    refused = await world.click(delivery, f"wan:reroll:{job_id}", mika)
    assert refused.ephemeral
    assert "{Aster}" in refused.text and "deleted" in refused.text
    assert world.ledger(mika) == ledger
    assert len(world.creates_for("under a tree")) == 3


async def test_make_a_video_from_a_message_with_two_images(world: World) -> None:
    poster, maker = world.new_user("poster"), world.new_user("maker")
    channel = world.discord.channel_id
    fox = world.discord.register_file(png(400, 400), "fox.png", "image/png", ephemeral=False)
    owl = world.discord.register_file(png(300, 500), "owl.png", "image/png", ephemeral=False)
    posted = await world.discord.post_message(
        channel, "look at these two", author=poster, attachments=[fox, owl]
    )

    opened = await world.discord.dispatch_message_command("Make a video", posted, user=maker)
    modal = await world.until(lambda: world.discord.modal_of(opened), what="the modal")
    assert modal["title"] == "Make a video"
    submitted = await world.discord.submit_modal(
        opened, {"prompt": "Image 1 and Image 2 share a tea party", "duration": "4"}
    )
    reply = await world.until(lambda: world.answer_of(submitted), what="the acceptance")

    assert reply.ephemeral, reply.text
    assert "ref 1 → Image 1 (fox.png)" in reply.text and "ref 2 → Image 2 (owl.png)" in reply.text
    body = (await world.until(lambda: world.creates_for("tea party"), what="a create"))[0]
    assert [url.split("?")[0] for url in urls(body, "image_urls")] == [
        fox["url"].split("?")[0],
        owl["url"].split("?")[0],
    ]
    assert body["duration"] == 4
    job = await world.wait_state(reply.job_id, "delivered")
    assert job["user_id"] == maker.id and job["origin"] == "command"
    # The files stay on the member's message: that is their lasting copy.
    assert job["reference_copies_json"] == (
        f'{{"ref:1": [{channel}, {posted["id"]}, 0], "ref:2": [{channel}, {posted["id"]}, 1]}}'
    )
    assert world.ledger(maker) == [("reserve", 4), ("commit", 0)]


async def test_the_menu_on_a_message_without_pictures_says_so(world: World) -> None:
    posted = await world.discord.post_message(world.discord.channel_id, "just words")
    opened = await world.discord.dispatch_message_command("Make a video", posted)
    reply = await world.until(lambda: world.answer_of(opened), what="an answer")
    assert reply.ephemeral and "no images or videos" in reply.text
    assert world.discord.modal_of(opened) is None


async def test_a_bad_save_lists_every_problem_and_keeps_nothing(world: World) -> None:
    member = world.new_user("careless")
    before = len(library_messages(world))
    reply = await save(
        world,
        member,
        "Image 2",
        world.file(GIF, "dance.gif", "image/gif"),
        voice=world.image("not-a-voice.png"),
        scope="server",
    )
    assert reply.ephemeral
    assert "looks like a label" in reply.text
    assert "is a GIF" in reply.text and "voice clip" in reply.text
    assert "Nothing was saved" in reply.text
    assert len(library_messages(world)) == before

    refused = await save(world, member, "Mascot", world.image(), scope="server")
    assert "Only moderators" in refused.text
    assert len(library_messages(world)) == before


async def test_characters_autocomplete_from_the_members_and_the_servers_library(
    world: World,
) -> None:
    member = world.new_user("picker")
    await save(world, member, "Comet", world.image("comet.png"))
    await save(world, world.discord.moderator, "Cosmo", world.image("cosmo.png"), scope="server")
    asked = await world.discord.dispatch_autocomplete(
        "video", "characters", {"prompt": "x", "characters": "comet, co"}, user=member
    )
    interaction = world.discord.interactions[asked]
    await world.until(lambda: interaction.response_type == 8, what="suggestions")
    assert interaction.response_data is not None
    values = [choice["value"] for choice in interaction.response_data["choices"]]
    assert values == ["comet, Cosmo"]
    names = [choice["name"] for choice in interaction.response_data["choices"]]
    assert names == ["comet, Cosmo (server)"]


async def test_a_video_thread_gives_one_hint_to_messages_that_do_not_mention_the_bot(
    world: World,
) -> None:
    member = world.new_user("chatty")
    reply = await world.command(
        "video", {"prompt": "Image 1 waves", "ref1": world.image()}, user=member
    )
    job = await world.wait_state(reply.job_id, "delivered")
    thread_id = job["thread_id"]

    def hints() -> list[dict[str, Any]]:
        return [
            m
            for m in world.discord.channel_messages(thread_id)
            if int(m["author"]["id"]) == world.discord.bot_user.id and "💡" in m["content"]
        ]

    first = await world.discord.post_message(thread_id, "wow, again?", author=member)
    [hint] = await world.until(hints, what="the hint")
    assert hint["message_reference"]["message_id"] == first["id"]
    assert world.discord.bot_user.mention in hint["content"]
    assert hint["flags"] & MessageFlag.SUPPRESS_NOTIFICATIONS
    await world.discord.post_message(thread_id, "hello?", author=member)
    # The bot answers a mention in order; once it has, the second plain message was seen too.
    await world.discord.post_message(
        thread_id, f"{world.discord.bot_user.mention} --duration 99", author=member
    )
    # Its refusal is private (a DM), but it is answered in order after the plain message.
    await world.until(
        lambda: any("duration 99" in m["content"] for m in world.discord.dm_messages(member)),
        what="the answer to the mention",
    )
    assert len(hints()) == 1


async def test_a_reply_reports_its_flags_labels_and_files_all_at_once(world: World) -> None:
    member = world.new_user("hasty")
    reply = await world.command(
        "video", {"prompt": "Image 1 naps", "ref1": world.image()}, user=member
    )
    job = await world.wait_state(reply.job_id, "delivered")
    thread_id = job["thread_id"]
    gif = world.discord.register_file(
        GIF, "loop.gif", "image/gif", ephemeral=False, channel_id=thread_id
    )
    posted = await world.discord.post_message(
        thread_id,
        f"{world.discord.bot_user.mention} Image 3 jumps --dur 99 --colour red",
        author=member,
        attachments=[gif],
    )

    def answer() -> dict[str, Any] | None:
        # Refusals of a reply are private: a DM that links the message it is about.
        return next(
            (m for m in world.discord.dm_messages(member) if posted["id"] in m["content"]),
            None,
        )

    text = (await world.until(answer, what="the answer"))["content"]
    assert "duration 99" in text and "unknown flag --colour" in text
    assert "is a GIF" in text
    assert len(world.jobs_of(member)) == 1


async def test_who_may_save_and_change_server_characters(world: World) -> None:
    member, other = world.new_user("maker"), world.new_user("other")
    moderator = world.discord.moderator
    audited = len(world.rows("SELECT id FROM audit_log"))
    refused = await save(world, member, "Mascot", world.image("mascot.png"), scope="server")
    assert "Only moderators" in refused.text

    everyone = world.discord.guild_id  # the @everyone role shares the server's id
    set_role = await world.command("character server-role", {"role": everyone}, user=moderator)
    assert "can now save server characters" in set_role.text
    not_mod = await world.command("character server-role", {}, user=member)
    assert "Only moderators" in not_mod.text
    saved = await save(world, member, "Mascot", world.image("mascot.png"), scope="server")
    assert "Saved {Mascot}" in saved.text and "for everyone in this server" in saved.text

    asked = await world.discord.dispatch_autocomplete(
        "character delete", "name", {"name": "masc"}, user=other
    )
    interaction = world.discord.interactions[asked]
    await world.until(lambda: interaction.response_type == 8, what="suggestions")
    assert interaction.response_data is not None
    assert [c["value"] for c in interaction.response_data["choices"]] == ["Mascot"]

    denied = await world.command("character delete", {"name": "mascot"}, user=other)
    assert f"Only <@{member.id}>" in denied.text
    renamed = await world.command(
        "character rename", {"name": "mascot", "new_name": "Old Mascot"}, user=moderator
    )
    assert "{Mascot} is now {Old Mascot}" in renamed.text
    await world.until(
        lambda: any("🎭 {Old Mascot} · saved by" in m["content"] for m in library_messages(world)),
        what="the library message to show the new name",
    )
    shown = await world.command("character show", {"name": "old mascot"}, user=other)
    assert shown.message["embeds"][0]["title"] == "{Old Mascot}"
    assert "/attachments/" in shown.message["embeds"][0]["image"]["url"]
    gone = await world.command("character delete", {"name": "Old Mascot"}, user=moderator)
    assert "Deleted {Old Mascot}" in gone.text
    await world.command("character server-role", {}, user=moderator)  # moderators only again

    actions = [row["action"] for row in world.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions[audited:] == [
        "character.server-role",
        "character.save",
        "character.rename",
        "character.delete",
        "character.server-role",
    ]


async def test_a_make_a_video_form_opened_before_a_restart_still_works(world: World) -> None:
    member = world.new_user("patient")
    lynx = world.discord.register_file(png(320, 320), "lynx.png", "image/png", ephemeral=False)
    posted = await world.discord.post_message(
        world.discord.channel_id, "our lynx", author=member, attachments=[lynx]
    )
    opened = await world.discord.dispatch_message_command("Make a video", posted, user=member)
    modal = await world.until(lambda: world.discord.modal_of(opened), what="the modal")
    inputs = {c["custom_id"]: c for c in iter_components(modal["components"]) if c["type"] == 4}
    assert list(inputs) == ["prompt", "characters", "duration", "aspect_ratio"]
    assert inputs["prompt"]["required"] and not inputs["duration"]["required"]

    assert await world.stop_bot() == 0
    await world.start_bot()
    submitted = await world.discord.submit_modal(
        opened, {"prompt": "Image 1 prowls at dawn", "aspect_ratio": "9x16", "duration": "3s"}
    )

    reply = await world.until(lambda: world.answer_of(submitted), what="the acceptance")
    job = await world.wait_state(reply.job_id, "delivered")
    body = world.creates_for("prowls at dawn")[0]
    assert (body["aspect_ratio"], body["duration"]) == ("9:16", 3)
    assert job["user_id"] == member.id


async def test_a_character_whose_library_message_was_deleted_is_explained(world: World) -> None:
    member = world.new_user("unlucky")
    await save(world, member, "Ghost", world.image("ghost.png"))
    [kept] = [m for m in library_messages(world) if "{Ghost}" in m["content"]]
    message_id = int(kept["id"])
    world.discord.deleted_messages[message_id] = world.discord.messages.pop(message_id)
    world.discord.remove_attachment(int(kept["attachments"][0]["id"]))

    reply = await world.command(
        "video", {"prompt": "{ghost} floats", "characters": "ghost"}, user=member
    )
    assert reply.ephemeral and "Accepted" not in reply.text
    assert "the file of {Ghost} is no longer on Discord" in reply.text
    assert "/character delete it and save it again" in reply.text
    assert world.ledger(member) == [] and world.creates_for("floats") == []
    shown = await world.command("character show", {"name": "ghost"}, user=member)
    assert "File missing" in shown.text


async def test_a_banned_member_cannot_save_characters(world: World) -> None:
    member = world.new_user("banned")
    await world.command(
        "admin ban", {"user": member, "reason": "spam"}, user=world.discord.moderator
    )
    before = len(library_messages(world))
    refused = await save(world, member, "Sneaky", world.image("sneaky.png"))
    assert refused.ephemeral and "not allowed to make videos" in refused.text
    assert len(library_messages(world)) == before
    assert world.rows("SELECT id FROM characters WHERE owner_id = ?", member.id) == []


async def test_the_gallery_pages_through_a_members_characters(world: World) -> None:
    member, stranger = world.new_user("collector"), world.new_user("stranger")
    for number in range(6):
        saved = await save(world, member, f"Pal {number}", world.image(f"pal{number}.png"))
        assert "Saved" in saved.text, saved.text

    first = await world.command("character list", {"scope": "me"}, user=member)
    embeds = first.message["embeds"]
    assert [embed["title"] for embed in embeds] == [f"{{Pal {n}}}" for n in range(5)]
    assert embeds[-1]["footer"]["text"] == "Page 1/2 · 6 character(s)"
    assert all(embed["thumbnail"]["url"] for embed in embeds)
    refused = await world.click(first.message, _button(first.message, "Next ▶"), stranger)
    assert "Only the member who ran /character list" in refused.text

    await world.click(first.message, _button(first.message, "Next ▶"), member)
    await world.until(
        lambda: "Page 2/2" in str(world.discord.message(int(first.message["id"]))["embeds"]),
        what="the second page",
    )
    shown = world.discord.message(int(first.message["id"]))["embeds"]
    assert [embed["title"] for embed in shown] == ["{Pal 5}"]


def _button(message: dict[str, Any], label: str) -> str:
    found = [c for c in iter_components(message["components"]) if c.get("label") == label]
    return str(found[0]["custom_id"])


SPOOF = b"<!DOCTYPE html>\n<html><body>not a picture</body></html>\n"


async def test_a_spoofed_file_is_refused_by_save_and_by_make_a_video(world: World) -> None:
    member = world.new_user("spoofer")
    before = len(library_messages(world))
    saved = await save(world, member, "Fake", world.file(SPOOF, "fake.png", "image/png"))
    assert saved.ephemeral and "its contents are not" in saved.text, saved.text
    assert len(library_messages(world)) == before

    fake = world.discord.register_file(SPOOF, "fake.png", "image/png", ephemeral=False)
    posted = await world.discord.post_message(
        world.discord.channel_id, "a picture?", author=member, attachments=[fake]
    )
    opened = await world.discord.dispatch_message_command("Make a video", posted, user=member)
    await world.until(lambda: world.discord.modal_of(opened), what="the modal")
    submitted = await world.discord.submit_modal(opened, {"prompt": "Image 1 waves"})
    reply = await world.until(lambda: world.answer_of(submitted), what="the refusal")
    assert reply.ephemeral and "its contents are not" in reply.text, reply.text
    assert world.jobs_of(member) == [] and world.ledger(member) == []
