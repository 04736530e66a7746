"""Streaming download of a result video to a temporary file, with size and type checks.

The body goes straight to disk in bounded chunks; it is never held in memory whole. Writes run in
a worker thread (``asyncio.to_thread``) in batches of ``CHUNK_SIZE``: one thread hop per 256 KiB is
negligible next to the network, and a slow or busy disk can then never stall the event loop (and
with it the Discord gateway heartbeat).
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024
# Room for the multipart envelope around an upload (boundaries, part headers, payload_json).
UPLOAD_OVERHEAD_BYTES = 64 * 1024
DIRECT_VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime"})
# Generic types some storage services send: accepted only when the bytes look like MP4/MOV.
SNIFFED_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
_SNIFF_LEN = 12  # box size (4) + "ftyp" (4) + major brand (4)
# Signed result URLs answer one of these once they have expired.
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class MediaError(Exception):
    """Base of every download failure."""


class MediaTooLarge(MediaError):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"video is larger than {limit} bytes (at least {size})")


class MediaTypeError(MediaError):
    """The response is not an MP4/MOV video."""


class MediaDownloadError(MediaError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)

    @property
    def expired(self) -> bool:
        """True when a signed URL was most likely refused because it expired."""
        return self.status in _EXPIRED_STATUSES


@dataclass(frozen=True, slots=True)
class DownloadedVideo:
    """A downloaded video in a temporary file that its owner must :meth:`cleanup`."""

    path: Path
    size: int
    content_type: str
    filename: str  # the name to show on upload, not the temp file's name

    def cleanup(self) -> None:
        """Delete the temporary file (idempotent)."""
        self.path.unlink(missing_ok=True)

    async def __aenter__(self) -> DownloadedVideo:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def largest_upload(limit: int) -> int:
    """The largest file that fits an upload limit once wrapped in a multipart request."""
    return max(limit - UPLOAD_OVERHEAD_BYTES, 0)


def looks_like_iso_bmff(head: bytes) -> bool:
    """MP4 and modern MOV files start with an ``ftyp`` box: 4 size bytes, then ``ftyp``."""
    return len(head) >= 8 and head[4:8] == b"ftyp" and int.from_bytes(head[:4], "big") >= 8


def _display_name(stem: str, content_type: str, head: bytes) -> str:
    quicktime = content_type == "video/quicktime" or head[8:12] == b"qt  "
    safe_stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip("._")[:80] or "video"
    return safe_stem + (".mov" if quicktime else ".mp4")


def _check_url(url: str, allowed_url: str) -> None:
    # Only the URL the API returned is fetched: anything else could point the bot at any host.
    if url != allowed_url:
        raise MediaDownloadError("refusing a URL the API did not return")
    _check_http(url)


def _check_http(url: str) -> None:
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise MediaDownloadError("refusing a non-http(s) URL")


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    *,
    allowed_url: str,
    max_bytes: int,
    dest_dir: Path | None = None,
    timeout: float,  # noqa: ASYNC109 - the contract asks for it; becomes aiohttp's total timeout
    name: str = "video",
) -> DownloadedVideo:
    """Stream ``url`` into a temporary file in ``dest_dir`` (default: the system temp dir).

    ``name`` is the stem of the display filename (e.g. the job id). Raises :class:`MediaTooLarge`,
    :class:`MediaTypeError` or :class:`MediaDownloadError`; no file is left behind on failure.
    """
    _check_url(url, allowed_url)
    return await _fetch(session, url, max_bytes, dest_dir, timeout, name, video=True)


async def download_file(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    filename: str,
    timeout: float,  # noqa: ASYNC109 - becomes aiohttp's total timeout
    dest_dir: Path | None = None,
) -> DownloadedVideo:
    """Stream any file (a reference to re-post) to a temporary file, under the same size rules.

    ``filename`` is kept as the display name. Raises :class:`MediaTooLarge` or
    :class:`MediaDownloadError`; no file is left behind on failure.
    """
    _check_http(url)
    return await _fetch(session, url, max_bytes, dest_dir, timeout, filename, video=False)


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    max_bytes: int,
    dest_dir: Path | None,
    timeout: float,  # noqa: ASYNC109 - becomes aiohttp's total timeout
    name: str,
    *,
    video: bool,
) -> DownloadedVideo:
    # Never log the URL itself: its query string is a signature.
    where = URL(url).host
    try:
        # Redirects are followed (a CDN may sign-and-redirect); aiohttp follows only http(s).
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), max_redirects=5
        ) as response:
            return await _save(
                response, max_bytes=max_bytes, dest_dir=dest_dir, name=name, video=video
            )
    except TimeoutError as exc:
        raise MediaDownloadError(f"download from {where} timed out after {timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise MediaDownloadError(
            f"download from {where} failed: {type(exc).__name__}",
            status=getattr(exc, "status", None),
        ) from exc


async def _save(
    response: aiohttp.ClientResponse,
    *,
    max_bytes: int,
    dest_dir: Path | None,
    name: str,
    video: bool,
) -> DownloadedVideo:
    if response.status != 200:
        raise MediaDownloadError(
            f"download answered HTTP {response.status}", status=response.status
        )
    content_type = response.content_type  # aiohttp: lower-case, no parameters
    if video and content_type not in DIRECT_VIDEO_TYPES and content_type not in SNIFFED_TYPES:
        raise MediaTypeError(f"not a video: {content_type}")
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise MediaTooLarge(declared, max_bytes)

    # Opened and (on failure) removed synchronously: both are quick syscalls, and doing them in a
    # thread would let a cancellation land between "created" and "known", leaking the file.
    file = _open_temp(dest_dir)
    path = Path(file.name)
    try:
        sniff = video and content_type in SNIFFED_TYPES
        size, head = await _stream(response, file, max_bytes, sniff=sniff)
        await asyncio.to_thread(file.close)
    except BaseException:
        # Includes cancellation: a partial file must never outlive the download.
        _close_and_delete(file, path)
        raise
    shown = _display_name(name, content_type, head) if video else name
    log.debug("downloaded %d bytes (%s) to %s", size, content_type, path)
    return DownloadedVideo(path, size, content_type, shown)


async def _stream(
    response: aiohttp.ClientResponse, file: IO[bytes], max_bytes: int, *, sniff: bool
) -> tuple[int, bytes]:
    """Copy the body to ``file``; returns its size and first bytes.

    With ``sniff``, the body must start like an MP4/MOV file: checked as soon as the first bytes
    are in, so a large non-video is refused without downloading it.
    """
    size = 0
    head = b""
    pending = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLarge(size, max_bytes)
        if len(head) < _SNIFF_LEN:
            head += chunk[: _SNIFF_LEN - len(head)]
            if sniff and len(head) == _SNIFF_LEN:
                _require_iso_bmff(head, response.content_type)
        pending += chunk
        # The network hands over small pieces; batch them so each thread hop writes a full chunk.
        if len(pending) >= CHUNK_SIZE:
            batch, pending = pending, bytearray()
            await asyncio.to_thread(file.write, batch)
    if sniff and len(head) < _SNIFF_LEN:
        _require_iso_bmff(head, response.content_type)
    if size == 0:
        raise MediaDownloadError("download was empty")
    if pending:
        await asyncio.to_thread(file.write, pending)
    return size, head


def _require_iso_bmff(head: bytes, content_type: str) -> None:
    if not looks_like_iso_bmff(head):
        raise MediaTypeError(f"{content_type} body is not an MP4/MOV file")


def _open_temp(dest_dir: Path | None) -> IO[bytes]:
    # delete=False: the file must outlive this handle, for the upload; DownloadedVideo deletes it.
    return tempfile.NamedTemporaryFile(mode="wb", prefix="wan-result-", dir=dest_dir, delete=False)


def _close_and_delete(file: IO[bytes], path: Path) -> None:
    try:
        file.close()
    finally:
        path.unlink(missing_ok=True)
