"""The jobs table's one mapping: each column, the :class:`Job` attribute it stores, and how.

The SELECT list, the INSERT values of a new job and the row → :class:`Job` conversion are all
derived from :data:`COLUMNS`, so a column is declared once (tests check it against ``Job``'s
fields and the table itself; the table's other columns, the leases, are not the job's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from sqlalchemy import Select, select

from core.jobs import Job, JobOrigin, JobState
from core.references import LabelledReference
from core.request import GenerationRequest
from core.store._db import AnyRow
from core.store._tables import jobs
from core.store.types import NewJob


def _as_is(value: Any) -> Any:
    return value


def _enum_value(value: JobOrigin | JobState) -> str:
    return value.value


@dataclass(frozen=True, slots=True)
class Column:
    """A column of ``jobs``: ``name`` in the table, ``attr`` on :class:`Job`."""

    attr: str
    name: str = ""  # defaults to ``attr``
    to_db: Callable[[Any], Any] = _as_is
    from_db: Callable[[Any], Any] = _as_is

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.attr)


def _json_column(
    attr: str, dump: Callable[[Any], Any], load: Callable[[Any], Any] = _as_is
) -> Column:
    """A value kept as JSON text in ``<attr>_json``."""
    return Column(
        attr,
        f"{attr}_json",
        lambda value: json.dumps(dump(value)),
        lambda raw: load(json.loads(raw)),
    )


def _plain(*attrs: str) -> tuple[Column, ...]:
    return tuple(Column(attr) for attr in attrs)


def _seconds(value: float | None) -> float | None:
    # SQLite's RETURNING gives a whole REAL as an integer: times are floats whatever the path.
    return None if value is None else float(value)


def _times(*attrs: str) -> tuple[Column, ...]:
    return tuple(Column(attr, from_db=_seconds) for attr in attrs)


COLUMNS: Final[tuple[Column, ...]] = (
    *_plain("id", "guild_id", "channel_id", "user_id"),
    Column("origin", to_db=_enum_value, from_db=JobOrigin),
    Column("parent_job_id"),
    Column("state", to_db=_enum_value, from_db=JobState),
    _json_column("request", GenerationRequest.to_stored, GenerationRequest.from_stored),
    _json_column(
        "references",
        lambda refs: [ref.to_json() for ref in refs],
        lambda items: tuple(LabelledReference.from_json(item) for item in items),
    ),
    *_plain("cost_seconds", "quota_day", "webhook_token_hash", "task_id"),
    *_plain("submit_attempts", "poll_count", "delivery_attempts"),
    *_times("deadline_at"),
    *_plain("result_url", "error", "status_message_id", "thread_id", "delivered_message_id"),
    *_times("created_at", "submitting_at", "submitted_at", "running_at", "completed_at"),
    *_times("delivered_at", "failed_at", "cancelled_at", "updated_at", "user_notified_at"),
    _json_column("reference_copies", _as_is),
    Column("user_name"),
)

SELECTED: Final = tuple(jobs.c[column.name] for column in COLUMNS)  # a Job's columns, in order
LEASE_COLUMNS: Final = ("lease_owner", "lease_until", "lease_fence", "webhook_at")
_NAMES: Final = tuple(column.name for column in COLUMNS)
_LOADS: Final = tuple((column.attr, column.from_db) for column in COLUMNS)
_VALUES: Final = attrgetter(*(column.attr for column in COLUMNS))  # every attribute, in order
_DUMPS: Final = tuple(
    (index, column.to_db) for index, column in enumerate(COLUMNS) if column.to_db is not _as_is
)


def select_jobs() -> Select[Any]:
    """``SELECT`` every column of a :class:`Job` ``FROM jobs``: add the WHERE."""
    return select(*SELECTED)


def job_from_row(row: AnyRow) -> Job:
    """A row of :data:`SELECTED`, as a :class:`Job`."""
    return Job(**{attr: load(value) for (attr, load), value in zip(_LOADS, row, strict=True)})


def insert_params(job: Job) -> dict[str, Any]:
    """Every column's value for ``job``'s row (``insert(jobs)`` takes them)."""
    values = list(_VALUES(job))
    for index, to_db in _DUMPS:
        values[index] = to_db(values[index])
    return dict(zip(_NAMES, values, strict=True))


def reserved(new: NewJob, day: str, now: float) -> Job:
    """The row of a job just accepted: reserved, charged to ``day``, nothing happened yet."""
    return Job(
        id=new.id,
        guild_id=new.guild_id,
        channel_id=new.channel_id,
        user_id=new.user_id,
        origin=new.origin,
        parent_job_id=new.parent_job_id,
        state=JobState.RESERVED,
        request=new.request,
        references=new.references,
        cost_seconds=new.cost_seconds,
        quota_day=day,
        webhook_token_hash=new.webhook_token_hash,
        task_id=None,
        submit_attempts=0,
        poll_count=0,
        delivery_attempts=0,
        deadline_at=new.deadline_at,
        result_url=None,
        error=None,
        status_message_id=None,
        thread_id=new.thread_id,
        delivered_message_id=None,
        created_at=now,
        submitting_at=None,
        submitted_at=None,
        running_at=None,
        completed_at=None,
        delivered_at=None,
        failed_at=None,
        cancelled_at=None,
        updated_at=now,
        user_notified_at=None,
        reference_copies=new.reference_copies,
        user_name=new.user_name,
    )
