"""What the WAN API says, as values: tasks and their statuses, and the error taxonomy.

Errors (all :class:`WanError`, each with ``status`` when there was one and a size-capped
``excerpt`` of the raw body):

- :class:`WanUserError` - 400/422, input the user can fix; ``str()`` is readable text built from
  the API's ``message`` and ``invalid_params`` (flat or wrapped in ``{"problem": {...}}``).
- :class:`WanOperatorError` - 401/402/403 (key, credits, permissions) and anything else that only
  the operator can fix (unexpected 3xx/4xx, an invalid base URL).
- :class:`WanNotFound` - 404.
- :class:`WanTransientError` - 408/429/5xx, timeouts and connection errors once retries are spent;
  try again later. :class:`WanProtocolError` (a subclass) is a 2xx whose body is not the documented
  JSON (malformed, too large, wrong shape).
- :class:`WanSubmitUnknown` - a create whose outcome is unknown. Deliberately *not* a transient
  error, so that a generic "retry on transient" never pays for a second task.
- :class:`WanDeadlinePassed` - a create given ``not_after`` that would have been sent later: it
  was not sent.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final

log = logging.getLogger(__name__)

EXCERPT_CHARS: Final = 500


class TaskStatus(enum.StrEnum):
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"  # any value the contract does not list: keep polling, never crash

    @classmethod
    def parse(cls, raw: object) -> TaskStatus:
        try:
            return cls(str(raw).upper())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Task:
    """One API task as the API reports it (a job is ours; a task is the API's)."""

    task_id: str
    status: TaskStatus
    generated: tuple[str, ...] = ()
    raw_status: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task object (the inside of ``data``, or a webhook body). Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("task is not a JSON object")
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("task has no task_id")
        raw_status = data.get("status")
        generated = data.get("generated") or []
        if not isinstance(generated, list):
            raise ValueError("task.generated is not a list")
        urls = tuple(u for u in generated if isinstance(u, str) and u)
        return cls(task_id, TaskStatus.parse(raw_status), urls, str(raw_status))


class WanError(Exception):
    """Any failure talking to the API. ``status`` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, status: int | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.excerpt = excerpt[:EXCERPT_CHARS]


@dataclass(frozen=True, slots=True)
class InvalidParam:
    name: str
    reason: str


class WanUserError(WanError):
    """400/422: the request itself is wrong in a way the user can fix. ``str()`` is readable."""

    def __init__(
        self,
        api_message: str,
        invalid_params: tuple[InvalidParam, ...] = (),
        *,
        status: int | None = None,
        excerpt: str = "",
    ) -> None:
        self.api_message = api_message
        self.invalid_params = invalid_params
        super().__init__(_user_text(api_message, invalid_params), status=status, excerpt=excerpt)


class WanOperatorError(WanError):
    """401/402/403 and other misconfiguration: the operator must act (key, credits, base URL)."""


class WanNotFound(WanError):
    """404: the API does not know this task (or this key cannot see it)."""


class WanTransientError(WanError):
    """Busy, rate limited, unreachable or broken for now; ``retry_after`` is the API's hint."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, excerpt=excerpt)
        self.retry_after = retry_after


class WanProtocolError(WanTransientError):
    """A success status whose body is not the documented JSON (malformed, too big, wrong shape)."""


class WanSubmitUnknown(WanError):
    """A create that may or may not have produced a task. Reconcile via ``list_tasks``; never
    simply submit again."""


class WanDeadlinePassed(WanError):
    """A create that was not sent because its ``not_after`` time had passed."""


def _user_text(message: str, params: tuple[InvalidParam, ...]) -> str:
    head = message.strip().rstrip(".") or "The video service rejected the request"
    if not params:
        return head
    details = "; ".join(f"{p.name}: {p.reason}" if p.name else p.reason for p in params)
    return f"{head} — {details}"


def error_details(raw: bytes) -> tuple[str, tuple[InvalidParam, ...]]:
    """The API's ``message`` and ``invalid_params``, flat or inside ``problem``; empty if absent."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return "", ()
    if not isinstance(doc, dict):
        return "", ()
    sources = [doc]
    if isinstance(doc.get("problem"), dict):
        sources.insert(0, doc["problem"])
    message = next((s["message"] for s in sources if isinstance(s.get("message"), str)), "")
    raw_params: Any = next((s["invalid_params"] for s in sources if "invalid_params" in s), [])
    params: list[InvalidParam] = []
    if isinstance(raw_params, list):
        for item in raw_params:
            if isinstance(item, dict):
                params.append(InvalidParam(str(item.get("name", "")), str(item.get("reason", ""))))
    return message, tuple(params)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date); None if unusable.

    ``now`` is the wall-clock time (Unix seconds) used for the date form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _data(doc: Any) -> Any:
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError("no 'data' in the response")
    return doc["data"]


def parse_task(doc: Any) -> Task:
    """One task from a create or get response (``{"data": {...}}``)."""
    return Task.from_json(_data(doc))


def parse_task_list(doc: Any) -> list[Task]:
    """The tasks of a list response (``{"data": [...]}``); unreadable items are skipped."""
    items = _data(doc)
    if not isinstance(items, list):
        raise ValueError("'data' is not a list")
    tasks: list[Task] = []
    for item in items:
        try:
            tasks.append(Task.from_json(item))
        except ValueError as exc:
            # One odd item must not hide the others from reconciliation.
            log.warning("WAN task list: skipping an unreadable item (%s)", exc)
    return tasks
