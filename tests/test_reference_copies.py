"""Kept copies of reference files: re-posted once, read back with fresh links, with fallbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import discord
import pytest
from aiohttp import web

from core.media import DownloadedVideo
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester
from discord_side.cdn import ReferencesExpired
from discord_side.reference_copies import (
    MAX_FILES_PER_MESSAGE,
    ReferenceKeeper,
    _batches,
    reference_urls,
)
from tests.discord_mocks import (
    make_attachment,
    make_guild,
    make_message,
    make_text_channel,
    make_thread,
    open_harness,
)

FILES = {"a.png": b"\x89PNG" + b"a" * 500, "b.png": b"\x89PNG" + b"b" * 900, "v.mp3": b"ID3xx"}


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            return web.Response(status=404)
        return web.Response(body=FILES[name], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/f/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/f"
    await runner.cleanup()


async def accepted(harness: Any, base: str, *, big: bool = False) -> Any:
    def att(name: str, ctype: str, size: int | None = None) -> Attachment:
        return Attachment(f"{base}/{name}?ex=1", name, ctype, size or len(FILES[name]), 512, 512)

    refs = [
        ReferenceInput(1, att("a.png", "image/png"), att("v.mp3", "audio/mpeg")),
        # 15 MB on paper: fine for the API, over a 10 MiB server's limit, so never re-posted.
        ReferenceInput(2, att("b.png", "image/png", 15_000_000 if big else None)),
    ]
    built = build_request("Image 1 and Image 2 wave", refs, GenerationOptions())
    return await harness.service.accept(Requester(1, 2, 3), built)


def wire_thread(thread: MagicMock) -> list[list[str]]:
    """Make thread.send record the uploaded file names and return messages holding them."""
    uploads: list[list[str]] = []

    async def send(*args: Any, files: list[discord.File], **kwargs: Any) -> MagicMock:
        names = [file.filename for file in files]
        uploads.append(names)
        attachments = [make_attachment(filename=name) for name in names]
        return make_message(thread, content=args[0] if args else "", attachments=attachments)

    thread.send = AsyncMock(side_effect=send)
    return uploads


async def test_files_are_reposted_once_and_remembered(tmp_path: Path, cdn: str) -> None:
    async with aiohttp.ClientSession() as session, open_harness(tmp_path / "db") as harness:
        harness.bot.session = session
        job = await accepted(harness, cdn)
        thread = make_thread(make_text_channel(make_guild()))
        uploads = wire_thread(thread)
        copies = await ReferenceKeeper(harness.bot).keep(job, thread)
        assert uploads == [["a.png", "v.mp3", "b.png"]]
        assert set(copies) == {"ref:1", "voice:1", "ref:2"}
        assert [copies[key][2] for key in ("ref:1", "voice:1", "ref:2")] == [0, 1, 2]
        stored = await harness.store.get_job(job.id)
        assert stored is not None and stored.reference_copies == copies


async def test_files_over_the_upload_limit_are_left_to_the_refresh(
    tmp_path: Path, cdn: str
) -> None:
    async with aiohttp.ClientSession() as session, open_harness(tmp_path / "db") as harness:
        harness.bot.session = session
        job = await accepted(harness, cdn, big=True)
        thread = make_thread(make_text_channel(make_guild()))
        uploads = wire_thread(thread)
        copies = await ReferenceKeeper(harness.bot).keep(job, thread)
        assert uploads == [["a.png", "v.mp3"]]
        assert "ref:2" not in copies


async def test_fresh_urls_come_from_the_kept_message_then_from_a_refresh(tmp_path: Path) -> None:
    async with open_harness(tmp_path / "db") as harness:
        job = await accepted(harness, "https://cdn.example/f")
        thread = make_thread(make_text_channel(make_guild()))
        kept = make_message(
            thread,
            attachments=[make_attachment(filename="a.png"), make_attachment(filename="v.mp3")],
        )
        thread.fetch_message = AsyncMock(return_value=kept)
        harness.bot.get_channel.side_effect = lambda channel_id: thread
        harness.bot.http = MagicMock()
        harness.bot.http.request = AsyncMock(
            side_effect=lambda route, json: {
                "refreshed_urls": [
                    {"original": u, "refreshed": u + "&new"} for u in json["attachment_urls"]
                ]
            }
        )
        copies = {"ref:1": [thread.id, kept.id, 0], "voice:1": [thread.id, kept.id, 1]}
        copied = replace(job, reference_copies=copies)
        fresh = await ReferenceKeeper(harness.bot).fresh_urls(copied)
        assert fresh["ref:1"] == kept.attachments[0].url
        assert fresh["voice:1"] == kept.attachments[1].url
        assert fresh["ref:2"] == reference_urls(job)["ref:2"] + "&new"  # no copy: refreshed
        # The kept message is gone: everything falls back to the refresh.
        thread.fetch_message = AsyncMock(
            side_effect=discord.NotFound(MagicMock(status=404, reason="x"), "Unknown Message")
        )
        fresh = await ReferenceKeeper(harness.bot).fresh_urls(copied)
        assert all(url.endswith("&new") for url in fresh.values())
        # And when Discord cannot refresh either, the user is told.
        harness.bot.http.request = AsyncMock(return_value={"refreshed_urls": []})
        with pytest.raises(ReferencesExpired):
            await ReferenceKeeper(harness.bot).fresh_urls(copied)


def test_batches_respect_the_file_count_and_the_size_limit(tmp_path: Path) -> None:
    def file(size: int) -> tuple[str, DownloadedVideo]:
        return ("k", DownloadedVideo(tmp_path / "x", size, "image/png", "x.png"))

    sizes = [len(batch) for batch in _batches([file(1) for _ in range(12)], 1000)]
    assert sizes == [MAX_FILES_PER_MESSAGE, 2]
    totals = [sum(f.size for _, f in b) for b in _batches([file(400) for _ in range(5)], 1000)]
    assert totals == [800, 800, 400]
