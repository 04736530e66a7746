"""The store: migrations, legal transitions, the ledger's exactly-once rules, atomic quota."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from core.jobs import TRANSITIONS, JobOrigin, JobState, new_job_id
from core.references import Attachment, LabelledReference
from core.request import GenerationRequest, Reference
from core.store import (
    AuditRecord,
    GuildSettings,
    NewJob,
    QuotaExceeded,
    QuotaLimits,
    Store,
    TooManyJobs,
    UserOverride,
    utc_day,
)

NOW = 1_780_000_000.0  # a fixed instant: days and ledgers are deterministic
GUILD, USER = 10, 20


def make_job(
    *, user: int = USER, duration: int = 5, cost: int | None = None, job_id: str | None = None
) -> NewJob:
    image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 1000, 512, 512)
    return NewJob(
        id=job_id or new_job_id(),
        guild_id=GUILD,
        channel_id=30,
        user_id=user,
        origin=JobOrigin.COMMAND,
        request=GenerationRequest(
            prompt="Image 1 waves", image_refs=(Reference(image.url),), duration=duration, seed=7
        ),
        references=(LabelledReference(1, "image", 1, image, None),),
        cost_seconds=duration if cost is None else cost,
        deadline_at=NOW + 1800,
    )


async def test_migrations_set_user_version_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Store.open(path):
        pass
    async with Store.open(path) as reopened:  # second open applies nothing and keeps data
        await reopened.create_job(make_job(), QuotaLimits(60, 2), NOW)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1


async def test_job_round_trips_with_its_request_and_references(store: Store) -> None:
    new = make_job()
    job = await store.create_job(new, QuotaLimits(60, 2), NOW)
    assert job.state is JobState.RESERVED
    assert job.request == new.request
    assert job.references == new.references
    assert job.quota_day == utc_day(NOW)
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 5


async def test_every_illegal_transition_is_refused(store: Store) -> None:
    for source in JobState:
        for target in JobState:
            job = await store.create_job(make_job(cost=0), QuotaLimits(60, 10**6), NOW)
            # Walk the job to `source` through legal steps.
            path = {
                JobState.RESERVED: [],
                JobState.SUBMITTING: [JobState.SUBMITTING],
                JobState.SUBMITTED: [JobState.SUBMITTING, JobState.SUBMITTED],
                JobState.RUNNING: [JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING],
                JobState.COMPLETED: [JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED],
                JobState.DELIVERED: [
                    JobState.SUBMITTING,
                    JobState.SUBMITTED,
                    JobState.COMPLETED,
                    JobState.DELIVERED,
                ],
                JobState.FAILED: [JobState.FAILED],
                JobState.CANCELLED: [JobState.CANCELLED],
            }[source]
            for step in path:
                assert await store.transition(job.id, step, NOW) is not None
            moved = await store.transition(job.id, target, NOW + 1)
            assert (moved is not None) == (target in TRANSITIONS[source]), (source, target)


async def test_failure_refunds_exactly_once_even_when_raced(store: Store) -> None:
    job = await store.create_job(make_job(duration=8), QuotaLimits(60, 2), NOW)
    results = await asyncio.gather(
        store.transition(job.id, JobState.FAILED, NOW + 1, error="a"),
        store.transition(job.id, JobState.CANCELLED, NOW + 1, error="b"),
        store.transition(job.id, JobState.FAILED, NOW + 2, error="c"),
    )
    assert sum(result is not None for result in results) == 1
    entries = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    assert [(e.kind, e.seconds) for e in entries] == [("reserve", 8), ("refund", -8)]
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0


async def test_delivery_commits_and_keeps_the_charge(store: Store) -> None:
    job = await store.create_job(make_job(duration=6), QuotaLimits(60, 2), NOW)
    for step in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED):
        await store.transition(job.id, step, NOW)
    delivered = await store.transition(job.id, JobState.DELIVERED, NOW + 5, delivered_message_id=9)
    assert delivered is not None and delivered.delivered_message_id == 9
    assert delivered.delivered_at == NOW + 5
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 6
    kinds = [e.kind for e in await store.ledger_entries(GUILD, since_day=utc_day(NOW))]
    assert kinds == ["reserve", "commit"]
    assert await store.transition(job.id, JobState.FAILED, NOW + 6) is None  # refund impossible


async def test_quota_refuses_what_would_overspend(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=12, max_concurrent=5)
    await store.create_job(make_job(duration=10), limits, NOW)
    with pytest.raises(QuotaExceeded) as raised:
        await store.create_job(make_job(duration=3), limits, NOW)
    assert raised.value.remaining == 2
    assert "2 s left" in raised.value.message
    await store.create_job(make_job(duration=2), limits, NOW)  # exactly what is left


async def test_concurrency_limit_counts_unfinished_jobs(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=2)
    first = await store.create_job(make_job(), limits, NOW)
    await store.create_job(make_job(), limits, NOW)
    with pytest.raises(TooManyJobs):
        await store.create_job(make_job(), limits, NOW)
    await store.transition(first.id, JobState.CANCELLED, NOW)
    await store.create_job(make_job(), limits, NOW)


async def test_exempt_members_are_not_limited(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=1, max_concurrent=1, exempt=True)
    for _ in range(3):
        await store.create_job(make_job(duration=10), limits, NOW)
    assert await store.unfinished_count(GUILD, USER) == 3


async def test_a_thousand_concurrent_reservations_never_overspend(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=60, max_concurrent=1000)

    async def attempt(index: int) -> bool:
        try:
            await store.create_job(make_job(user=USER + index % 3, duration=5), limits, NOW)
        except QuotaExceeded:
            return False
        return True

    accepted = await asyncio.gather(*(attempt(i) for i in range(1000)))
    assert sum(accepted) == 3 * (60 // 5)
    for user in (USER, USER + 1, USER + 2):
        assert await store.usage(GUILD, user, utc_day(NOW)) == 60


async def test_grants_and_resets_are_ledger_rows(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=10, max_concurrent=10)
    await store.create_job(make_job(duration=10), limits, NOW)
    await store.grant(GUILD, USER, 20, actor_id=1, now=NOW, note="event")
    await store.create_job(make_job(duration=10), limits, NOW)  # the grant made room
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0  # 10 + 10 - 20
    with pytest.raises(ValueError, match="positive"):
        await store.grant(GUILD, USER, 0, actor_id=1, now=NOW)
    await store.create_job(make_job(duration=10), limits, NOW)
    used = await store.reset_usage(GUILD, USER, actor_id=1, now=NOW)
    assert used == 10
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0
    kinds = [e.kind for e in await store.ledger_entries(GUILD, since_day=utc_day(NOW))]
    assert kinds == ["reserve", "grant", "reserve", "reserve", "reset"]


async def test_usage_is_per_utc_day(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=5, max_concurrent=10)
    await store.create_job(make_job(duration=5), limits, NOW)
    with pytest.raises(QuotaExceeded):
        await store.create_job(make_job(duration=5), limits, NOW)
    await store.create_job(make_job(duration=5), limits, NOW + 86_400)


async def test_settings_overrides_bans_rules_and_audit_in_one_transaction(store: Store) -> None:
    audit = AuditRecord(GUILD, 1, "defaults", None, {"daily": None}, {"daily": 30})
    await store.save_guild_settings(GuildSettings(GUILD, daily_seconds=30, paused=True), NOW, audit)
    assert (await store.guild_settings(GUILD)).daily_seconds == 30
    assert (await store.guild_settings(GUILD)).paused is True
    assert (await store.guild_settings(999)) == GuildSettings(999)
    await store.save_user_override(UserOverride(GUILD, USER, daily_seconds=90), NOW)
    assert (await store.user_override(GUILD, USER)).daily_seconds == 90
    await store.ban(GUILD, USER, "spam", 1, NOW)
    ban = await store.get_ban(GUILD, USER)
    assert ban is not None and ban.reason == "spam"
    assert await store.unban(GUILD, USER, NOW) is True
    assert await store.unban(GUILD, USER, NOW) is False
    await store.set_channel_rule(GUILD, 5, "allow", NOW)
    await store.set_channel_rule(GUILD, 6, "deny", NOW)
    await store.set_channel_rule(GUILD, 6, None, NOW)
    assert await store.channel_rules(GUILD) == {5: "allow"}
    entries = await store.audit_entries(GUILD)
    assert [(e.action, e.after) for e in entries] == [("defaults", {"daily": 30})]


async def test_a_failed_write_leaves_no_audit_row(store: Store) -> None:
    audit = AuditRecord(GUILD, 1, "grant", str(USER), None, {"seconds": -5})
    with pytest.raises(ValueError):
        await store.grant(GUILD, USER, -5, actor_id=1, now=NOW, audit=audit)
    assert await store.audit_entries(GUILD) == []


async def test_usage_report_matches_the_ledger(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    made = []
    for user, duration in ((1, 5), (1, 7), (2, 3), (2, 4)):
        made.append(await store.create_job(make_job(user=user, duration=duration), limits, NOW))
    for job in made[:3]:
        for step in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED):
            await store.transition(job.id, step, NOW)
        await store.transition(job.id, JobState.DELIVERED, NOW)
    await store.transition(made[3].id, JobState.FAILED, NOW)
    report = {row.user_id: row for row in await store.usage_report(GUILD, utc_day(NOW))}
    assert report[1].seconds == 12 and report[1].jobs == 2 and report[1].failed == 0
    assert report[2].seconds == 3 and report[2].jobs == 2 and report[2].failed == 1
    ledger = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    for user in (1, 2):
        assert report[user].seconds == sum(e.seconds for e in ledger if e.user_id == user)


async def test_lookup_helpers(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    new = make_job()
    job = await store.create_job(
        NewJob(**{**{f: getattr(new, f) for f in NewJob.__slots__}, "thread_id": 77}), limits, NOW
    )
    await store.transition(job.id, JobState.SUBMITTING, NOW)
    await store.transition(job.id, JobState.SUBMITTED, NOW, task_id="task-1")
    assert await store.known_task_ids(["task-1", "task-2", "task-1"]) == {"task-1"}
    assert await store.ids_in_state(JobState.SUBMITTED) == [job.id]
    assert await store.unfinished_states() == [(job.id, JobState.SUBMITTED)]
    assert (await store.latest_job_in_thread(77)).id == job.id
    with pytest.raises(ValueError):
        await store.transition(job.id, JobState.RUNNING, NOW, state="delivered")


async def test_a_write_is_visible_to_the_next_read_even_under_a_storm_of_reads(
    store: Store,
) -> None:
    # Reads overlapping on one connection would keep an old snapshot open, so a job just created
    # could look missing to the tracker (and be dropped). Every read must see every commit.
    stop = asyncio.Event()

    async def keep_reading() -> None:
        while not stop.is_set():
            await store.unfinished_count(GUILD, USER)
            await store.get_job("no-such-job")

    readers = [asyncio.create_task(keep_reading()) for _ in range(20)]
    try:
        limits = QuotaLimits(daily_seconds=10**9, max_concurrent=10**9)

        async def create_then_read(index: int) -> bool:
            job = await store.create_job(make_job(user=index), limits, NOW)
            return await store.get_job(job.id) is not None

        seen = await asyncio.gather(*(create_then_read(i) for i in range(300)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert all(seen)


# --- the stored request, and databases written before it ---------------------------------------


def test_the_stored_request_round_trips_and_never_carries_the_webhook_url() -> None:
    request = GenerationRequest(
        prompt="Image 1 and Video 1 dance",
        image_refs=(Reference("https://cdn.example/a.png", "https://cdn.example/a.mp3"),),
        video_refs=(Reference("https://cdn.example/b.mp4"),),
        negative_prompt="rain",
        start_image_url="https://cdn.example/s.png",
        aspect_ratio="9:16",
        resolution="720P",
        duration=8,
        seed=0,
        prompt_extend=False,
        webhook_url="https://bot.example/webhooks/wan/secret-token-0123456789",
    )
    stored = json.loads(json.dumps(request.to_stored()))
    assert stored["v"] == 1 and "secret-token" not in json.dumps(stored)
    loaded = GenerationRequest.from_stored(stored)
    assert loaded == request and loaded.webhook_url is None
    assert loaded.to_json() == request.replace(webhook_url=None).to_json()  # the same body
    with pytest.raises(ValueError, match="version 2"):
        GenerationRequest.from_stored({**stored, "v": 2})


OLD_SCHEMA_VERSION = 3  # the last migration before requests had a stored form of their own


def old_database(path: Path, jobs: list[tuple[NewJob, str, str | None]]) -> None:
    """A database as the code before migration 004 wrote it, left as a crash leaves it.

    Each job is (job, final state, webhook token): the request stored as the API body with the
    webhook URL in it, inserted and moved the way the old store did. The files are copied while
    the connection is open, so the WAL still holds every page (the token was found there).
    """
    live = path.with_name("live.sqlite3")
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    folder = resources.files("core.migrations")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql") and int(entry.name[:3]) <= OLD_SCHEMA_VERSION:
            conn.executescript(entry.read_text(encoding="utf-8"))
    conn.execute(f"PRAGMA user_version = {OLD_SCHEMA_VERSION}")
    for job, state, token in jobs:
        url = None if token is None else f"https://bot.example/webhooks/wan/{token}"
        conn.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, origin, parent_job_id,"
            " state, request_json, references_json, cost_seconds, quota_day,"
            " webhook_token_hash, deadline_at, thread_id, created_at, updated_at,"
            " reference_copies_json)"
            " VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.guild_id,
                job.channel_id,
                job.user_id,
                job.origin.value,
                None,
                json.dumps(job.request.replace(webhook_url=url).to_json()),
                json.dumps([ref.to_json() for ref in job.references]),
                job.cost_seconds,
                utc_day(NOW),
                None if token is None else hashlib.sha256(token.encode()).hexdigest(),
                job.deadline_at,
                None,
                NOW,
                NOW,
                "{}",
            ),
        )
        # The old store's transitions rewrote the row, leaving old copies in the file's pages.
        for step, name in enumerate(("submitting", "submitted", "running", "completed")):
            if state == "reserved" or (state == "submitted" and step > 1):
                break
            conn.execute(
                f"UPDATE jobs SET state = ?, {name}_at = ?, task_id = ? WHERE id = ?",
                (name, NOW + 10 * (step + 1), f"task-{job.id}", job.id),
            )
        if state == "delivered":
            conn.execute(
                "UPDATE jobs SET state = 'delivered', delivered_at = ? WHERE id = ?", (NOW, job.id)
            )
    try:
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{live}{suffix}", f"{path}{suffix}")
    finally:
        conn.close()


def disk_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


async def test_a_database_from_before_the_stored_form_loads_and_loses_its_tokens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    waiting, running, done, plain = (make_job(user=USER + n) for n in range(4))
    tokens = {job.id: secrets.token_urlsafe(32) for job in (waiting, running, done)}
    old_database(
        path,
        [
            (waiting, "reserved", tokens[waiting.id]),
            (running, "submitted", tokens[running.id]),
            (done, "delivered", tokens[done.id]),
            (plain, "delivered", None),  # accepted while webhooks were off
        ],
    )
    on_disk = disk_bytes(path)
    assert all(token.encode() in on_disk for token in tokens.values())  # as the issue found

    async with Store.open(path) as store:
        for new in (waiting, running, done, plain):
            job = await store.get_job(new.id)
            assert job is not None
            assert job.request == new.request and job.request.webhook_url is None
            assert job.references == new.references
            token = tokens.get(new.id)
            assert job.webhook_token_hash == (None if token is None else digest_of(token))
        # A webhook for a job submitted before the upgrade still finds it by the kept digest.
        assert (await store.job_by_webhook_token_hash(digest_of(tokens[running.id]))).id == (
            running.id
        )
        assert (await store.get_job(running.id)).state is JobState.SUBMITTED
        # Old rows (the API body, version 0) and new ones (version 1) count for run times alike.
        fresh = await store.create_job(make_job(user=99), QuotaLimits(60, 2), NOW)
        await store.transition(fresh.id, JobState.SUBMITTING, NOW)
        await store.transition(fresh.id, JobState.SUBMITTED, NOW, task_id="task-fresh")
        await store.transition(fresh.id, JobState.COMPLETED, NOW + 7)
        assert sorted(await store.recent_run_times("1080P", 5)) == [7.0, 20.0, 20.0]

        on_disk = disk_bytes(path)
        assert not [job_id for job_id, token in tokens.items() if token.encode() in on_disk]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] >= 4
            rows = dict(conn.execute("SELECT id, request_json FROM jobs").fetchall())
        assert all("webhook_url" not in raw for raw in rows.values())
        assert json.loads(rows[fresh.id])["v"] == 1 and "v" not in json.loads(rows[plain.id])


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
