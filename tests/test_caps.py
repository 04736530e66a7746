"""Spending caps: the bot's daily budget and each server's daily cap, reserved with the member's
quota in one transaction; refunds restore them; the allow-list; the operator's report."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from pathlib import Path

import pytest

from core.config import ConfigError, Settings, config_warnings
from core.jobs import JobState
from core.metrics import Metrics
from core.moderation import Actor, Moderation
from core.quota import effective_limits, server_cap
from core.report import render_report, report_main, spend_report
from core.service import NOT_ENABLED_MESSAGE, NotEnabledHere, VideoService
from core.store import (
    CapExceeded,
    GuildSettings,
    NewJob,
    QuotaExceeded,
    QuotaLimits,
    Store,
    TooManyJobs,
    UserOverride,
    utc_day,
)
from tests.discord_mocks import TEST_ENV, accept_job, make_guild, make_member, make_text_channel
from tests.discord_mocks import open_harness as open_bot_harness
from tests.store.helpers import NOW, make_job, processes

DAY = utc_day(NOW)
BASE_ENV = {"DISCORD_TOKEN": "t", "FREEPIK_API_KEY": "k"}


def job_in(guild_id: int, user_id: int, cost: int) -> NewJob:
    return dataclasses.replace(make_job(user=user_id, cost=cost), guild_id=guild_id)


def caps(server: int | None = None, budget: int | None = None, **member: int) -> QuotaLimits:
    return QuotaLimits(
        daily_seconds=member.get("daily", 10_000),
        max_concurrent=member.get("concurrent", 10_000),
        exempt=bool(member.get("exempt", 0)),
        server_daily_seconds=server,
        budget_daily_seconds=budget,
    )


# ----------------------------------------------------------------- the store: reservations


async def test_concurrent_reservations_never_overspend_the_budget_or_a_server_cap(
    database: Path | str,
) -> None:
    # 600 requests at once from 3 servers × 10 members, random costs; the budget binds before
    # the servers' caps add up. Whatever the interleaving: 0 seconds over any cap. On
    # PostgreSQL from two processes' stores at once.
    rng = random.Random(13)
    server_caps = {1: 120, 2: 90, 3: 200}
    budget = 300
    async with Store.open(database) as store, processes(store, database, 2) as stores:

        async def attempt(index: int) -> int:
            guild_id = 1 + index % 3
            cost = rng.randint(2, 15)
            try:
                await stores[index % 2].create_job(
                    job_in(guild_id, 100 + index % 10, cost),
                    caps(server=server_caps[guild_id], budget=budget, daily=60),
                    NOW,
                )
            except (CapExceeded, QuotaExceeded):
                return 0
            return cost

        spent = await asyncio.gather(*(attempt(i) for i in range(600)))
        await check_spending(store, spent, server_caps, budget)


async def check_spending(
    store: Store, spent: list[int], server_caps: dict[int, int], budget: int
) -> None:
    total = await store.day_spend(DAY)
    assert total == sum(spent)
    assert total <= budget
    assert total > budget - 15  # it filled up: the caps refused only what did not fit
    for guild_id, cap in server_caps.items():
        assert await store.day_spend(DAY, guild_id) <= cap


async def test_a_server_cap_binds_even_when_the_budget_has_room(store: Store) -> None:
    limits = caps(server=20, budget=1000)
    accepted = await asyncio.gather(
        *(_try(store, job_in(7, 100 + i, 3), limits) for i in range(50)), return_exceptions=False
    )
    assert sum(accepted) == 6  # 6 × 3 s = 18 ≤ 20; a seventh would be 21
    assert await store.day_spend(DAY, 7) == 18


async def _try(store: Store, job: NewJob, limits: QuotaLimits) -> int:
    try:
        await store.create_job(job, limits, NOW)
    except CapExceeded:
        return 0
    return 1


async def test_refunds_restore_the_budget_and_the_server_cap(store: Store) -> None:
    limits = caps(server=10, budget=10)
    first = await store.create_job(job_in(1, 100, 6), limits, NOW)
    await store.create_job(job_in(1, 101, 4), limits, NOW)
    with pytest.raises(CapExceeded):
        await store.create_job(job_in(1, 102, 5), limits, NOW)

    assert await store.transition(first.id, JobState.FAILED, NOW + 1, error="x") is not None

    assert await store.day_spend(DAY) == 4
    assert await store.day_spend(DAY, 1) == 4
    await store.create_job(job_in(1, 102, 6), limits, NOW)
    assert await store.day_spend(DAY) == 10


async def test_refused_requests_spend_nothing(store: Store) -> None:
    limits = caps(server=5, budget=100)
    with pytest.raises(CapExceeded):
        await store.create_job(job_in(1, 100, 6), limits, NOW)
    assert await store.ledger_entries(1, since_day=DAY) == []
    assert await store.day_spend(DAY) == 0


async def test_exempt_members_are_bounded_by_the_caps(store: Store) -> None:
    limits = caps(server=None, budget=8, daily=1, concurrent=1, exempt=1)
    await store.create_job(job_in(1, 100, 5), limits, NOW)
    await store.create_job(job_in(1, 100, 3), limits, NOW)
    with pytest.raises(CapExceeded) as raised:
        await store.create_job(job_in(1, 100, 1), limits, NOW)
    assert raised.value.cap == "budget"


async def test_grants_and_resets_give_a_member_room_but_not_the_server(store: Store) -> None:
    limits = caps(server=10, budget=None, daily=10)
    await store.create_job(job_in(1, 100, 10), limits, NOW)
    await store.reset_usage(1, 100, actor_id=5, now=NOW)
    await store.grant(1, 100, 30, actor_id=5, now=NOW)
    assert await store.usage(1, 100, DAY) == -30  # the member has room again…
    with pytest.raises(CapExceeded) as raised:  # …the server's day is still spent
        await store.create_job(job_in(1, 100, 1), limits, NOW)
    assert raised.value.cap == "server"


async def test_the_tightest_limit_is_the_one_told(store: Store) -> None:
    await store.create_job(job_in(1, 100, 8), caps(), NOW)
    # member 2 s left, server 4 s, budget 0 s: shortening won't help, the budget is told.
    with pytest.raises(CapExceeded) as raised:
        await store.create_job(
            job_in(1, 100, 5),
            caps(server=12, budget=8, daily=10),
            NOW,
        )
    assert (raised.value.cap, raised.value.remaining) == ("budget", 0)
    # member 2 s left, server 4 s, no budget: the member's quota is told, with its advice.
    with pytest.raises(QuotaExceeded) as quota:
        await store.create_job(job_in(1, 100, 5), caps(server=12, daily=10), NOW)
    assert quota.value.remaining == 2
    # Concurrency is the member's own limit, checked first.
    with pytest.raises(TooManyJobs):
        await store.create_job(job_in(1, 100, 1), caps(concurrent=1, budget=8), NOW)


def test_the_refusal_names_the_cap_and_when_it_resets() -> None:
    budget = CapExceeded("budget", 6, 2, "2026-03-01")
    assert "The bot's daily budget" in budget.message
    assert "only 2 s are left today for all servers" in budget.message
    midnight = 1772409600  # 2026-03-02 00:00 UTC
    assert f"<t:{midnight}:R>" in budget.message
    server = CapExceeded("server", 6, 0, "2026-03-01")
    assert "This server's daily cap" in server.message and "it is used up" in server.message
    assert "Nothing was charged." in server.message


# ----------------------------------------------------------------- policy: which cap applies


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **env})


def test_the_server_cap_is_its_own_bounded_by_the_operators_max() -> None:
    bounded = settings(SERVER_DAILY_SECONDS_MAX="300")
    free = settings()
    assert server_cap(bounded, GuildSettings(1)) == 300  # unset: the max
    assert server_cap(bounded, GuildSettings(1, server_daily_seconds=100)) == 100
    assert server_cap(bounded, GuildSettings(1, server_daily_seconds=900)) == 300  # max lowered
    assert server_cap(free, GuildSettings(1)) is None  # no max, none set: unlimited
    assert server_cap(free, GuildSettings(1, server_daily_seconds=50)) == 50


def test_limits_carry_both_caps_and_exemption_lifts_only_the_members() -> None:
    config = settings(BUDGET_DAILY_SECONDS="1000", SERVER_DAILY_SECONDS_MAX="200")
    guild = GuildSettings(1, exempt_role_id=9)
    limits = effective_limits(config, guild, UserOverride(1, 2), role_ids=[9])
    assert limits.exempt
    assert (limits.server_daily_seconds, limits.budget_daily_seconds) == (200, 1000)


def test_settings_read_the_caps_and_the_allow_list() -> None:
    config = settings(
        BUDGET_DAILY_SECONDS="3600",
        SERVER_DAILY_SECONDS_MAX="600",
        ALLOWED_GUILD_IDS=" 111111111111, 222222222222 ,",
        LEAVE_UNLISTED_GUILDS="false",
    )
    assert config.budget_daily_seconds == 3600 and config.server_daily_seconds_max == 600
    assert config.allowed_guild_ids == frozenset({111111111111, 222222222222})
    assert config.guild_allowed(111111111111) and not config.guild_allowed(333)
    assert not config.leave_unlisted_guilds
    assert settings().allowed_guild_ids is None and settings().guild_allowed(333)
    assert settings().leave_unlisted_guilds


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BUDGET_DAILY_SECONDS", "0"),
        ("BUDGET_DAILY_SECONDS", "inf"),
        ("SERVER_DAILY_SECONDS_MAX", "-5"),
        ("ALLOWED_GUILD_IDS", "123,abc"),
        ("ALLOWED_GUILD_IDS", ","),
        ("LEAVE_UNLISTED_GUILDS", "maybe"),
    ],
)
def test_bad_cap_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**{name: value})
    assert any(problem.startswith(name) for problem in raised.value.problems)
    assert value not in " ".join(raised.value.problems) or value in ("0", ",")


def test_a_dev_guild_outside_the_allow_list_is_a_warning() -> None:
    config = settings(ALLOWED_GUILD_IDS="111111111111", DEV_GUILD_ID="222222222222")
    assert any("DEV_GUILD_ID is not in ALLOWED_GUILD_IDS" in w for w in config_warnings(config))


# ----------------------------------------------------------------- the service


async def test_the_service_refuses_over_a_cap_and_counts_it(tmp_path: Path) -> None:
    env = {"BUDGET_DAILY_SECONDS": "8", "QUOTA_DAILY_SECONDS": "60"}
    async with open_bot_harness(tmp_path / "db.sqlite3", env=env) as harness:
        metrics = Metrics(process=False)
        harness.service = VideoService(
            harness.settings, harness.store, harness.tracker, clock=harness.clock, metrics=metrics
        )
        guild = make_guild()
        channel = make_text_channel(guild)
        alice, bob = make_member(guild, name="alice"), make_member(guild, name="bob")
        job = await accept_job(harness, alice, channel, duration=5)
        with pytest.raises(CapExceeded) as raised:
            await accept_job(harness, bob, channel, duration=5)
        assert "The bot's daily budget" in raised.value.message
        assert metrics.value("wanbot_requests_accepted_total", {"origin": "command"}) == 1
        assert metrics.value("wanbot_requests_refused_total", {"reason": "budget"}) == 1
        assert metrics.value("wanbot_ledger_seconds_total", {"kind": "reserve"}) == 5
        await harness.store.transition(job.id, JobState.FAILED, harness.clock(), error="x")
        assert metrics.value("wanbot_ledger_seconds_total", {"kind": "refund"}) == 5
        await accept_job(harness, bob, channel, duration=5)  # the refund made room


async def test_a_server_not_on_the_allow_list_is_refused_before_anything(tmp_path: Path) -> None:
    guild = make_guild()
    env = {"ALLOWED_GUILD_IDS": str(guild.id + 1)}
    async with open_bot_harness(tmp_path / "db.sqlite3", env=env) as harness:
        metrics = Metrics(process=False)
        harness.service = VideoService(
            harness.settings, harness.store, harness.tracker, clock=harness.clock, metrics=metrics
        )
        with pytest.raises(NotEnabledHere) as raised:
            await accept_job(harness, make_member(guild), make_text_channel(guild))
        assert raised.value.message == NOT_ENABLED_MESSAGE
        assert metrics.value("wanbot_requests_refused_total", {"reason": "not_allowed"}) == 1
        assert await harness.store.ledger_entries(guild.id, since_day="2000-01-01") == []


# ----------------------------------------------------------------- moderators and the operator


async def test_moderators_set_the_server_cap_within_the_operators_max(tmp_path: Path) -> None:
    env = {"SERVER_DAILY_SECONDS_MAX": "300"}
    async with open_bot_harness(tmp_path / "db.sqlite3", env=env) as harness:
        moderation = Moderation(
            harness.settings, harness.store, harness.service, clock=harness.clock
        )
        actor = Actor(guild_id=5, user_id=6, manages_server=True)
        with pytest.raises(Exception, match="at most 300"):
            await moderation.set_defaults(actor, server_daily_seconds=301)
        assert (await harness.store.guild_settings(5)).server_daily_seconds is None
        update = await moderation.set_defaults(actor, server_daily_seconds=120)
        assert update.after.server_cap == 120 and update.after.server_cap_max == 300
        assert (await harness.store.guild_settings(5)).server_daily_seconds == 120
        unset = await moderation.set_defaults(actor, unset="server_daily_seconds")
        assert unset.after.server_cap == 300

        guild = make_guild()
        job = await accept_job(harness, make_member(guild), make_text_channel(guild), duration=7)
        usage = await moderation.usage(guild.id, days=1)
        assert usage.today is not None
        assert (usage.today.spent, usage.today.cap, usage.today.left) == (7, 300, 293)
        assert job.cost_seconds == 7


def report_settings(path: Path) -> Settings:
    return Settings.from_env(
        {
            **TEST_ENV,
            "DATABASE_PATH": str(path),
            "BUDGET_DAILY_SECONDS": "100",
            "SERVER_DAILY_SECONDS_MAX": "50",
            "ALLOWED_GUILD_IDS": "111",
        }
    )


async def test_the_report_shows_spend_per_server_against_the_caps(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    config = report_settings(path)
    async with Store.open(path) as store:
        limits = caps()
        await store.create_job(job_in(111, 1, 20), limits, NOW)
        failed = await store.create_job(job_in(222, 1, 9), limits, NOW)
        await store.create_job(job_in(222, 2, 4), limits, NOW)
        await store.transition(failed.id, JobState.FAILED, NOW, error="x")
        await store.create_job(job_in(111, 1, 6), limits, NOW - 86_400)
        report = await spend_report(store, config, 2, NOW)
    assert report.bot_by_day == {utc_day(NOW - 86_400): 6, DAY: 24}
    by_id = {server.guild_id: server for server in report.servers}
    assert (by_id[111].today, by_id[111].total, by_id[111].cap) == (20, 26, 50)
    assert (by_id[222].today, by_id[222].listed) == (4, False)
    text = render_report(report)
    assert "24 / 100 s (24%)" in text and "20 / 50 s (40%)" in text
    assert "222 *" in text and "not on ALLOWED_GUILD_IDS" in text


def test_the_report_command_reads_the_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "db.sqlite3"

    async def spend() -> None:
        async with Store.open(path) as store:
            await store.create_job(job_in(111, 1, 20), caps(), time.time())

    asyncio.run(spend())
    assert report_main(report_settings(path), 1) == 0  # no Discord login, no token used
    out = capsys.readouterr().out
    assert "bot budget (BUDGET_DAILY_SECONDS): 100 s a day" in out
    assert "20 / 50 s (40%)" in out
    assert report_main(report_settings(path), 0) == 1


def test_the_report_refuses_a_missing_database(tmp_path: Path) -> None:
    config = Settings.from_env({**TEST_ENV, "DATABASE_PATH": str(tmp_path / "none.sqlite3")})
    assert report_main(config, 7) == 1
    assert not (tmp_path / "none.sqlite3").exists()
