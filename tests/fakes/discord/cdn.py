"""The fake CDN: files members and the bot upload, their signed, expiring links, and serving
them (whole or one ``Range``) as cdn.discordapp.com and media.discordapp.net do."""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import re
import secrets
import struct
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from aiohttp import web

from tests.fakes.discord.protocol import JSON, ApiError, json_response
from tests.fakes.discord.rest import Ctx, Route
from tests.fakes.discord.state import State

_CDN_PATH = re.compile(r"^(?:/media)?/(ephemeral-attachments|attachments)/(\d+)/(\d+)/[^/?]+$")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class Blob:
    """One stored file."""

    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str | None
    ephemeral: bool
    width: int | None = None
    height: int | None = None
    duration_secs: float | None = None
    description: str | None = None
    removed: bool = False


class Cdn:
    """Stored files by attachment id; links signed with a secret of the fake's own."""

    def __init__(self, state: State, *, url_ttl: float) -> None:
        self.state = state
        self.url_ttl = url_ttl
        self.requests: list[tuple[str, int]] = []  # (path, status) of every CDN request
        self._blobs: dict[int, Blob] = {}
        self._secret = secrets.token_bytes(32)

    # ------------------------------------------------------------------ storing

    def register_file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        ephemeral: bool = True,
        channel_id: int | None = None,
        width: int | None = None,
        height: int | None = None,
        duration_secs: float | None = None,
    ) -> JSON:
        """Store a user's file on the fake CDN and return its attachment payload.

        Defaults suit a file attached to a slash-command option (ephemeral); pass
        ``ephemeral=False`` for one attached to a regular message via ``post_message``.
        """
        blob = self.store(
            channel_id or self.state.channel_id,
            data,
            filename,
            content_type,
            ephemeral=ephemeral,
            width=width,
            height=height,
            duration_secs=duration_secs,
        )
        return self.attachment_payload(blob.id)

    def store(
        self,
        channel_id: int,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        width: int | None = None,
        height: int | None = None,
        duration_secs: float | None = None,
        description: str | None = None,
    ) -> Blob:
        # Discord sniffs the type itself (discord.py sends every part as octet-stream).
        content_type = content_type or mimetypes.guess_type(filename)[0]
        if width is None and content_type and content_type.startswith("image/"):
            size = image_size(data)
            if size is not None:
                width, height = size
        blob = Blob(
            id=self.state.snowflake(),
            channel_id=channel_id,
            filename=filename.replace(" ", "_"),
            data=data,
            content_type=content_type,
            ephemeral=ephemeral,
            width=width,
            height=height,
            duration_secs=duration_secs,
            description=description,
        )
        self._blobs[blob.id] = blob
        return blob

    def attachment_payload(self, attachment_id: int) -> JSON:
        """The attachment as Discord would send it now (freshly signed URLs)."""
        blob = self._blobs[attachment_id]
        payload: JSON = {
            "id": str(blob.id),
            "filename": blob.filename,
            "size": len(blob.data),
            "url": self._url(blob, proxy=False),
            "proxy_url": self._url(blob, proxy=True),
            "content_type": blob.content_type,
        }
        if blob.width is not None and blob.height is not None:
            payload |= {"width": blob.width, "height": blob.height}
        if blob.duration_secs is not None:
            payload["duration_secs"] = blob.duration_secs
        if blob.description is not None:
            payload["description"] = blob.description
        if blob.ephemeral:
            payload["ephemeral"] = True
        return payload

    def current_payload(self, attachment_id: int) -> JSON | None:
        """The payload with fresh links while the file exists; None once it is gone."""
        blob = self._blobs.get(attachment_id)
        if blob is None or blob.removed:
            return None
        return self.attachment_payload(blob.id)

    def attachment_bytes(self, attachment_id: int) -> bytes:
        return self._blobs[attachment_id].data

    def remove_attachment(self, attachment_id: int) -> None:
        """Make a stored file disappear (its URLs then answer 404)."""
        self._blobs[attachment_id].removed = True

    def discard(self, attachment_id: int) -> None:
        """The file went with its message (if the fake stored it)."""
        blob = self._blobs.get(attachment_id)
        if blob is not None:
            blob.removed = True

    def expire_ephemeral_attachments(self) -> None:
        """Discord removes slash-command uploads after a while; do it now."""
        for blob in self._blobs.values():
            if blob.ephemeral:
                blob.removed = True

    # ------------------------------------------------------------------ links

    def _sign(self, blob_id: int, expires: str, issued: str) -> str:
        message = f"{blob_id}:{expires}:{issued}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _url(self, blob: Blob, *, proxy: bool) -> str:
        issued = int(self.state.now())
        expires, issued_hex = f"{issued + int(self.url_ttl):x}", f"{issued:x}"
        kind = "ephemeral-attachments" if blob.ephemeral else "attachments"
        host = self.state.base_url + ("/media" if proxy else "")
        signature = self._sign(blob.id, expires, issued_hex)
        path = f"{kind}/{blob.channel_id}/{blob.id}/{quote(blob.filename)}"
        # Discord's links carry ex (expiry), is (issued) and hm (signature), and end with "&".
        return f"{host}/{path}?ex={expires}&is={issued_hex}&hm={signature}&"

    def _blob_for_url(self, url: str) -> Blob | None:
        match = _CDN_PATH.match(urlsplit(url).path)
        if match is None:
            return None
        kind, channel_id, blob_id = match.groups()
        blob = self._blobs.get(int(blob_id))
        if blob is None or blob.removed or int(channel_id) != blob.channel_id:
            return None
        if (kind == "ephemeral-attachments") != blob.ephemeral:
            return None
        return blob

    # ------------------------------------------------------------------ serving

    def add_to(self, app: web.Application) -> None:
        for prefix in ("", "/media"):
            for kind in ("attachments", "ephemeral-attachments"):
                path = f"{prefix}/{kind}/{{channel_id}}/{{attachment_id}}/{{filename}}"
                app.router.add_get(path, self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        blob = self._blob_for_url(str(request.rel_url))
        query = request.query
        valid = blob is not None and hmac.compare_digest(
            self._sign(blob.id, query.get("ex", ""), query.get("is", "")), query.get("hm", "")
        )
        try:
            fresh = int(query.get("ex", "0"), 16) > self.state.now()
        except ValueError:
            fresh = False
        if blob is None or not valid or not fresh:
            response = web.Response(status=404, text="This content is no longer available.")
        else:
            response = ranged_response(
                blob.data,
                blob.content_type or "application/octet-stream",
                request.headers.get("Range"),
            )
        self.requests.append((request.path, response.status))
        self.state.notify()
        return response

    # ------------------------------------------------------------------ REST

    def routes(self) -> list[Route]:
        return [("POST", "/attachments/refresh-urls", self._refresh_urls)]

    async def _refresh_urls(self, ctx: Ctx) -> web.Response:
        urls = ctx.json().get("attachment_urls")
        if not isinstance(urls, list) or not 1 <= len(urls) <= 50:
            raise ApiError(400, 50035, "Invalid Form Body (attachment_urls)")
        refreshed = []
        for url in urls:
            # Links to files that no longer exist are left out, as they cannot be refreshed.
            blob = self._blob_for_url(str(url))
            if blob is not None:
                proxy = str(url).startswith(self.state.base_url + "/media")
                refreshed.append({"original": url, "refreshed": self._url(blob, proxy=proxy)})
        return json_response(200, {"refreshed_urls": refreshed})


def ranged_response(data: bytes, content_type: str, header: str | None) -> web.Response:
    """The whole file (200), or one ``Range: bytes=a-b`` of it (206; 416 past the end), as the
    Discord CDN answers. A range the CDN would not understand gets the whole file."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return web.Response(
            body=data, content_type=content_type, headers={"Accept-Ranges": "bytes"}
        )
    first, last = match.groups()
    size = len(data)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    return web.Response(
        status=206,
        body=data[start : end + 1],
        content_type=content_type,
        headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"},
    )


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP, read from its header; else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if chunk == b"VP8 ":
            return (
                int.from_bytes(data[26:28], "little") & 0x3FFF,
                int.from_bytes(data[28:30], "little") & 0x3FFF,
            )
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the segments to the first start-of-frame marker, which holds the dimensions.
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + int(length)
    return None
