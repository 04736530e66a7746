"""Chaos (issue 12): a network of three bot processes on one PostgreSQL database, killed with
``kill -9`` over and over while members make videos, loses nothing and does nothing twice.

The world: one fresh PostgreSQL database, a local Discord recommending 3 shards with 6 servers
spread over them, and 3 ``python bot.py`` processes (``SHARD_COUNT=3``, ``SHARD_IDS`` 0, 1, 2)
with the default settings (only what every e2e test sets: the fakes' URLs, quotas roomy enough),
each serving ``/metrics`` on a port of its own. 12 members (two per server) ask for 105 videos
with ``/video`` over the run: up to ``IN_FLIGHT`` jobs moving at once, each member within
``QUOTA_MAX_CONCURRENT``; jobs stuck behind a dead process's lease do not hold the others back.

Five rounds of ``kill -9``, round n once 15·n jobs have finished, each killed process restarted
at once: rounds 1, 3 and 5 kill the process holding the API budget (the one whose
``wanbot_api_budget_held`` is 1); rounds 2 and 4 kill a process in the middle of a delivery: the
local Discord holds the next video upload (round 2: before posting it; round 4: posted, only the
answer held, so the bot dies not knowing), and the process holding that job's lease (the job in
state ``completed``) is killed. A process's servers get no commands from just before its kill
until it is back (a member there would see "the application did not respond").

Figures, printed and asserted:

- jobs lost: every job (each acceptance, every row) ends delivered, or failed and refunded with
  a notice in Discord;
- duplicate posts: one video message per delivered job, none for a failed one;
- double charges or refunds: per job one ``reserve`` and one of ``commit``/``refund`` in the
  ledger, and its rows sum to what it cost (its cost if delivered, 0 if refunded);
- API creates per job (the fake API's requests, matched by prompt): at most 1;
- peak API rate: the most requests the fake API received in any 1-second window (sliding), from
  every process: at most ``WAN_MAX_RPS``. The fake API runs in a process of its own, so the
  arrival times it records are not held up by this test's event loop (which does stall for
  100 ms and more on a busy machine);
- lease takeover: for every unfinished job whose lease the killed process held (read from the
  database right after the kill), the time from the kill until the database shows another owner
  (or the job finished), polled every 50 ms: at most ``LEASE_SECONDS`` + 5 s;
- budget takeover: the time from the kill of the budget holder until a scrape of another
  process's ``/metrics`` shows ``wanbot_api_budget_held`` 1 (every live process scraped at once,
  again and again; the holder sets it once its API calls may start, one limiter window after it
  took the lock; the time taken when the scrape returns, so an upper bound): at most 2 s. Never
  two processes holding it in one scrape.

It takes about a minute (58-62 s on an idle 2-core machine, up to 87 s beside a CPU hog).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.config import Settings
from tests.e2e.harness import ACCEPTED, WAIT, BotProcess, Options, World, png
from tests.fakes.discord import FakeGuild, FakeUser
from tests.fakes.wan_server import API_PATH, RecordedRequest

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SHARDS = 3
GUILDS = 6
MEMBERS = 12
JOBS = 105
ROUNDS = 5
# Unfinished jobs the members keep at once, besides those waiting for a dead process's lease
# to expire (members go on asking meanwhile, within their own QUOTA_MAX_CONCURRENT).
IN_FLIGHT = 16

FINISHED = ("delivered", "failed", "cancelled")
DELIVERY_MARK = "your video is ready! (job `"
JOB_IN_TEXT = re.compile(r"\(job `([0-9a-f]+)`\)")
BUDGET_GAUGE = "wanbot_api_budget_held"
BUDGET_TAKEOVER_LIMIT = 2.0
LEASE_SLACK = 5.0
DB_POLL = 0.05  # seconds between the test's reads of the database while it waits


def default_setting(name: str) -> Any:
    """What a fresh install runs with: the default of a :class:`Settings` field."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name)


MAX_RPS = float(default_setting("api_max_rps"))
LEASE_SECONDS = float(default_setting("lease_seconds"))


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(
        shard_count=SHARDS,
        max_concurrency=SHARDS,  # one IDENTIFY bucket per shard: restarts need not queue
        guilds=GUILDS,
        postgres=True,
        http=True,
        wan_process=True,  # its request times are not held up by this test's event loop
        env={"SHARD_COUNT": str(SHARDS), "SHARD_IDS": "0"},
    )


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Asked:
    """One accepted /video: who asked where, and the prompt that names it at the API."""

    number: int
    member: FakeUser
    guild: FakeGuild
    prompt: str


@dataclass
class Kill:
    """One ``kill -9`` and what it took for the others to take over."""

    round: int
    why: str  # "budget holder" or "mid-delivery (...)"
    victim: str
    at: float  # time.time() just before the signal
    held_budget: bool
    budget_takeover: float | None = None  # seconds; None: it did not hold the budget
    budget_to: str = ""
    leases: dict[str, float] = field(default_factory=dict)  # job → seconds until taken over
    lease_expiry: dict[str, float] = field(default_factory=dict)  # job → lease_until - kill
    delivery_job: str | None = None

    def line(self) -> str:
        budget = (
            f"budget to {self.budget_to} in {self.budget_takeover:.2f} s"
            if self.budget_takeover is not None
            else "budget not held"
        )
        job = f" of job {self.delivery_job}" if self.delivery_job else ""
        leases = "it held no job's lease"
        if self.leases:
            taken = max(self.leases.values())
            late = max(s - self.lease_expiry[j] for j, s in self.leases.items())
            leases = (
                f"{len(self.leases)} leased jobs taken over within {taken:.2f} s"
                f" (at most {late:.2f} s after their leases expired)"
            )
        return (
            f"chaos: round {self.round}: killed {self.victim}, {self.why}{job}; {leases}; {budget}"
        )


def owner_pid(owner: str | None) -> int | None:
    """The process id in a lease owner (``host:pid:random``)."""
    if owner is None:
        return None
    parts = owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


class Chaos:
    """The run: members asking (``ask_all``), the rounds of kills (``drive``) and the watchers
    each kill starts (budget and lease takeovers), all in one task group."""

    def __init__(self, world: World, processes: list[BotProcess]) -> None:
        self.world = world
        self.processes = processes
        self.members = [
            (world.new_user("member"), world.guilds[i % GUILDS]) for i in range(MEMBERS)
        ]
        self.max_concurrent = int(world.process.env["QUOTA_MAX_CONCURRENT"])
        self.image = png(320, 320)  # made once: the fakes share this event loop
        self.asked: dict[str, Asked] = {}  # job id → its request
        self.per_member: Counter[int] = Counter()  # requests sent per member
        self.waiting: Counter[int] = Counter()  # member id → commands not yet answered
        self.answering: Counter[int] = Counter()  # guild id → commands not yet answered
        self.down: set[int] = set()  # guilds whose process is down or about to be
        self.kills: list[Kill] = []
        self.two_holders: list[str] = []  # observations of two processes holding the budget
        self.dead_owners: set[str] = set()  # lease owners (processes) killed

    def name(self, process: BotProcess) -> str:
        return process.log_path.stem

    # ------------------------------------------------------------------ members asking

    async def ask_all(self, group: asyncio.TaskGroup) -> None:
        for number in range(JOBS):
            member, guild = await self.world.until_async(
                self.next_member, 90, "a member with room for another job", every=DB_POLL
            )
            self.per_member[member.id] += 1
            self.waiting[member.id] += 1
            self.answering[guild.id] += 1
            group.create_task(self.ask(number, member, guild))

    async def next_member(self) -> tuple[FakeUser, FakeGuild] | None:
        rows = await self.world.query(
            "SELECT user_id, lease_owner FROM jobs"
            " WHERE state NOT IN ('delivered', 'failed', 'cancelled')"
        )
        unfinished = Counter(int(row["user_id"]) for row in rows)
        moving = sum(1 for row in rows if row["lease_owner"] not in self.dead_owners)
        if moving + sum(self.waiting.values()) >= IN_FLIGHT:
            return None
        for member, guild in sorted(self.members, key=lambda mg: self.per_member[mg[0].id]):
            busy = unfinished.get(member.id, 0) + self.waiting[member.id]
            if guild.id not in self.down and busy < self.max_concurrent:
                return member, guild
        return None

    async def ask(self, number: int, member: FakeUser, guild: FakeGuild) -> None:
        prompt = f"Image 1 waves hello, chaos job {number:03d} in {guild.name}"
        reference = self.world.file(self.image, f"hello{number}.png", "image/png")
        try:
            interaction_id = await self.world.discord.dispatch_slash_command(
                "video",
                {"prompt": prompt, "ref1": reference},
                user=member,
                channel_id=guild.channel_id,
            )
            reply = await self.world.until(
                lambda: self.world.answer_of(interaction_id), WAIT, f"an answer to /video {number}"
            )
        finally:
            self.waiting[member.id] -= 1
            self.answering[guild.id] -= 1
        accepted = ACCEPTED.search(reply.text)
        assert accepted is not None, f"/video {number} by {member.username}: {reply.text!r}"
        self.asked[accepted.group(1)] = Asked(number, member, guild, prompt)

    # ------------------------------------------------------------------ the rounds

    async def drive(self, group: asyncio.TaskGroup) -> None:
        """The rounds, spread over the run: round n once n/7 of the jobs have finished (so the
        first kill meets a network in its stride, and the last leaves work to finish)."""
        for number in range(1, ROUNDS + 1):
            threshold = number * JOBS // (ROUNDS + 2)

            async def reached(count: int = threshold) -> bool:
                return await self.finished() >= count

            await self.world.until_async(reached, 120, f"{threshold} jobs finished", every=DB_POLL)
            if number % 2:
                await self.kill_budget_holder(number, group)
            else:
                await self.kill_mid_delivery(number, group, posted=number % 4 == 0)

    async def finished(self) -> int:
        rows = await self.world.query(
            "SELECT count(*) AS n FROM jobs WHERE state IN ('delivered', 'failed', 'cancelled')"
        )
        return int(rows[0]["n"])

    async def holders(self) -> list[BotProcess]:
        """The live processes whose budget gauge reads 1 (scraped at once)."""
        live = [p for p in self.processes if p.running]
        scraped = await asyncio.gather(*(self.world.metrics(p) for p in live))
        found = [p for p, samples in zip(live, scraped, strict=True) if samples.get(BUDGET_GAUGE)]
        if len(found) > 1:
            self.two_holders.append(", ".join(self.name(p) for p in found))
        return found

    async def kill_budget_holder(self, number: int, group: asyncio.TaskGroup) -> None:
        async def one_holder() -> BotProcess | None:
            found = await self.holders()
            return found[0] if len(found) == 1 else None

        holder = await self.world.until_async(one_holder, WAIT, "one process holding the budget")
        await self.kill(number, "budget holder", holder, group, held_budget=True)

    async def kill_mid_delivery(
        self, number: int, group: asyncio.TaskGroup, *, posted: bool
    ) -> None:
        hold = self.world.discord.hold_uploads(posted=posted, content=DELIVERY_MARK)
        try:
            bodies = await self.world.until(lambda: hold.bodies, 60, "a video upload to hold")
            found = JOB_IN_TEXT.search(str(bodies[0].get("content")))
            assert found is not None, bodies[0]
            job_id = found.group(1)
            [job] = await self.world.query(
                "SELECT state, lease_owner FROM jobs WHERE id = :id", id=job_id
            )
            assert job["state"] == "completed", f"job {job_id} uploading in state {job['state']}"
            pid = owner_pid(job["lease_owner"])
            [victim] = [p for p in self.processes if p.pid is not None and p.pid == pid]
            held_budget = victim in await self.holders()
            how = "posted, answer held" if posted else "upload held"
            kill = await self.kill(
                number, f"mid-delivery ({how})", victim, group, held_budget=held_budget
            )
            kill.delivery_job = job_id
        finally:
            hold.release()

    async def kill(
        self,
        number: int,
        why: str,
        victim: BotProcess,
        group: asyncio.TaskGroup,
        *,
        held_budget: bool,
    ) -> Kill:
        pid = victim.pid
        guilds = {g.id for g in self.world.guilds_of(victim)}
        self.down |= guilds  # no more commands there; wait for those under way to be answered
        await self.world.until(
            lambda: not any(self.answering[g] for g in guilds), WAIT, "commands answered"
        )
        kill = Kill(number, why, self.name(victim), time.time(), held_budget)
        self.kills.append(kill)
        if held_budget:
            group.create_task(self.watch_budget(kill, victim))
        await self.world.crash(victim)
        # Read after the kill: the dead process can change nothing any more.
        leased = await self.world.query(
            "SELECT id, lease_owner, lease_until FROM jobs"
            " WHERE lease_owner LIKE :owner AND state NOT IN ('delivered', 'failed', 'cancelled')",
            owner=f"%:{pid}:%",
        )
        self.dead_owners |= {str(row["lease_owner"]) for row in leased}
        group.create_task(self.watch_leases(kill, leased))
        await self.world.start(victim)
        self.down -= guilds
        return kill

    async def watch_budget(self, kill: Kill, victim: BotProcess) -> None:
        async def taken() -> tuple[BotProcess, float] | None:
            found = [p for p in await self.holders() if p is not victim]
            return (found[0], time.time()) if found else None

        holder, at = await self.world.until_async(taken, WAIT, "another process to take the budget")
        kill.budget_takeover = at - kill.at
        kill.budget_to = self.name(holder)

    async def watch_leases(self, kill: Kill, leased: list[dict[str, Any]]) -> None:
        owners = {str(row["id"]): row["lease_owner"] for row in leased}
        kill.lease_expiry = {str(r["id"]): float(r["lease_until"]) - kill.at for r in leased}

        async def all_taken() -> bool:
            rows = await self.world.query("SELECT id, state, lease_owner FROM jobs")
            now = time.time()
            for row in rows:
                job_id = str(row["id"])
                if job_id not in owners or job_id in kill.leases:
                    continue
                if row["state"] in FINISHED or row["lease_owner"] != owners[job_id]:
                    kill.leases[job_id] = now - kill.at
            return len(kill.leases) == len(owners)

        await self.world.until_async(
            all_taken,
            LEASE_SECONDS + 3 * LEASE_SLACK,
            f"round {kill.round}'s leases taken over",
            every=DB_POLL,
        )

    async def all_finished(self) -> bool:
        rows = await self.world.query("SELECT state FROM jobs")
        return len(rows) >= len(self.asked) and all(row["state"] in FINISHED for row in rows)


# ----------------------------------------------------------------------------- the figures


def busiest_second(requests: Iterable[RecordedRequest]) -> list[RecordedRequest]:
    """The most requests within any 1-second window (sliding, not a fixed grid)."""
    ordered = sorted(requests, key=lambda r: r.at)
    best: list[RecordedRequest] = []
    start = 0
    for end, request in enumerate(ordered):
        while ordered[start].at <= request.at - 1.0:
            start += 1
        if end - start + 1 > len(best):
            best = ordered[start : end + 1]
    return best


def timeline(requests: list[RecordedRequest], kills: list[Kill]) -> str:
    """Requests as times after the last kill before them, for a failure message."""
    out = []
    for request in requests:
        before = [k for k in kills if k.at <= request.at]
        since = (
            f"round {before[-1].round} kill + {request.at - before[-1].at:.3f} s" if before else ""
        )
        out.append(f"{request.at:.3f} {request.method} {request.path[-40:]} {since}")
    return "\n".join(out)


def listed(values: Iterable[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values) or "none"


@dataclass
class Figures:
    """What the run did, from the database, the local Discord and the fake API's log."""

    jobs: int
    delivered: list[str]
    refunded: list[str]  # failed or cancelled, refunded, with a notice in Discord
    lost: list[str]
    videos: int
    duplicates: int
    reserves: int
    commits: int
    refunds: int
    double_charges: list[str]
    double_refunds: list[str]
    unbalanced: list[str]  # rows not summing to the job's cost (0 if refunded)
    creates: int
    tasks: int
    most_creates: int  # per job
    most_tasks: int
    unmatched_creates: int  # creates whose prompt is no accepted job's
    requests: int
    busiest: list[RecordedRequest]  # the requests of the busiest second
    leases: list[float]  # kill → taken over, every leased job of every kill
    budget: list[float]  # kill → new holder, every kill of a holder

    def lines(self, run: Chaos, took: float) -> list[str]:
        return [
            f"chaos: {self.jobs} jobs by {MEMBERS} members in {GUILDS} servers,"
            f" {len(run.processes)} processes (shards 0-{SHARDS - 1}),"
            f" {len(run.kills)} kill -9 rounds, {took:.0f} s",
            *(kill.line() for kill in run.kills),
            f"chaos: jobs lost: {len(self.lost)} ({len(self.delivered)} delivered,"
            f" {len(self.refunded)} failed and refunded with a notice)",
            f"chaos: duplicate posts: {self.duplicates} ({self.videos} video messages for"
            f" {len(self.delivered)} delivered jobs)",
            f"chaos: double charges: {len(self.double_charges)}, double refunds:"
            f" {len(self.double_refunds)}, jobs whose ledger rows do not sum to their cost:"
            f" {len(self.unbalanced)} ({self.reserves} reserves, {self.commits} commits,"
            f" {self.refunds} refunds)",
            f"chaos: API creates per job: at most {self.most_creates} ({self.creates} creates,"
            f" {self.tasks} tasks, {self.unmatched_creates} for no job)",
            f"chaos: peak API rate: {len(self.busiest)} requests in a 1 s window, all processes"
            f" (WAN_MAX_RPS {MAX_RPS:g}); {self.requests} API requests",
            f"chaos: lease takeover: at most {max(self.leases, default=0):.2f} s from the kill,"
            f" {len(self.leases)} leased jobs (limit LEASE_SECONDS {LEASE_SECONDS:g}"
            f" + {LEASE_SLACK:g} s)",
            f"chaos: budget takeover: {listed(self.budget)} s from the kill to the new holder's"
            f" {BUDGET_GAUGE} 1 (limit {BUDGET_TAKEOVER_LIMIT:g} s); two holders at once:"
            f" {len(run.two_holders)}",
        ]


async def figures(world: World, run: Chaos) -> Figures:
    jobs = {str(r["id"]): r for r in await world.query("SELECT id, state, cost_seconds FROM jobs")}
    ledger: dict[str, list[tuple[str, int]]] = {}
    for row in await world.query(
        "SELECT job_id, kind, seconds FROM quota_ledger WHERE job_id IS NOT NULL ORDER BY id"
    ):
        ledger.setdefault(str(row["job_id"]), []).append((str(row["kind"]), int(row["seconds"])))
    kinds = {job_id: Counter(kind for kind, _ in ledger.get(job_id, [])) for job_id in jobs}

    delivered = [j for j, row in jobs.items() if row["state"] == "delivered"]
    refunded = [
        j
        for j, row in jobs.items()
        if row["state"] in ("failed", "cancelled")
        and kinds[j]["refund"]
        and world.failure_notices(j)
    ]
    # Every acceptance a member saw and every job in the database.
    lost = sorted((set(run.asked) | set(jobs)) - set(delivered) - set(refunded))
    videos = {j: len(world.deliveries(j)) for j in jobs}
    duplicates = sum(n - 1 if j in delivered else n for j, n in videos.items() if n)

    def owes(job_id: str) -> int:
        return int(jobs[job_id]["cost_seconds"]) if job_id in delivered else 0

    assert world.wan_process is not None
    requests = await world.wan_process.requests()
    made = await world.wan_process.tasks()
    sent = [r for r in requests if r.method == "POST" and r.path == API_PATH]
    number_of = {asked.prompt: asked.number for asked in run.asked.values()}
    creates = Counter(
        number_of.get(str(r.json.get("prompt")) if isinstance(r.json, dict) else "", -1)
        for r in sent
    )
    tasks = Counter(number_of.get(str(t["body"].get("prompt")), -1) for t in made)
    matched = [n for n in creates.elements() if n >= 0]
    return Figures(
        jobs=len(set(run.asked) | set(jobs)),
        delivered=delivered,
        refunded=refunded,
        lost=lost,
        videos=sum(videos.values()),
        duplicates=duplicates,
        reserves=sum(c["reserve"] for c in kinds.values()),
        commits=sum(c["commit"] for c in kinds.values()),
        refunds=sum(c["refund"] for c in kinds.values()),
        double_charges=[j for j, c in kinds.items() if c["reserve"] > 1 or c["commit"] > 1],
        double_refunds=[
            j for j, c in kinds.items() if c["refund"] > 1 or (c["refund"] and c["commit"])
        ],
        unbalanced=[
            j
            for j in jobs
            if kinds[j]["reserve"] != 1 or sum(s for _, s in ledger.get(j, [])) != owes(j)
        ],
        creates=len(sent),
        tasks=len(made),
        most_creates=max(Counter(matched).values(), default=0),
        most_tasks=max((n for k, n in tasks.items() if k >= 0), default=0),
        unmatched_creates=creates[-1] + tasks[-1],
        requests=len(requests),
        busiest=busiest_second(requests),
        leases=[s for kill in run.kills for s in kill.leases.values()],
        budget=[k.budget_takeover for k in run.kills if k.budget_takeover is not None],
    )


async def test_a_network_killed_five_times_loses_nothing_and_does_nothing_twice(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    others = [world.add_bot({"SHARD_IDS": str(i)}, name=str(i)) for i in range(1, SHARDS)]
    await world.sync_commands()  # global commands: DEV_GUILD_ID is only the first server
    for process in others:
        await world.start(process)
    processes = [world.process, *others]
    assert world.discord.connected_shards == {(i, SHARDS) for i in range(SHARDS)}
    run = Chaos(world, processes)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(run.ask_all(group))
            group.create_task(run.drive(group))
        await world.until_async(run.all_finished, 60, "every job finished", every=DB_POLL)
        for process in processes:
            code = await world.stop(process)
            assert code == 0, f"{run.name(process)} exited with {code} on SIGTERM"
    except BaseException:
        for process in others:  # the first process's log is attached by the fixture
            print(f"----- {process.log_path.name} (tail)\n{process.log_text()[-20_000:]}")
        raise
    took = time.monotonic() - began
    found = await figures(world, run)
    with capsys.disabled():
        print("\n" + "\n".join(found.lines(run, took)))

    assert found.jobs == JOBS and len(run.asked) == JOBS
    assert found.lost == [], f"jobs lost: {found.lost}"
    assert found.duplicates == 0
    assert (found.double_charges, found.double_refunds, found.unbalanced) == ([], [], [])
    assert found.unmatched_creates == 0
    assert found.most_creates <= 1 and found.most_tasks <= 1
    assert len(found.busiest) <= MAX_RPS, timeline(found.busiest, run.kills)
    assert [k.held_budget for k in run.kills[::2]] == [True] * 3  # rounds 1, 3, 5
    assert all(k.delivery_job for k in run.kills[1::2])  # rounds 2, 4
    assert found.leases and max(found.leases) <= LEASE_SECONDS + LEASE_SLACK
    assert len(found.budget) >= 3 and max(found.budget) <= BUDGET_TAKEOVER_LIMIT
    assert run.two_holders == []
