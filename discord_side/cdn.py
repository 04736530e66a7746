"""Fresh Discord CDN links for stored references.

Attachment URLs are signed and expire (about a day). Before a stored reference is reused
(reroll, reply in a thread) the bot asks Discord for fresh links with
``POST /attachments/refresh-urls`` (what Discord's own clients use; not in the public docs).
Through discord.py's HTTP client, so it follows ``DISCORD_API_BASE`` and its rate limits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord
from discord.http import Route

from core.errors import UserError

log = logging.getLogger(__name__)

MAX_URLS_PER_CALL = 50


class ReferencesExpired(UserError):
    def __init__(self) -> None:
        super().__init__(
            "The reference files of that video are no longer available on Discord."
            " Start a new `/video` (or reply with the files attached)."
        )


async def refresh_urls(http: discord.http.HTTPClient, urls: Iterable[str]) -> dict[str, str]:
    """Map each URL to a fresh one. Raises :class:`ReferencesExpired` when Discord can't."""
    wanted = list(dict.fromkeys(urls))
    fresh: dict[str, str] = {}
    for start in range(0, len(wanted), MAX_URLS_PER_CALL):
        batch = wanted[start : start + MAX_URLS_PER_CALL]
        try:
            data = await http.request(
                Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": batch}
            )
        except discord.HTTPException as exc:
            log.warning("refreshing %d attachment URL(s) failed: %s", len(batch), exc.status)
            raise ReferencesExpired from exc
        for item in data.get("refreshed_urls", []) if isinstance(data, dict) else []:
            original, refreshed = item.get("original"), item.get("refreshed")
            if isinstance(original, str) and isinstance(refreshed, str) and refreshed:
                fresh[original] = refreshed
    missing = [url for url in wanted if url not in fresh]
    if missing:
        log.warning("Discord refreshed %d of %d URL(s)", len(wanted) - len(missing), len(wanted))
        raise ReferencesExpired
    return fresh
