"""Copying a SQLite database into an empty PostgreSQL one: every row arrives, ids go on after
the copied ones, and a target that has rows already is refused with nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.jobs import JobState
from core.store import QuotaLimits, Store, utc_day
from core.store._copy import CopyRefused, copy_sqlite_to_postgres
from tests.postgres import fresh_database
from tests.store.helpers import NOW, make_job
from tests.store.legacy import DAY, SNOWFLAKE, fill, legacy_database


@pytest.fixture
async def postgres() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def filled(tmp_path: Path) -> Path:
    """An old file (legacy schema, every kind of row), then used by today's store too."""
    path = tmp_path / "bot.sqlite3"
    conn = legacy_database(path, 7)
    fill(conn)
    conn.close()
    async with Store.open(path) as store:
        job = await store.create_job(make_job(user=40), QuotaLimits(60, 2), NOW)
        await store.claim_jobs("local", [JobState.RESERVED], NOW, 20, 1)
        await store.transition(job.id, JobState.SUBMITTING, NOW + 1)
        await store.grant(SNOWFLAKE, 40, 10, actor_id=1, now=NOW)
    return path


async def test_every_row_arrives_and_new_ids_follow_the_copied_ones(
    filled: Path, postgres: str
) -> None:
    told: list[tuple[str, int]] = []
    report = await copy_sqlite_to_postgres(
        filled, postgres, batch=3, progress=lambda table, rows: told.append((table, rows))
    )
    assert report.rows["jobs"] == 5 and report.rows["quota_ledger"] == 10
    assert report.rows["characters"] == 2 and report.rows["audit_log"] == 2
    assert [table for table, _ in told] == list(report.rows)
    async with Store.open(filled) as old, Store.open(postgres) as new:
        assert new.is_postgres
        old_jobs = await old.jobs_in_guild(SNOWFLAKE, limit=50)
        assert sorted(await new.jobs_in_guild(SNOWFLAKE, limit=50), key=lambda j: j.id) == sorted(
            old_jobs, key=lambda j: j.id
        )
        for guild in (SNOWFLAKE, 10):
            assert await new.ledger_entries(guild, since_day=DAY) == await old.ledger_entries(
                guild, since_day=DAY
            )
            assert await new.audit_entries(guild) == await old.audit_entries(guild)
        assert await new.guild_settings(SNOWFLAKE) == await old.guild_settings(SNOWFLAKE)
        assert await new.guild_settings(5) == await old.guild_settings(5)
        assert await new.characters_for(SNOWFLAKE, 21) == await old.characters_for(SNOWFLAKE, 21)
        assert await new.channel_rules(SNOWFLAKE) == await old.channel_rules(SNOWFLAKE)
        assert await new.get_ban(SNOWFLAKE, 23) == await old.get_ban(SNOWFLAKE, 23)
        assert await new.written_prompt(old_jobs[-1].id) == await old.written_prompt(
            old_jobs[-1].id
        )
        # Leases came along: the job "local" holds on SQLite is held on PostgreSQL too.
        assert await new.renew_leases("local", NOW, 20) == await old.renew_leases("local", NOW, 20)
        # The sequences were moved: a new ledger row gets the next id, not a copied one.
        await new.grant(SNOWFLAKE, 21, 5, actor_id=1, now=NOW)
        ids = [entry.id for entry in await new.ledger_entries(SNOWFLAKE, since_day=utc_day(NOW))]
        assert len(ids) == len(set(ids)) and ids[-1] == max(ids) == report.rows["quota_ledger"] + 1


async def test_a_target_with_rows_is_refused_and_left_as_it_was(
    filled: Path, postgres: str
) -> None:
    await copy_sqlite_to_postgres(filled, postgres)
    with pytest.raises(
        CopyRefused, match=r"not empty: it has rows in .*jobs \(5\), .*quota_ledger \(10\)"
    ):
        await copy_sqlite_to_postgres(filled, postgres)
    async with Store.open(postgres) as store:
        assert len(await store.jobs_in_guild(SNOWFLAKE, limit=50)) == 4  # one more in guild 10


async def test_only_postgresql_is_a_target_and_the_source_must_exist(
    tmp_path: Path, filled: Path
) -> None:
    with pytest.raises(CopyRefused, match="must be PostgreSQL"):
        await copy_sqlite_to_postgres(filled, f"sqlite:///{tmp_path / 'other.sqlite3'}")
    with pytest.raises(CopyRefused, match="postgresql://"):
        await copy_sqlite_to_postgres(filled, "mysql://db/bot")
    with pytest.raises(CopyRefused, match="no SQLite database at"):
        await copy_sqlite_to_postgres(tmp_path / "missing.sqlite3", "postgresql://db/bot")
    assert not (tmp_path / "missing.sqlite3").exists()
