"""core.sniffing: formats and image sizes from first bytes, and reading them with one ranged GET.

The HTTP side runs against real local servers: the fake Discord's CDN (which honours ``Range``
as Discord's does) and small aiohttp apps for what a CDN may also do (ignore ``Range``, answer
404 or 416, never answer).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import wave
from collections.abc import Awaitable, Callable
from io import BytesIO

import aiohttp
import pytest
from aiohttp import web

from core.attachments import Attachment
from core.sniffing import HEAD_BYTES, Sniffed, Sniffer, identify
from tests.e2e.harness import GIF, MP3, mp4, png
from tests.fakes.discord import FakeDiscord

# ----------------------------------------------------------------------------- samples


def jpeg(width: int, height: int, exif_bytes: int = 0) -> bytes:
    """A JPEG's header: an optional EXIF segment, then the frame header with the size."""
    segments = b""
    while exif_bytes > 0:  # a segment holds at most 65,533 bytes of data
        chunk = min(exif_bytes, 65_533)
        segments += b"\xff\xe1" + struct.pack(">H", chunk + 2) + b"Exif\x00\x00"[:chunk]
        segments += bytes(max(chunk - 6, 0))
        exif_bytes -= chunk
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + (segments + frame + bytes(64) + b"\xff\xd9")
    )


def bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(info), 0, 0, 54) + info


def webp(width: int, height: int) -> bytes:
    """An extended WebP (VP8X): the canvas size minus one, in 24 bits each."""
    payload = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    payload += (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def wav() -> bytes:
    out = BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(bytes(1600))
    return out.getvalue()


def iso_bmff(brand: bytes, compatible: bytes) -> bytes:
    ftyp = b"ftyp" + brand + b"\x00\x00\x02\x00" + compatible
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + struct.pack(">I", 8) + b"mdat"


ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64)
HTML = b"<!DOCTYPE html><html><body>a cat</body></html>"


# ----------------------------------------------------------------------------- identify


@pytest.mark.parametrize(
    ("head", "mime", "size"),
    [
        (png(640, 480), "image/png", (640, 480)),
        (jpeg(1024, 768), "image/jpeg", (1024, 768)),
        (jpeg(300, 9000, exif_bytes=40_000), "image/jpeg", (300, 9000)),  # size after EXIF
        (bmp(800, 600), "image/bmp", (800, 600)),
        (webp(2000, 250), "image/webp", (2000, 250)),
        (GIF, "image/gif", (320, 320)),
        (mp4(), "video/mp4", None),
        (iso_bmff(b"qt  ", b"qt  "), "video/quicktime", None),
        (iso_bmff(b"M4A ", b"M4A mp42isom"), "audio/mp4", None),
        (MP3, "audio/mpeg", None),
        (wav(), "audio/x-wav", None),
        (b"OggS\x00\x02" + bytes(64), "audio/ogg", None),
        (b"fLaC" + bytes(64), "audio/x-flac", None),
        (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm" + bytes(32), "video/webm", None),
        (ZIP, "application/zip", None),
        (b"%PDF-1.7\n", "application/pdf", None),
    ],
)
def test_identify_known_formats(head: bytes, mime: str, size: tuple[int, int] | None) -> None:
    found = identify(head)
    assert found.mime == mime
    assert (found.width, found.height) == (size or (None, None))
    assert not found.empty and found.error is None


@pytest.mark.parametrize("head", [HTML, b"just some words\n", bytes(100)])
def test_identify_unknown_formats(head: bytes) -> None:
    assert identify(head) == Sniffed()


def test_a_signature_without_a_header_is_an_image_of_unknown_size() -> None:
    assert identify(b"\x89PNG\r\n\x1a\n") == Sniffed(mime="image/png")


def test_identify_nothing_is_empty() -> None:
    assert identify(b"") == Sniffed(empty=True)


def test_a_cut_image_header_has_no_size() -> None:
    found = identify(jpeg(640, 480, exif_bytes=70_000)[:HEAD_BYTES])
    assert found.mime == "image/jpeg" and found.width is None


# ----------------------------------------------------------------------------- reading


def attachment(payload: dict[str, object]) -> Attachment:
    return Attachment(
        url=str(payload["url"]),
        filename=str(payload["filename"]),
        content_type=None,
        size=int(str(payload["size"])),
    )


async def test_the_cdn_is_asked_for_the_first_bytes_only(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    big = png(2000, 1500) + bytes(3 * HEAD_BYTES)  # more after the image: still a PNG
    payload = fake.register_file(big, "big.png", "image/png")
    head = await Sniffer(session).read_head(str(payload["url"]))
    assert head == big[:HEAD_BYTES]
    assert fake.cdn_requests[-1][1] == 206
    found = await Sniffer(session).sniff(attachment(payload))
    assert (found.mime, found.width, found.height) == ("image/png", 2000, 1500)


async def test_an_empty_file_on_the_cdn_is_empty(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    payload = fake.register_file(b"", "blank.png", "image/png")
    lying = {**payload, "size": 4096}  # Discord's number says otherwise; the bytes decide
    assert await Sniffer(session).sniff(attachment(lying)) == Sniffed(empty=True)
    assert fake.cdn_requests[-1][1] == 416
    # When Discord itself says 0 bytes, nothing is fetched.
    requests = len(fake.cdn_requests)
    assert await Sniffer(session).sniff(attachment(payload)) == Sniffed(empty=True)
    assert len(fake.cdn_requests) == requests


async def test_a_removed_file_is_unreadable(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    payload = fake.register_file(png(300, 300), "gone.png", "image/png")
    fake.remove_attachment(int(str(payload["id"])))
    found = await Sniffer(session).sniff(attachment(payload))
    assert found == Sniffed(error="HTTP 404")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_server_that_ignores_range_is_read_only_as_far_as_needed(
    session: aiohttp.ClientSession,
) -> None:
    body = png(320, 320) + bytes(4 * HEAD_BYTES)
    seen: list[str | None] = []

    async def whole_file(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Range"))
        return web.Response(body=body, content_type="image/png")

    runner, base = await serve(whole_file)
    try:
        head = await Sniffer(session).read_head(f"{base}/a.png")
    finally:
        await runner.cleanup()
    assert head == body[:HEAD_BYTES]
    assert seen == [f"bytes=0-{HEAD_BYTES - 1}"]


async def test_a_server_that_never_answers_is_unreadable_within_the_timeout(
    session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(body=b"")

    runner, base = await serve(hang)
    try:
        found = await Sniffer(session, timeout=0.2).sniff(
            Attachment(f"{base}/slow.png", "slow.png", "image/png", 1000)
        )
    finally:
        release.set()
        await runner.cleanup()
    assert found == Sniffed(error="no answer within 0.2 s")


async def test_a_refused_connection_is_unreadable(session: aiohttp.ClientSession) -> None:
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/x.png"
        found = await Sniffer(session).sniff(Attachment(url, "x.png", "image/png", 10))
    assert found.error == "the download from 127.0.0.1 failed"


async def test_a_non_http_url_is_not_fetched(session: aiohttp.ClientSession) -> None:
    found = await Sniffer(session).sniff(Attachment("file:///etc/passwd", "p.png", None, 10))
    assert found == Sniffed(error="not at an http(s) URL")


async def test_all_files_are_read_at_once_and_each_url_once(
    session: aiohttp.ClientSession,
) -> None:
    names = [f"f{index}.png" for index in range(11)]  # the most a /video can carry
    arrived: list[str] = []
    everyone = asyncio.Event()

    async def wait_for_all(request: web.Request) -> web.StreamResponse:
        arrived.append(request.match_info["name"])
        if len(arrived) == len(names):
            everyone.set()
        # Read one after another, the first request would wait here until its timeout.
        await everyone.wait()
        return web.Response(body=png(300, 300), content_type="image/png")

    runner, base = await serve(wait_for_all)
    try:
        files = [Attachment(f"{base}/{name}", name, "image/png", 1000) for name in names]
        found = await Sniffer(session).sniff_all([*files, files[0]])
    finally:
        everyone.set()
        await runner.cleanup()
    assert sorted(arrived) == sorted(names)
    assert set(found) == {att.url for att in files}
    assert all(item == Sniffed("image/png", 300, 300) for item in found.values())
