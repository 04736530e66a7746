"""The character library's queries: limits and unique names enforced in one transaction,
own names before the server's, rename/delete, the server's setting, prompts as written, and the
one-time thread hint. Also the quota advice and job references that remember characters."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from core.character_store import NameTaken, NewCharacter
from core.characters import CharacterLimits, CharacterTag, Scope
from core.errors import Refused
from core.references import Attachment, LabelledReference
from core.request import GenerationRequest
from core.store import AuditRecord, QuotaExceeded, QuotaLimits, Store
from tests.test_store import NOW, make_job

GUILD, ALICE, BOB = 10, 20, 21
LIMITS = CharacterLimits(per_member=3, per_server=2)


def character(
    name: str, *, owner: int = ALICE, scope: Scope = "me", voice: bool = False
) -> NewCharacter:
    media = Attachment(f"https://cdn.example/{name}.png", f"{name}.png", "image/png", 900, 512, 512)
    clip = Attachment("https://cdn.example/v.mp3", "v.mp3", "audio/mpeg", 300) if voice else None
    files = {"media": [1, 2, 0]} | ({"voice": [1, 2, 1]} if voice else {})
    return NewCharacter(GUILD, owner, scope, name, "image", media, clip, files)


async def test_a_saved_character_reads_back_whole(store: Store) -> None:
    saved = await store.save_character(character(" Captain  Fox ", voice=True), LIMITS, NOW)
    assert saved.name == "Captain Fox" and saved.key == "captain fox"
    assert saved.voice is not None and saved.files == {"media": [1, 2, 0], "voice": [1, 2, 1]}
    found = await store.find_character(GUILD, ALICE, "CAPTAIN fox")
    assert found == saved
    assert await store.find_character(GUILD, BOB, "captain fox") is None  # not Bob's
    assert await store.characters_by_id([saved.id, 999]) == {saved.id: saved}


async def test_names_are_unique_per_owner_and_per_server_whatever_the_case(store: Store) -> None:
    await store.save_character(character("fox"), LIMITS, NOW)
    with pytest.raises(NameTaken, match="You already have a character named"):
        await store.save_character(character("FOX"), LIMITS, NOW)
    await store.save_character(character("fox", owner=BOB), LIMITS, NOW)  # Bob's own fox
    await store.save_character(character("Fox", scope="server"), LIMITS, NOW)
    with pytest.raises(NameTaken, match="This server already has"):
        await store.save_character(character("fox", owner=BOB, scope="server"), LIMITS, NOW)


async def test_own_characters_come_before_and_hide_the_servers(store: Store) -> None:
    server = await store.save_character(character("fox", scope="server"), LIMITS, NOW)
    own = await store.save_character(character("fox"), LIMITS, NOW)
    await store.save_character(character("ant"), LIMITS, NOW)
    assert (await store.find_character(GUILD, ALICE, "fox")) == own
    assert (await store.find_character(GUILD, BOB, "fox")) == server
    listed = await store.characters_for(GUILD, ALICE)
    assert [(c.name, c.scope) for c in listed] == [("ant", "me"), ("fox", "me"), ("fox", "server")]
    assert [c.name for c in await store.characters_for(GUILD, BOB)] == ["fox"]


async def test_limits_are_checked_with_the_insert(store: Store) -> None:
    for name in ("a", "b", "c"):
        await store.save_character(character(name), LIMITS, NOW)
    with pytest.raises(Refused, match=r"most a member may keep \(3\)"):
        await store.save_character(character("d"), LIMITS, NOW)
    await store.save_character(character("d", owner=BOB), LIMITS, NOW)  # Bob has his own
    # Server characters count apart from a member's own.
    await store.save_character(character("s1", scope="server"), LIMITS, NOW)
    await store.save_character(character("s2", scope="server"), LIMITS, NOW)
    with pytest.raises(Refused, match=r"server characters, the most allowed \(2\)"):
        await store.save_character(character("s3", owner=BOB, scope="server"), LIMITS, NOW)
    assert await store.count_characters(GUILD, ALICE, "me") == 3
    assert await store.count_characters(GUILD, BOB, "server") == 2


async def test_concurrent_saves_never_pass_the_limit_or_share_a_name(store: Store) -> None:
    async def attempt(name: str) -> bool:
        try:
            await store.save_character(character(name), LIMITS, NOW)
        except Refused:
            return False
        return True

    results = await asyncio.gather(*(attempt(f"n{i % 5}") for i in range(20)))
    assert sum(results) == 3
    assert len({c.key for c in await store.characters_for(GUILD, ALICE)}) == 3


async def test_rename_and_delete(store: Store) -> None:
    fox = await store.save_character(character("fox"), LIMITS, NOW)
    await store.save_character(character("cat"), LIMITS, NOW)
    with pytest.raises(NameTaken):
        await store.rename_character(fox, "CAT", NOW)
    renamed = await store.rename_character(fox, " Red  Fox", NOW)
    assert renamed.name == "Red Fox" and renamed.id == fox.id
    assert (await store.find_character(GUILD, ALICE, "red fox")) == renamed
    assert await store.find_character(GUILD, ALICE, "fox") is None
    assert await store.delete_character(fox.id, NOW)
    assert not await store.delete_character(fox.id, NOW)
    with pytest.raises(Refused, match="no longer exists"):
        await store.rename_character(fox, "Ghost", NOW)


async def test_server_changes_go_in_the_audit_with_the_change(store: Store) -> None:
    audit = AuditRecord(GUILD, ALICE, "character.save", "mascot", None, {"kind": "image"})
    saved = await store.save_character(character("mascot", scope="server"), LIMITS, NOW, audit)
    await store.delete_character(
        saved.id, NOW, AuditRecord(GUILD, BOB, "character.delete", "mascot", {"id": saved.id})
    )
    await store.set_character_editor_role(
        GUILD, 55, NOW, AuditRecord(GUILD, BOB, "character.server-role", None, None, 55)
    )
    assert await store.character_editor_role(GUILD) == 55
    await store.set_character_editor_role(GUILD, None, NOW)
    assert await store.character_editor_role(GUILD) is None
    actions = [entry.action for entry in await store.audit_entries(GUILD)]
    assert actions == ["character.server-role", "character.delete", "character.save"]
    # A refused save writes no audit row.
    await store.save_character(character("x", scope="server"), LIMITS, NOW)
    with pytest.raises(NameTaken):
        await store.save_character(character("X", scope="server"), LIMITS, NOW, audit)
    assert len(await store.audit_entries(GUILD)) == 3


async def test_library_thread_written_prompt_and_thread_hint(store: Store) -> None:
    assert await store.library_channel(GUILD) is None
    await store.set_library_channel(GUILD, 77, NOW)
    await store.set_library_channel(GUILD, 78, NOW)  # a new thread when the old one was deleted
    assert await store.library_channel(GUILD) == 78
    job = await store.create_job(make_job(), QuotaLimits(60, 2), NOW)
    assert await store.written_prompt(job.id) is None
    await store.save_written_prompt(job.id, "{fox} waves")
    assert await store.written_prompt(job.id) == "{fox} waves"
    assert await store.mark_thread_hinted(5, NOW)
    assert not await store.mark_thread_hinted(5, NOW + 1)


async def test_a_jobs_references_remember_their_characters(store: Store) -> None:
    base = make_job()
    tagged = LabelledReference(
        1, "image", 1, base.references[0].media, None, CharacterTag(3, "fox")
    )
    job = await store.create_job(replace(base, references=(tagged,)), QuotaLimits(60, 2), NOW)
    stored = await store.get_job(job.id)
    assert stored is not None and stored.references[0].character == CharacterTag(3, "fox")
    assert "character" not in base.references[0].to_json()  # plain ones are stored as before


async def test_the_quota_advice_only_suggests_what_costs_less(store: Store) -> None:
    def advice(duration: int, resolution: str, cost: int, remaining: int) -> str:
        request = GenerationRequest(prompt="x", duration=duration, resolution=resolution)
        return QuotaExceeded(cost, remaining, request).message

    flat = advice(8, "1080P", 8, 5)  # 1080P costs the same as 720P here
    assert "720P" not in flat and "a shorter duration" in flat
    dearer = advice(8, "1080P", 16, 5)  # ×2 at 1080P
    assert "720P (it costs 8 s)" in dearer
    assert "a shorter duration" in dearer  # 2 s at ×2 costs 4, which fits
    assert "720P" not in advice(8, "720P", 8, 5)
    assert advice(5, "720P", 5, 1) == (
        "This video costs 5 s of your daily quota but you have 1 s left today."
        " Wait for the daily reset (00:00 UTC)."
    )
    assert "shorter" not in advice(2, "1080P", 4, 3)  # already the shortest
