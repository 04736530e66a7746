"""What the store's tests share: a fixed instant and a job to accept."""

from __future__ import annotations

from core.jobs import JobOrigin, new_job_id
from core.references import Attachment, LabelledReference
from core.request import GenerationRequest, Reference
from core.store import NewJob

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
