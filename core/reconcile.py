"""What to do with a job whose create may or may not have made a task: the rule, without I/O.

The list operation returns every task of the API key, other tools' included, so a listed task
that no job owns is not proof that it is this job's. A task is adopted only with evidence:

- a notification to the job's own webhook URL (its token is unguessable and per job) named it;
- or the operator declared the key used by this bot alone (``WAN_KEY_DEDICATED``), exactly one
  unowned task is listed and exactly one job is waiting for one.

With no unowned task at all in a list read to its end, the create made nothing and the job is
submitted again (safe: there is nothing to pay twice for; a list cut short proves nothing).
With webhooks on, the job waits a while for a notification to name its task. Otherwise it fails
and is refunded: never a second paid task, never someone else's.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Verdict(enum.Enum):
    ADOPT = "adopt"
    SUBMIT_AGAIN = "submit again"
    WAIT = "wait for a webhook"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    task_id: str | None = None
    why: str = ""


def decide(
    job_id: str,
    orphans: Sequence[str],
    waiting: Sequence[str],
    *,
    evidence: str | None,
    complete: bool = True,
    key_dedicated: bool,
    webhooks: bool,
    waited: float,
    evidence_wait: float,
) -> Decision:
    """``orphans``: listed task ids no job owns; ``complete``: the list was read to its end;
    ``waiting``: jobs waiting for a task (this one included); ``evidence``: a task id a webhook
    to this job's URL named; ``waited``: seconds since the create was sent."""
    if evidence is not None:
        return Decision(Verdict.ADOPT, evidence, "a notification to its webhook URL named it")
    if not orphans and complete:
        return Decision(Verdict.SUBMIT_AGAIN, why="no unowned task exists")
    if key_dedicated and complete and len(orphans) == 1 and list(waiting) == [job_id]:
        return Decision(
            Verdict.ADOPT, orphans[0], "the key is this bot's alone and one task is unowned"
        )
    if webhooks and waited < evidence_wait:
        return Decision(Verdict.WAIT, why="a notification may still name its task")
    return Decision(
        Verdict.FAIL,
        why=f"{len(orphans)} unowned task(s), {len(waiting)} job(s) waiting, no evidence",
    )
