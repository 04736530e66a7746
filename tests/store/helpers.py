"""What the store's tests share: a fixed instant, a job to accept, and other processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from core.jobs import JobOrigin, new_job_id
from core.references import Attachment, LabelledReference
from core.request import GenerationRequest, Reference
from core.store import NewJob, Store

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


@asynccontextmanager
async def processes(store: Store, database: Path | str, count: int) -> AsyncIterator[list[Store]]:
    """``count`` stores on ``store``'s database, as that many bot processes would have: on
    PostgreSQL ``store`` and ``count - 1`` more, each with its own pool; on SQLite ``store``
    alone, ``count`` times (one process is all SQLite allows)."""
    if not store.is_postgres:
        yield [store] * count
        return
    async with AsyncExitStack() as stack:
        others = [await stack.enter_async_context(Store.open(database)) for _ in range(count - 1)]
        yield [store, *others]
