"""Streaming result downloads against a local aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.media import (
    CHUNK_SIZE,
    UPLOAD_OVERHEAD_BYTES,
    DownloadedVideo,
    MediaDownloadError,
    MediaTooLarge,
    MediaTypeError,
    download_file,
    download_video,
    largest_upload,
    looks_like_iso_bmff,
)

# A plausible MP4 start: a 24-byte ftyp box (brand isom), then filler spanning several chunks.
MP4 = (24).to_bytes(4, "big") + b"ftypisom" + b"\0" * 12 + bytes(range(256)) * 3000
MOV = (20).to_bytes(4, "big") + b"ftypqt  " + b"\0" * 8 + b"moov" * 100


class Origin:
    """A local result host; counts requests so tests can prove none was made."""

    def __init__(self) -> None:
        self.requests = 0
        self.never = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/video.mp4", self.fixed(MP4, "video/mp4"))
        app.router.add_get("/video.mov", self.fixed(MOV, "video/quicktime"))
        app.router.add_get("/octet", self.fixed(MP4, "application/octet-stream"))
        app.router.add_get("/binary", self.fixed(MP4, "binary/octet-stream"))
        app.router.add_get("/octet-html", self.fixed(b"<html>" * 10, "application/octet-stream"))
        app.router.add_get("/html", self.fixed(b"<html>denied</html>", "text/html"))
        app.router.add_get("/empty", self.fixed(b"", "video/mp4"))
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/truncated", self.truncated)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/stall", self.stall)
        for status in (403, 404, 410, 500):
            app.router.add_get(f"/status/{status}", self.status(status))
        return app

    def fixed(self, body: bytes, content_type: str):
        async def handler(request: web.Request) -> web.Response:
            self.requests += 1
            return web.Response(body=body, headers={"Content-Type": content_type})

        return handler

    def status(self, code: int):
        async def handler(request: web.Request) -> web.Response:
            self.requests += 1
            return web.Response(status=code, text="Access denied")

        return handler

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        """MP4 bytes without Content-Length, as many pieces as ?pieces= says."""
        self.requests += 1
        pieces = int(request.query.get("pieces", "8"))
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        step = -(-len(MP4) // pieces)
        for i in range(0, len(MP4), step):
            await response.write(MP4[i : i + step])
        await response.write_eof()
        return response

    async def truncated(self, request: web.Request) -> web.StreamResponse:
        """Declares more bytes than it sends, then drops the connection."""
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(MP4)
        await response.prepare(request)
        await response.write(MP4[: len(MP4) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    async def stall(self, request: web.Request) -> web.StreamResponse:
        """Sends half of the video, then never the rest."""
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(MP4)
        await response.prepare(request)
        await response.write(MP4[: len(MP4) // 2])
        await self.never.wait()
        return response

    async def slow(self, request: web.Request) -> web.Response:
        self.requests += 1
        await self.never.wait()
        return web.Response(body=MP4, content_type="video/mp4")


@pytest.fixture
def origin() -> Origin:
    return Origin()


@pytest.fixture
async def server(origin: Origin) -> AsyncIterator[TestServer]:
    server = TestServer(origin.app())
    await server.start_server()
    yield server
    await server.close()


async def fetch(
    session: aiohttp.ClientSession,
    server: TestServer,
    path: str,
    tmp_path: Path,
    *,
    max_bytes: int = 10 * len(MP4),
    limit_seconds: float = 10,
    name: str = "job-42",
) -> DownloadedVideo:
    url = str(server.make_url(path))
    return await download_video(
        session,
        url,
        allowed_url=url,
        max_bytes=max_bytes,
        dest_dir=tmp_path,
        timeout=limit_seconds,
        name=name,
    )


def leftovers(tmp_path: Path) -> list[Path]:
    return list(tmp_path.iterdir())


async def test_good_download_writes_the_exact_bytes(session, server, tmp_path) -> None:
    video = await fetch(session, server, "/video.mp4", tmp_path)
    assert video.path.read_bytes() == MP4
    assert video.size == len(MP4) == video.path.stat().st_size
    assert video.content_type == "video/mp4"
    assert video.filename == "job-42.mp4"
    assert video.path.parent == tmp_path


async def test_chunked_download_without_content_length(session, server, tmp_path) -> None:
    video = await fetch(session, server, "/chunked?pieces=40", tmp_path)
    assert video.path.read_bytes() == MP4
    assert video.size == len(MP4)


async def test_quicktime_gets_a_mov_name(session, server, tmp_path) -> None:
    video = await fetch(session, server, "/video.mov", tmp_path)
    assert video.filename == "job-42.mov"
    assert video.path.read_bytes() == MOV


@pytest.mark.parametrize("path", ["/octet", "/binary"])
async def test_octet_stream_with_ftyp_box_is_accepted(session, server, tmp_path, path) -> None:
    video = await fetch(session, server, path, tmp_path)
    assert video.path.read_bytes() == MP4
    assert video.filename.endswith(".mp4")


async def test_too_large_by_content_length(session, server, tmp_path) -> None:
    with pytest.raises(MediaTooLarge) as caught:
        await fetch(session, server, "/video.mp4", tmp_path, max_bytes=len(MP4) - 1)
    assert caught.value.size == len(MP4)
    assert leftovers(tmp_path) == []


async def test_too_large_while_streaming_removes_the_partial_file(
    session, server, tmp_path
) -> None:
    # Pieces much smaller than the limit, so the limit is crossed mid-stream after writes began.
    limit = len(MP4) - CHUNK_SIZE // 4
    with pytest.raises(MediaTooLarge) as caught:
        await fetch(session, server, "/chunked?pieces=64", tmp_path, max_bytes=limit)
    assert caught.value.size > limit
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/html", "/octet-html"])
async def test_non_video_is_refused(session, server, tmp_path, path) -> None:
    with pytest.raises(MediaTypeError):
        await fetch(session, server, path, tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_expired_signed_url(session, server, tmp_path, status) -> None:
    with pytest.raises(MediaDownloadError) as caught:
        await fetch(session, server, f"/status/{status}", tmp_path)
    assert caught.value.status == status
    assert caught.value.expired
    assert leftovers(tmp_path) == []


async def test_server_error_is_not_reported_as_expiry(session, server, tmp_path) -> None:
    with pytest.raises(MediaDownloadError) as caught:
        await fetch(session, server, "/status/500", tmp_path)
    assert caught.value.status == 500
    assert not caught.value.expired


async def test_empty_body_is_an_error(session, server, tmp_path) -> None:
    with pytest.raises(MediaDownloadError):
        await fetch(session, server, "/empty", tmp_path)
    assert leftovers(tmp_path) == []


async def test_truncated_body_is_an_error(session, server, tmp_path) -> None:
    with pytest.raises(MediaDownloadError):
        await fetch(session, server, "/truncated", tmp_path)
    assert leftovers(tmp_path) == []


async def test_timeout_is_a_download_error(session, server, tmp_path) -> None:
    with pytest.raises(MediaDownloadError, match="timed out"):
        await fetch(session, server, "/slow", tmp_path, limit_seconds=0.05)
    assert leftovers(tmp_path) == []


async def test_cancellation_removes_the_partial_file(session, server, tmp_path) -> None:
    # Cancel once the temp file exists and half the body is in (the origin stalls after that).
    task = asyncio.create_task(fetch(session, server, "/stall", tmp_path))
    async with asyncio.timeout(10):  # a safety net: the loop waits for the file
        while not leftovers(tmp_path):
            await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("/video.mp4", "/other.mp4", id="not the API's URL"),
        pytest.param("/video.mp4?token=exp=2~hmac=x", "/video.mp4?token=exp=1~hmac=x", id="query"),
    ],
)
async def test_url_other_than_allowed_is_refused_without_a_request(
    session, server, origin, tmp_path, url, allowed
) -> None:
    with pytest.raises(MediaDownloadError):
        await download_video(
            session,
            str(server.make_url(url)),
            allowed_url=str(server.make_url(allowed)),
            max_bytes=len(MP4) * 2,
            dest_dir=tmp_path,
            timeout=10,
        )
    assert origin.requests == 0
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("url", ["ftp://example.com/v.mp4", "file:///etc/passwd", "/relative"])
async def test_non_http_urls_are_refused(session, origin, tmp_path, url) -> None:
    with pytest.raises(MediaDownloadError):
        await download_video(
            session, url, allowed_url=url, max_bytes=100, dest_dir=tmp_path, timeout=1
        )
    assert origin.requests == 0


async def test_cleanup_and_context_manager_remove_the_file(session, server, tmp_path) -> None:
    video = await fetch(session, server, "/video.mp4", tmp_path)
    async with video as same:
        assert same.path.exists()
    assert not video.path.exists()
    video.cleanup()  # idempotent

    other = await fetch(session, server, "/video.mp4", tmp_path)
    other.cleanup()
    assert leftovers(tmp_path) == []


async def test_unsafe_name_is_sanitised(session, server, tmp_path) -> None:
    video = await fetch(session, server, "/video.mp4", tmp_path, name="../../etc/pass wd")
    assert "/" not in video.filename
    assert video.filename.endswith(".mp4")
    video.cleanup()


def test_sniffing() -> None:
    assert looks_like_iso_bmff(MP4[:12])
    assert looks_like_iso_bmff(MOV[:12])
    assert not looks_like_iso_bmff(b"<html>")
    assert not looks_like_iso_bmff(b"\0\0\0\0ftypisom")  # a zero box size is not a real box


def test_largest_upload_keeps_room_for_multipart() -> None:
    limit = 10 * 1024 * 1024
    assert largest_upload(limit) == limit - UPLOAD_OVERHEAD_BYTES
    assert largest_upload(limit) < limit
    assert largest_upload(UPLOAD_OVERHEAD_BYTES - 1) == 0


async def test_download_file_takes_any_type_under_the_same_size_rules(
    session, server, tmp_path
) -> None:
    url = str(server.make_url("/html"))
    kept = await download_file(
        session, url, max_bytes=1_000_000, filename="notes.html", timeout=10, dest_dir=tmp_path
    )
    assert kept.filename == "notes.html" and kept.size == kept.path.stat().st_size > 0
    kept.cleanup()
    with pytest.raises(MediaTooLarge):
        await download_file(
            session,
            str(server.make_url("/video.mp4")),
            max_bytes=len(MP4) - 1,
            filename="v.mp4",
            timeout=10,
            dest_dir=tmp_path,
        )
    with pytest.raises(MediaDownloadError):
        await download_file(session, "ftp://x/y", max_bytes=10, filename="y", timeout=1)
    assert leftovers(tmp_path) == []
