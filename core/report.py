"""The operator's view of spending (``python bot.py --report [--days N]``), from the database alone.

What each server spent (reserved seconds, refunds given back) per UTC day, against its daily cap,
and what the whole bot spent against ``BUDGET_DAILY_SECONDS``. No Discord login: servers are
shown by id (``ALLOWED_GUILD_IDS`` takes the same ids).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.quota import server_cap
from core.startup_checks import DATABASE_ERRORS, describe_postgres_error, driver_reason
from core.store import Store, utc_day

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
MAX_REPORT_DAYS = 366


@dataclass(frozen=True, slots=True)
class ServerSpend:
    guild_id: int
    today: int
    total: int  # over the report's days
    cap: int | None  # today's cap in force (None: none)
    listed: bool  # on ALLOWED_GUILD_IDS (or no list)


@dataclass(frozen=True, slots=True)
class SpendReport:
    days: tuple[str, ...]  # oldest first; the last one is today (UTC)
    bot_by_day: dict[str, int]
    servers: tuple[ServerSpend, ...]  # most spent first
    budget: int | None
    server_cap_max: int | None

    @property
    def today(self) -> str:
        return self.days[-1]

    @property
    def total(self) -> int:
        return sum(self.bot_by_day.values())


async def spend_report(store: Store, settings: Settings, days: int, now: float) -> SpendReport:
    """Spending over ``days`` UTC days up to today, per server and for the bot."""
    if not 1 <= days <= MAX_REPORT_DAYS:
        raise ValueError(f"--days must be from 1 to {MAX_REPORT_DAYS}")
    day_list = tuple(utc_day(now - back * DAY_SECONDS) for back in range(days - 1, -1, -1))
    today = day_list[-1]
    rows = await store.spend_by_guild(day_list[0])
    bot_by_day: dict[str, int] = dict.fromkeys(day_list, 0)
    totals: dict[int, int] = defaultdict(int)
    today_by_guild: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.guild_id is None or row.day not in bot_by_day:
            continue
        bot_by_day[row.day] += row.seconds
        totals[row.guild_id] += row.seconds
        if row.day == today:
            today_by_guild[row.guild_id] += row.seconds
    servers = []
    for guild_id, total in totals.items():
        guild = await store.guild_settings(guild_id)
        servers.append(
            ServerSpend(
                guild_id,
                today_by_guild[guild_id],
                total,
                server_cap(settings, guild),
                settings.guild_allowed(guild_id),
            )
        )
    servers.sort(key=lambda s: (-s.today, -s.total, s.guild_id))
    return SpendReport(
        day_list,
        bot_by_day,
        tuple(servers),
        settings.budget_daily_seconds,
        settings.server_daily_seconds_max,
    )


def _against(spent: int, cap: int | None) -> str:
    if cap is None:
        return f"{spent} s"
    share = f" ({100 * spent // cap}%)" if cap else ""
    return f"{spent} / {cap} s{share}"


def render_report(report: SpendReport) -> str:
    """The report as plain text for a terminal, one table for the bot, one for the servers."""
    budget = "unlimited" if report.budget is None else f"{report.budget} s a day"
    bound = "none" if report.server_cap_max is None else f"at most {report.server_cap_max} s a day"
    lines = [
        f"Spending in seconds of video, {report.days[0]} to {report.today} (UTC days;"
        " reserved seconds, refunds given back)",
        f"bot budget (BUDGET_DAILY_SECONDS): {budget};"
        f" server caps (SERVER_DAILY_SECONDS_MAX): {bound}",
        "",
        f"{'day':<12}{'all servers (against the budget)':>34}",
    ]
    for day in report.days:
        lines.append(f"{day:<12}{_against(report.bot_by_day[day], report.budget):>34}")
    lines.append(f"{'total':<12}{f'{report.total} s':>34}")
    lines.append("")
    if not report.servers:
        lines.append("No server spent anything in these days.")
        return "\n".join(lines)
    lines.append(f"{'server':<22}{'today (against its cap)':>28}{'all days':>12}")
    for server in report.servers:
        name = str(server.guild_id) + ("" if server.listed else " *")
        lines.append(f"{name:<22}{_against(server.today, server.cap):>28}{server.total:>10} s")
    if any(not server.listed for server in report.servers):
        lines.append("* not on ALLOWED_GUILD_IDS: its requests are refused now")
    return "\n".join(lines)


async def run_report(settings: Settings, days: int, *, now: float | None = None) -> str:
    """Open the database (``DATABASE_URL``, else ``DATABASE_PATH``) and render the report
    (call :func:`database_missing` first: opening creates a SQLite file that is not there)."""
    async with Store.open(settings.database_target) as store:
        report = await spend_report(store, settings, days, time.time() if now is None else now)
    return render_report(report)


def database_missing(path: Path) -> str | None:
    if path.is_file():
        return None
    return (
        f"no database at {path.resolve()}: the bot has not run here yet, or DATABASE_PATH"
        " (or the working directory) differs from the bot's"
    )


def report_main(settings: Settings, days: int) -> int:
    """``--report``: print the report to standard output; a foreseeable problem is one line."""
    problem = None if settings.database_url else database_missing(Path(settings.database_path))
    if problem is None and not 1 <= days <= MAX_REPORT_DAYS:
        problem = f"--days must be from 1 to {MAX_REPORT_DAYS}"
    if problem is not None:
        log.error("cannot report: %s", problem)
        return 1
    try:
        text = asyncio.run(run_report(settings, days))
    except DATABASE_ERRORS as exc:
        if settings.database_url is not None:
            log.error("cannot report: %s", describe_postgres_error(settings.database_url, exc))
            return 1
        path = settings.database_path
        log.error("cannot report: the database %s could not be read: %s", path, driver_reason(exc))
        return 1
    sys.stdout.write(text + "\n")
    return 0
