"""Jobs: the states a request moves through and which moves are legal.

``reserved → submitting → submitted → (running) → completed → delivered``; ``failed`` and
``cancelled`` are reachable from every unfinished state and refund the reservation exactly once.
The store enforces these transitions with ``UPDATE … WHERE state IN (…)``.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from typing import Final

from core.labels import LabelledReference
from core.request import GenerationRequest


class JobState(enum.StrEnum):
    RESERVED = "reserved"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES

    @property
    def is_in_flight(self) -> bool:
        """Submitted to the API and not yet finished there."""
        return self in (JobState.SUBMITTED, JobState.RUNNING)


class JobOrigin(enum.StrEnum):
    COMMAND = "command"
    REROLL = "reroll"
    REPLY = "reply"


FINISHED_STATES: Final = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})
UNFINISHED_STATES: Final = frozenset(set(JobState) - FINISHED_STATES)

# Where each state may go next. failed/cancelled refund; delivered commits.
TRANSITIONS: Final[dict[JobState, frozenset[JobState]]] = {
    JobState.RESERVED: frozenset({JobState.SUBMITTING, JobState.FAILED, JobState.CANCELLED}),
    # submitting → reserved: the API certainly did not take it (429/503 after retries); retry later.
    JobState.SUBMITTING: frozenset(
        {JobState.RESERVED, JobState.SUBMITTED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUBMITTED: frozenset(
        {JobState.RUNNING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def sources_of(target: JobState) -> frozenset[JobState]:
    """Every state from which ``target`` may be reached."""
    return frozenset(state for state, nexts in TRANSITIONS.items() if target in nexts)


def new_job_id() -> str:
    """A short id users can type (``/admin cancel``) and that fits a Discord nonce (≤ 25)."""
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    guild_id: int
    channel_id: int
    user_id: int
    origin: JobOrigin
    parent_job_id: str | None
    state: JobState
    request: GenerationRequest
    references: tuple[LabelledReference, ...]
    cost_seconds: int
    quota_day: str
    webhook_token_hash: str | None
    task_id: str | None
    submit_attempts: int
    poll_count: int
    delivery_attempts: int
    deadline_at: float
    result_url: str | None
    error: str | None
    status_message_id: int | None
    thread_id: int | None
    delivered_message_id: int | None
    created_at: float
    submitting_at: float | None
    submitted_at: float | None
    running_at: float | None
    completed_at: float | None
    delivered_at: float | None
    failed_at: float | None
    cancelled_at: float | None
    updated_at: float
    user_notified_at: float | None = None
    # Lasting copies of the reference files: "ref:N" / "voice:N" / "start" → [channel, message,
    # attachment position]. Opaque to core; the Discord side reads them back when reusing.
    reference_copies: dict[str, list[int]] = field(default_factory=dict)
    user_name: str | None = None  # the requester's display name when it was accepted (reports)

    @property
    def delivery_nonce(self) -> str:
        """Per-job nonce for the delivery post: Discord returns the first message on reuse."""
        return f"wan{self.id}"

    @property
    def finished_at(self) -> float | None:
        return self.delivered_at or self.failed_at or self.cancelled_at
