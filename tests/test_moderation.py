"""core.moderation: the moderators' actions against the real store, quota, service and tracker.

No Discord here: actors, members and channels are ids, results are plain values.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import pytest
import sqlalchemy.exc

from core.attachments import Attachment
from core.config import Settings
from core.errors import Refused, UserError
from core.jobs import Job, JobState
from core.moderation import (
    Actor,
    Moderation,
    UsageReport,
    spreadsheet_safe,
    usage_csv,
)
from core.references import GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.store import AuditEntry, GuildSettings, Store, UsageRow, UserOverride, utc_day
from core.tracker import Tracker
from core.wan import WanClient
from tests.discord_mocks import TEST_ENV, FakeClock

GUILD = 1_000
MOD = Actor(GUILD, 10, manages_server=True)
HELPER = Actor(GUILD, 11)  # a moderator through the server's moderator role only
ALICE, BOB = 20, 21
CHANNEL, OTHER_CHANNEL = 30, 31
_ids = count(1)


@dataclass
class World:
    db_path: Path
    settings: Settings
    store: Store
    tracker: Tracker
    service: VideoService
    moderation: Moderation
    clock: FakeClock


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db_path = tmp_path / "db.sqlite3"
    settings = Settings.from_env({**TEST_ENV, "DATABASE_PATH": str(db_path)})
    clock = FakeClock()
    async with Store.open(db_path) as store:
        tracker = Tracker(
            store, MagicMock(spec=WanClient), MagicMock(spec=aiohttp.ClientSession), clock=clock
        )
        service = VideoService(settings, store, tracker, clock=clock)
        moderation = Moderation(settings, store, service, clock=clock)
        yield World(db_path, settings, store, tracker, service, moderation, clock)


async def accept(
    world: World,
    user_id: int,
    *,
    duration: int = 5,
    prompt: str = "Image 1 waves hello",
    name: str | None = None,
    guild_id: int = GUILD,
) -> Job:
    """A job accepted through the real service (rules, quota reservation, persistence)."""
    image = Attachment(f"https://cdn.example/{next(_ids)}.png", "ref.png", "image/png", 100_000)
    reference = ReferenceInput(1, replace(image, width=1024, height=1024))
    built = build_request(
        prompt, [reference], GenerationOptions(duration=duration, resolution="720P")
    )
    who = Requester(guild_id, CHANNEL, user_id, display_name=name)
    return await world.service.accept(who, built)


_PATHS: dict[JobState, tuple[JobState, ...]] = {
    JobState.SUBMITTED: (JobState.SUBMITTING, JobState.SUBMITTED),
    JobState.RUNNING: (JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING),
    JobState.DELIVERED: (
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.COMPLETED,
        JobState.DELIVERED,
    ),
    JobState.FAILED: (JobState.FAILED,),
    JobState.CANCELLED: (JobState.CANCELLED,),
}


async def move(world: World, job: Job, target: JobState) -> Job:
    moved: Job | None = job
    for state in _PATHS[target]:
        moved = await world.store.transition(job.id, state, world.clock())
    assert moved is not None
    return moved


async def audit_rows(world: World) -> list[AuditEntry]:
    return await world.store.audit_entries(GUILD, limit=1000)


async def allowed(world: World, user_id: int, channel_id: int = CHANNEL) -> bool:
    try:
        await world.service.check_allowed(Requester(GUILD, channel_id, user_id))
    except Refused:
        return False
    return True


# ----------------------------------------------------------------- one change, one audit row


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a moderator action may change, read beside the store (WAL allows it)."""
    tables = {
        "guild_settings": "SELECT * FROM guild_settings",
        "user_overrides": "SELECT * FROM user_overrides",
        "bans": "SELECT * FROM bans",
        "channel_rules": "SELECT * FROM channel_rules",
        "quota_ledger": "SELECT * FROM quota_ledger",
        "jobs": "SELECT id, state FROM jobs",
        "audit_log": "SELECT * FROM audit_log",
    }
    conn = sqlite3.connect(db_path)
    try:
        return {name: sorted(conn.execute(sql)) for name, sql in tables.items()}
    finally:
        conn.close()


def refuse_audit_rows(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        conn.execute(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit row refused'); END"
        )
        conn.commit()
    finally:
        conn.close()


Action = Callable[[World, Job], Awaitable[object]]
CHANGES: dict[str, Action] = {
    "quota.set": lambda w, job: w.moderation.set_quota(MOD, ALICE, daily_seconds=5),
    "quota.reset": lambda w, job: w.moderation.reset_quota(MOD, ALICE),
    "quota.grant": lambda w, job: w.moderation.grant(MOD, ALICE, 30),
    "defaults": lambda w, job: w.moderation.set_defaults(MOD, daily_seconds=9),
    "ban": lambda w, job: w.moderation.ban(MOD, ALICE, "spam"),
    "pause": lambda w, job: w.moderation.pause(MOD, "later"),
    "channel.deny": lambda w, job: w.moderation.set_channel_rule(MOD, CHANNEL, "deny"),
    "nsfw_only": lambda w, job: w.moderation.set_nsfw_only(MOD, True),
    "cancel": lambda w, job: w.moderation.cancel(MOD, job.id),
}


@pytest.mark.parametrize("action", CHANGES.values(), ids=list(CHANGES))
async def test_a_change_without_its_audit_row_is_not_written(world: World, action: Action) -> None:
    job = await accept(world, ALICE)
    before = snapshot(world.db_path)
    refuse_audit_rows(world.db_path)

    with pytest.raises(sqlalchemy.exc.DatabaseError, match="audit row refused"):
        await action(world, job)

    assert snapshot(world.db_path) == before


async def test_every_change_writes_one_audit_row_and_one_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    job = await accept(world, ALICE)
    caplog.set_level(logging.INFO, logger="core.moderation")
    for action in CHANGES.values():
        await action(world, job)

    rows = await audit_rows(world)
    assert [(row.action, row.actor_id) for row in reversed(rows)] == [
        (name, MOD.user_id) for name in CHANGES
    ]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("core.moderation")]
    # The cancel's row is written by the service with the cancellation itself.
    assert len(logged) == len(CHANGES) - 1
    assert logged[4] == f"guild {GUILD}: ban user:{ALICE} by {MOD.user_id}:" + (
        " {'banned': False, 'reason': None} -> {'banned': True, 'reason': 'spam'}"
    )


# ----------------------------------------------------------------- quota


async def test_member_quota_says_where_each_limit_comes_from(world: World) -> None:
    quota = await world.moderation.member_quota(GUILD, ALICE)
    assert (quota.daily_source, quota.concurrent_source) == ("bot default", "bot default")
    assert quota.status.limits.daily_seconds == 60 and quota.ban is None

    await world.moderation.set_defaults(MOD, max_concurrent=3)
    await world.moderation.set_quota(MOD, ALICE, daily_seconds=100)
    await accept(world, ALICE, duration=5)
    await world.moderation.grant(MOD, ALICE, 20)
    await world.moderation.ban(MOD, ALICE, "spam")

    quota = await world.moderation.member_quota(GUILD, ALICE)
    assert (quota.daily_source, quota.concurrent_source) == ("member override", "server default")
    assert (quota.status.used, quota.status.remaining, quota.granted_today) == (-15, 115, 20)
    assert quota.status.unfinished == 1 and quota.ban is not None and quota.ban.reason == "spam"


async def test_set_quota_returns_before_and_after(world: World) -> None:
    change = await world.moderation.set_quota(MOD, ALICE, daily_seconds=4, max_concurrent=1)

    assert change.changed
    assert change.before == UserOverride(GUILD, ALICE)
    assert change.after == UserOverride(GUILD, ALICE, 4, 1)
    assert await world.store.user_override(GUILD, ALICE) == change.after
    [row] = await audit_rows(world)
    assert (row.action, row.target) == ("quota.set", f"user:{ALICE}")
    assert row.before == {"daily_seconds": None, "max_concurrent": None}
    assert row.after == {"daily_seconds": 4, "max_concurrent": 1}

    partial = await world.moderation.set_quota(MOD, ALICE, max_concurrent=2)
    assert partial.after == UserOverride(GUILD, ALICE, 4, 2)  # the daily override stays

    back = await world.moderation.set_quota(MOD, ALICE, use_server_defaults=True)
    assert back.after == UserOverride(GUILD, ALICE)


async def test_set_quota_to_what_it_is_writes_nothing(world: World) -> None:
    await world.moderation.set_quota(MOD, ALICE, daily_seconds=4)

    again = await world.moderation.set_quota(MOD, ALICE, daily_seconds=4)

    assert not again.changed
    assert len(await audit_rows(world)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"daily_seconds": 0}, "`daily_seconds` must be a whole number from 1 to 86400"),
        ({"daily_seconds": 86_401}, "`daily_seconds` must be"),
        ({"max_concurrent": 51}, "`max_concurrent` must be a whole number from 1 to 50"),
        ({"daily_seconds": 10, "use_server_defaults": True}, "not both"),
        ({}, "Give `daily_seconds`, `max_concurrent`, or `use_server_defaults: True`"),
    ],
)
async def test_set_quota_refuses_bad_arguments(
    world: World, kwargs: dict[str, Any], message: str
) -> None:
    before = snapshot(world.db_path)

    with pytest.raises(UserError, match=message) as refused:
        await world.moderation.set_quota(MOD, ALICE, **kwargs)

    assert refused.value.message.endswith("Nothing was changed.")
    assert snapshot(world.db_path) == before


async def test_reset_gives_back_todays_seconds_once(world: World) -> None:
    await move(world, await accept(world, ALICE, duration=8), JobState.DELIVERED)

    assert await world.moderation.reset_quota(MOD, ALICE) == 8

    assert await world.store.usage(GUILD, ALICE, utc_day(world.clock())) == 0
    assert await world.moderation.reset_quota(MOD, ALICE) == 0  # nothing used: nothing written
    [row] = await audit_rows(world)
    assert (row.action, row.before, row.after) == (
        "quota.reset",
        {"used_seconds": 8},
        {"used_seconds": 0},
    )


async def test_reset_leaves_todays_grants_alone(world: World) -> None:
    await world.moderation.grant(MOD, ALICE, 30)

    assert await world.moderation.reset_quota(MOD, ALICE) == 0

    quota = await world.moderation.member_quota(GUILD, ALICE)
    assert quota.status.remaining == 90


async def test_grant_returns_the_quota_afterwards(world: World) -> None:
    await accept(world, ALICE, duration=5)

    status = await world.moderation.grant(MOD, ALICE, 30, note="  contest winner  ")

    assert (status.used, status.remaining) == (-25, 85)
    today = utc_day(world.clock())
    [grant] = [
        e
        for e in await world.store.ledger_entries(GUILD, since_day=today, user_id=ALICE)
        if e.kind == "grant"
    ]
    assert (grant.seconds, grant.actor_id, grant.note) == (-30, MOD.user_id, "contest winner")
    [row] = await audit_rows(world)
    assert row.after == {"used_seconds": -25, "granted": 30, "note": "contest winner"}


async def test_grant_refuses_bad_seconds_and_long_notes(world: World) -> None:
    before = snapshot(world.db_path)

    with pytest.raises(UserError, match="`seconds` must be a whole number from 1 to 86400"):
        await world.moderation.grant(MOD, ALICE, 0)
    with pytest.raises(UserError, match="`note` can be at most 200 characters"):
        await world.moderation.grant(MOD, ALICE, 10, note="x" * 201)

    assert snapshot(world.db_path) == before


# ----------------------------------------------------------------- defaults


async def test_defaults_without_settings_only_reads_them(world: World) -> None:
    update = await world.moderation.set_defaults(MOD)

    assert not update.asked and not update.changed
    assert update.after.guild == GuildSettings(GUILD)
    assert (update.after.bot_daily_seconds, update.after.bot_max_concurrent) == (60, 2)
    assert await audit_rows(world) == []


async def test_defaults_change_and_unset(world: World) -> None:
    update = await world.moderation.set_defaults(
        MOD, daily_seconds=30, max_duration=4, max_resolution="720P", exempt_role_id=77
    )

    assert update.asked and update.changed
    saved = await world.store.guild_settings(GUILD)
    assert (
        saved
        == update.after.guild
        == GuildSettings(
            GUILD, daily_seconds=30, max_duration=4, max_resolution="720P", exempt_role_id=77
        )
    )
    [row] = await audit_rows(world)
    assert row.before == {
        "daily_seconds": None,
        "max_duration": None,
        "max_resolution": None,
        "exempt_role_id": None,
    }
    assert row.after == {
        "daily_seconds": 30,
        "max_duration": 4,
        "max_resolution": "720P",
        "exempt_role_id": 77,
    }

    same = await world.moderation.set_defaults(MOD, daily_seconds=30)
    assert same.asked and not same.changed
    unset = await world.moderation.set_defaults(MOD, unset="exempt_role")
    assert unset.changed and unset.after.guild.exempt_role_id is None
    assert len(await audit_rows(world)) == 2


@pytest.mark.parametrize(
    ("actor", "kwargs", "message"),
    [
        (MOD, {"max_duration": 11}, "`max_duration` must be a whole number from 2 to 10"),
        (MOD, {"max_resolution": "4K"}, "`max_resolution` must be one of 720P, 1080P"),
        (MOD, {"exempt_role_id": GUILD}, "`exempt_role` can't be @everyone"),
        (MOD, {"moderator_role_id": GUILD}, "`moderator_role` can't be @everyone"),
        (MOD, {"daily_seconds": 10, "unset": "daily_seconds"}, "both set and unset"),
        (HELPER, {"moderator_role_id": 78}, "Only members with the Manage Server permission"),
        (HELPER, {"unset": "moderator_role"}, "Only members with the Manage Server permission"),
    ],
)
async def test_defaults_refuse_bad_arguments(
    world: World, actor: Actor, kwargs: dict[str, Any], message: str
) -> None:
    before = snapshot(world.db_path)

    with pytest.raises(UserError, match=message):
        await world.moderation.set_defaults(actor, **kwargs)

    assert snapshot(world.db_path) == before


async def test_a_role_moderator_may_change_other_defaults(world: World) -> None:
    update = await world.moderation.set_defaults(HELPER, daily_seconds=90)

    assert update.after.guild.daily_seconds == 90


# ----------------------------------------------------------------- bans, pause


async def test_ban_update_and_unban(world: World) -> None:
    await accept(world, ALICE)

    first = await world.moderation.ban(MOD, ALICE, "spam")
    assert (first.before, first.changed, first.unfinished) == (None, True, 1)
    assert not await allowed(world, ALICE)

    same = await world.moderation.ban(MOD, ALICE, " spam ")
    assert not same.changed and same.before is not None
    updated = await world.moderation.ban(MOD, ALICE, "flooding")
    assert updated.changed and updated.before is not None and updated.before.reason == "spam"

    lifted = await world.moderation.unban(MOD, ALICE, "apologised")
    assert lifted.reason == "flooding"
    assert await allowed(world, ALICE)
    with pytest.raises(UserError, match=f"<@{ALICE}> is not banned here. Nothing was changed."):
        await world.moderation.unban(MOD, ALICE)

    rows = list(reversed(await audit_rows(world)))
    assert [(r.action, r.before, r.after) for r in rows] == [
        ("ban", {"banned": False, "reason": None}, {"banned": True, "reason": "spam"}),
        ("ban", {"banned": True, "reason": "spam"}, {"banned": True, "reason": "flooding"}),
        (
            "unban",
            {"banned": True, "reason": "flooding"},
            {"banned": False, "reason": "apologised"},
        ),
    ]


async def test_pause_and_resume(world: World) -> None:
    paused = await world.moderation.pause(MOD, "maintenance")

    assert (paused.before.paused, paused.after.paused) == (False, True)
    assert not await allowed(world, ALICE)
    with pytest.raises(UserError, match="already paused"):
        await world.moderation.pause(MOD)

    resumed = await world.moderation.resume(MOD, "done")

    assert not resumed.after.paused and resumed.after.pause_reason is None
    assert await allowed(world, ALICE)
    with pytest.raises(UserError, match="not paused"):
        await world.moderation.resume(MOD)
    resume, pause = await audit_rows(world)
    assert pause.after == {"paused": True, "pause_reason": "maintenance"}
    assert resume.after == {"paused": False, "pause_reason": None, "reason": "done"}


# ----------------------------------------------------------------- channels


async def test_channel_rules(world: World) -> None:
    denied = await world.moderation.set_channel_rule(MOD, CHANNEL, "deny")
    assert (denied.before, denied.after, denied.rules) == (None, "deny", {CHANNEL: "deny"})
    allowed_ = await world.moderation.set_channel_rule(MOD, OTHER_CHANNEL, "allow")
    assert allowed_.rules == {CHANNEL: "deny", OTHER_CHANNEL: "allow"}
    assert not await allowed(world, ALICE, CHANNEL)
    assert await allowed(world, ALICE, OTHER_CHANNEL)

    with pytest.raises(UserError, match=f"<#{CHANNEL}> is already denyed"):
        await world.moderation.set_channel_rule(MOD, CHANNEL, "deny")
    cleared = await world.moderation.set_channel_rule(MOD, CHANNEL, None)
    assert (cleared.before, cleared.after, cleared.rules) == (
        "deny",
        None,
        {OTHER_CHANNEL: "allow"},
    )
    with pytest.raises(UserError, match=f"<#{CHANNEL}> has no rule"):
        await world.moderation.set_channel_rule(MOD, CHANNEL, None)
    with pytest.raises(UserError, match="`allow`, `deny` or none"):
        await world.moderation.set_channel_rule(MOD, CHANNEL, "maybe")  # type: ignore[arg-type]

    listed = await world.moderation.channel_rules(GUILD)
    assert (listed.rules, listed.nsfw_only) == ({OTHER_CHANNEL: "allow"}, False)
    assert [r.action for r in await audit_rows(world)] == [
        "channel.clear",
        "channel.allow",
        "channel.deny",
    ]


async def test_nsfw_only(world: World) -> None:
    change = await world.moderation.set_nsfw_only(MOD, True)

    assert change.after.nsfw_only and (await world.moderation.channel_rules(GUILD)).nsfw_only
    with pytest.raises(UserError, match="already on"):
        await world.moderation.set_nsfw_only(MOD, True)
    assert len(await audit_rows(world)) == 1


# ----------------------------------------------------------------- jobs, cancel


async def test_jobs_by_section_and_filter(world: World) -> None:
    old = await move(world, await accept(world, ALICE), JobState.DELIVERED)
    world.clock.advance(300)
    running = await move(world, await accept(world, BOB), JobState.RUNNING)
    world.clock.advance(125)

    listing = await world.moderation.jobs(GUILD)

    assert listing.now == world.clock()
    assert [(s.name, [j.id for j in s.jobs]) for s in listing.sections] == [
        ("Unfinished", [running.id]),
        ("Recently finished", [old.id]),
    ]
    only = await world.moderation.jobs(GUILD, user_id=ALICE, state="delivered")
    assert [(s.name, [j.id for j in s.jobs]) for s in only.sections] == [("Delivered", [old.id])]
    finished = await world.moderation.jobs(GUILD, state="finished")
    assert [s.name for s in finished.sections] == ["Finished"]
    with pytest.raises(UserError, match="no job state `lost`"):
        await world.moderation.jobs(GUILD, state="lost")  # type: ignore[arg-type]


class RecordingEvents:
    def __init__(self) -> None:
        self.job_changed = AsyncMock()
        self.deliver = AsyncMock(return_value=0)


async def test_cancel_refunds_once_through_the_service(world: World) -> None:
    events = RecordingEvents()
    world.tracker.set_events(events)
    job = await move(world, await accept(world, ALICE), JobState.SUBMITTED)

    cancelled = await world.moderation.cancel(MOD, f"  {job.id} ", reason=" wrong server ")

    assert cancelled.state is JobState.CANCELLED and cancelled.cost_seconds == 5
    await world.tracker.notices_sent()
    [told] = [call.args[0] for call in events.job_changed.await_args_list]
    assert told.error == "Cancelled by a moderator: wrong server"
    with pytest.raises(Refused, match="already ended"):
        await world.moderation.cancel(MOD, job.id)
    assert await world.store.usage(GUILD, ALICE, cancelled.quota_day) == 0
    [row] = await audit_rows(world)
    assert (row.action, row.actor_id, row.target) == ("cancel", MOD.user_id, job.id)


async def test_cancel_refuses_bad_ids_before_anything(world: World) -> None:
    theirs = await accept(world, ALICE, guild_id=GUILD + 1)
    before = snapshot(world.db_path)

    with pytest.raises(UserError, match="Give the job's id"):
        await world.moderation.cancel(MOD, "   ")
    with pytest.raises(UserError, match="Give the job's id"):
        await world.moderation.cancel(MOD, "x" * 65)
    with pytest.raises(UserError, match="`reason` can be at most 200"):
        await world.moderation.cancel(MOD, theirs.id, "x" * 201)
    with pytest.raises(Refused, match="There is no job"):
        await world.moderation.cancel(MOD, theirs.id)  # another server's job

    assert snapshot(world.db_path) == before


async def test_cancel_candidates_match_ids_and_prompts(world: World) -> None:
    horse = await accept(world, ALICE, prompt="Image 1 rides a horse")
    other = await accept(world, BOB, prompt="Image 1 swims")
    await move(world, await accept(world, ALICE, prompt="Image 1 rides a horse"), JobState.FAILED)

    assert [j.id for j in await world.moderation.cancel_candidates(GUILD, " HORSE")] == [horse.id]
    assert {j.id for j in await world.moderation.cancel_candidates(GUILD, "")} == {
        horse.id,
        other.id,
    }
    assert [j.id for j in await world.moderation.cancel_candidates(GUILD, other.id[:6])] == [
        other.id
    ]


# ----------------------------------------------------------------- usage, audit


async def test_usage_report_totals_top_and_window(world: World) -> None:
    await move(world, await accept(world, ALICE, duration=5), JobState.DELIVERED)
    await move(world, await accept(world, BOB, duration=8), JobState.DELIVERED)
    await move(world, await accept(world, ALICE, duration=3), JobState.FAILED)
    await move(world, await accept(world, BOB, duration=4), JobState.CANCELLED)

    report = await world.moderation.usage(GUILD, 1)

    assert (report.days, report.since_day) == (1, utc_day(world.clock()))
    assert (report.seconds, report.jobs, report.failed, len(report.rows)) == (13, 4, 1, 2)
    assert [(row.user_id, row.seconds) for row in report.top()] == [(BOB, 8), (ALICE, 5)]
    assert report.csv_filename == f"usage-since-{report.since_day}.csv"

    world.clock.advance(2 * 86_400)
    assert (await world.moderation.usage(GUILD, 2)).rows == ()
    assert (await world.moderation.usage(GUILD, 3)).seconds == 13


@pytest.mark.parametrize("days", [0, -1, 91])
async def test_usage_refuses_days_out_of_range(world: World, days: int) -> None:
    with pytest.raises(UserError, match="`days` must be a whole number from 1 to 90"):
        await world.moderation.usage(GUILD, days)


async def test_usage_csv_names_members_safely_with_crlf_rows(world: World) -> None:
    names = ["carol", "-2+3", "@here", "\tcmd", "\r=1", "+SUM(A1)", "bob = fine", "two\nlines"]
    users = [100 + index for index in range(len(names))]
    for user_id, name in zip(users, names, strict=True):
        await accept(world, user_id, name=name)
    report = await world.moderation.usage(GUILD, 1)

    data = report.csv({users[0]: "Carol Now"}).decode("utf-8")

    assert data.startswith("user_id,member,seconds,jobs,failed\r\n")
    assert data.endswith("\r\n") and data.count("\r\n") >= len(names) + 1
    rows = {int(row["user_id"]): row["member"] for row in csv.DictReader(io.StringIO(data))}
    assert [rows[user_id] for user_id in users] == [
        "Carol Now",  # a current name wins over the recorded one
        "'-2+3",
        "'@here",
        "'\tcmd",
        "'\r=1",
        "'+SUM(A1)",
        "bob = fine",
        "two\nlines",  # quoted: still one row
    ]


def test_spreadsheet_safe_leaves_numbers_and_plain_text() -> None:
    assert spreadsheet_safe(-5) == -5
    assert spreadsheet_safe("alice") == "alice"
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert usage_csv([], {}) == b"user_id,member,seconds,jobs,failed\r\n"
    report = UsageReport(1, "2023-11-14", (UsageRow(1, 5, 1, 0, None),))
    assert report.csv() == b"user_id,member,seconds,jobs,failed\r\n1,,5,1,0\r\n"


async def test_audit_lists_the_latest_first(world: World) -> None:
    await world.moderation.ban(MOD, ALICE, "spam")
    await world.moderation.grant(MOD, ALICE, 15)

    latest = await world.moderation.audit(GUILD, 1)

    assert [entry.action for entry in latest] == ["quota.grant"]
    assert [e.action for e in await world.moderation.audit(GUILD, 25)] == ["quota.grant", "ban"]
    with pytest.raises(UserError, match="`limit` must be a whole number from 1 to 25"):
        await world.moderation.audit(GUILD, 26)
