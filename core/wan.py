"""The WAN 2.7 Reference-to-Video API client (aiohttp, one injected session).

(Skeleton: the client itself is being written; the task model below is the shared contract.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


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
