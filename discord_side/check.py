"""``python bot.py --check``: the configuration, the database path, the token, the API key.

Each host gets CHECK_TIMEOUT_SECONDS and both are asked at once, so the answer comes within about
that long whatever a host does; a host that does not answer is named, and a 401 from Discord is
"token refused" whatever the base URL.
"""

from __future__ import annotations

import asyncio

import aiohttp

from core.config import Settings, config_warnings
from core.ratelimit import RateLimiter
from core.reachability import Unreachable, host_of, probe
from core.startup_checks import database_problem, postgres_problem
from core.store import redact
from core.wan import RetrySettings, WanClient, WanError, WanOperatorError, WanTransientError
from discord_side.startup import (
    DiscordUnavailable,
    TokenRefused,
    gateway_advice,
    shard_line,
    who_am_i,
)

CHECK_TIMEOUT_SECONDS = 10.0


async def check(settings: Settings) -> int:
    """Validate the configuration, the database path, the Discord token and the API key;
    print a report and return the exit code (0 when all is well)."""
    print(f"configuration: ok ({settings!r})")  # Settings' repr leaves the secrets out
    for warning in config_warnings(settings):
        print(f"warning: {warning}")
    if settings.database_url is None:
        problem = database_problem(settings.database_path, create=False)
        where = str(settings.database_path)
    else:
        problem = await postgres_problem(settings.database_url, within=CHECK_TIMEOUT_SECONDS)
        where = f"PostgreSQL {redact(settings.database_url)}"
    print(f"database: {problem}" if problem else f"database: ok ({where})")
    async with aiohttp.ClientSession() as session:
        (discord_ok, discord_line), (wan_ok, wan_line) = await asyncio.gather(
            _check_discord(settings, session), _check_wan(settings, session)
        )
    print(discord_line)
    print(wan_line)
    return 0 if discord_ok and wan_ok and problem is None else 1


async def _check_discord(settings: Settings, session: aiohttp.ClientSession) -> tuple[bool, str]:
    try:
        identity = await who_am_i(
            session,
            settings.discord_api_base,
            settings.discord_token,
            within=CHECK_TIMEOUT_SECONDS,
        )
    except Unreachable as exc:
        return False, f"discord: {exc}"
    except TokenRefused as exc:
        return False, f"discord token: REFUSED, {exc}"
    except DiscordUnavailable as exc:
        return False, f"discord token: could not check ({exc})"
    advice = await gateway_advice(
        session, settings.discord_api_base, settings.discord_token, within=CHECK_TIMEOUT_SECONDS
    )
    return True, (
        f"discord token: ok (logged in as {identity.username}, id {identity.user_id})\n"
        + shard_line(settings.shard_count, settings.shard_ids, advice)
    )


async def _check_wan(settings: Settings, session: aiohttp.ClientSession) -> tuple[bool, str]:
    client = WanClient(
        session,
        base_url=settings.wan_api_base,
        api_key=settings.wan_api_key,
        key_header=settings.wan_api_key_header,
        limiter=RateLimiter(settings.api_max_rps, settings.api_burst),
        retry=RetrySettings(max_attempts=1, request_timeout=CHECK_TIMEOUT_SECONDS),
    )
    host = host_of(settings.wan_api_base)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            tasks = await client.list_tasks()
    except TimeoutError:
        return (
            False,
            f"WAN API: cannot reach {host}: no answer within {CHECK_TIMEOUT_SECONDS:.0f} s",
        )
    except WanOperatorError as exc:
        return False, f"WAN API key: REFUSED ({exc})"
    except WanTransientError as exc:
        # Say why in the same words as for Discord: probe the host once without the key.
        try:
            await probe(session, settings.wan_api_base, within=CHECK_TIMEOUT_SECONDS / 2)
        except Unreachable as unreachable:
            return False, f"WAN API: {unreachable}"
        return False, f"WAN API key: could not check ({exc})"
    except WanError as exc:
        return False, f"WAN API key: could not check ({exc})"
    return True, f"WAN API key: ok ({len(tasks)} task(s) listed at {settings.wan_api_base})"
