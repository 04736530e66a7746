"""What a file really is, read from its first bytes: its format and, for an image, its size.

A file's content type and name are what the uploader claims: a ``.png`` may hold a web page or a
ZIP, and every such file would become a paid task that fails. So before anything is spent, the
first :data:`HEAD_BYTES` of each new file are read with one ranged request (the Discord CDN
honours ``Range``), all files at once, each within :data:`SNIFF_TIMEOUT`.

The signature is matched by ``filetype`` (one answer per buffer, for images, video and audio
alike) and an image's width and height are read from its header by ``imagesize``. What is
allowed where is not decided here: :func:`core.references.build_request` judges the results.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import aiohttp
import filetype  # type: ignore[import-untyped]
import imagesize  # type: ignore[import-untyped]
from yarl import URL

from core.attachments import Attachment

log = logging.getLogger(__name__)

# A JPEG's size sits in its frame header, after any EXIF segment (at most 64 KiB).
HEAD_BYTES: Final = 64 * 1024
# Per file, connection included. The member is waiting (the interaction is deferred).
SNIFF_TIMEOUT: Final = 5.0


class Unreadable(Exception):
    """The file's first bytes could not be fetched; the message says why, for the member."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What a file's first bytes say.

    ``mime`` is None when no known signature matches (text, a web page, garbage); ``width`` and
    ``height`` are set only for an image whose header gives them.
    """

    mime: str | None = None
    width: int | None = None
    height: int | None = None
    empty: bool = False
    error: str | None = None  # why it could not be read ("HTTP 404", "no answer within 5 s")


def identify(head: bytes) -> Sniffed:
    """Format and (for images) size from a file's first bytes."""
    if not head:
        return Sniffed(empty=True)
    mime = filetype.guess_mime(head)
    if mime is None or not mime.startswith("image/"):
        return Sniffed(mime=mime)
    width, height = _image_size(head)
    return Sniffed(mime=mime, width=width, height=height)


def _image_size(head: bytes) -> tuple[int | None, int | None]:
    try:
        width, height = imagesize.get(io.BytesIO(head), exif_rotation=False)
    except Exception:  # a malformed header only means the size is unknown
        return None, None
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        return None, None
    return width, height


class Sniffer:
    """Reads the first bytes of attachments through the bot's HTTP session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        head_bytes: int = HEAD_BYTES,
        timeout: float = SNIFF_TIMEOUT,
    ) -> None:
        self.session = session
        self.head_bytes = head_bytes
        self.timeout = timeout

    async def sniff_all(self, attachments: Iterable[Attachment]) -> dict[str, Sniffed]:
        """Every attachment, concurrently; keyed by URL (a file given twice is read once)."""
        unique = {att.url: att for att in attachments}
        results = await asyncio.gather(*(self.sniff(att) for att in unique.values()))
        return dict(zip(unique, results, strict=True))

    async def sniff(self, attachment: Attachment) -> Sniffed:
        if attachment.size == 0:  # Discord says so; nothing to read
            return Sniffed(empty=True)
        try:
            head = await self.read_head(attachment.url)
        except Unreadable as exc:
            log.info("could not read the start of %s: %s", attachment.filename, exc)
            return Sniffed(error=str(exc))
        found = identify(head)
        log.debug("%s: %d bytes read, %s", attachment.filename, len(head), found)
        return found

    async def read_head(self, url: str) -> bytes:
        """Up to :attr:`head_bytes` from the start of ``url``; raises :class:`Unreadable`."""
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise Unreadable("not at an http(s) URL")
        # identity: the range must count the file's own bytes, not a compressed body's.
        headers = {"Range": f"bytes=0-{self.head_bytes - 1}", "Accept-Encoding": "identity"}
        try:
            async with self.session.get(
                url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                max_redirects=3,
            ) as response:
                if response.status == 416:  # no byte 0 to send: the file is empty
                    return b""
                if response.status not in (200, 206):
                    raise Unreadable(f"HTTP {response.status}")
                # A server that ignores Range answers 200 with the whole file: stop early.
                return await _read_up_to(response.content, self.head_bytes)
        except TimeoutError:
            raise Unreadable(f"no answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            # Never the URL itself: its query string is a signature.
            log.debug("reading from %s failed: %s", parsed.host, type(exc).__name__)
            raise Unreadable(f"the download from {parsed.host} failed") from None


async def _read_up_to(stream: aiohttp.StreamReader, limit: int) -> bytes:
    head = bytearray()
    while len(head) < limit:
        chunk = await stream.read(limit - len(head))
        if not chunk:
            break
        head += chunk
    return bytes(head)
