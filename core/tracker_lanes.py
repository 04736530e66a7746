"""The tracker's lanes: which work starts first, and within which budgets.

The API budget (``WAN_MAX_RPS``/``WAN_BURST``) is spent in this order: reads the poll planner
(``core.polling``) finds worth their cost, lists (one serves every job reconciling), creates,
then the reads that keep every task within ``TRACKER_LAG_SECONDS`` of being noticed; while
creates or lists wait, reads take at most their share, so those always have headroom. A 429
holds off only the kind of call it refused. No API lane starts while another process holds the
budget (``core.budget``); deliveries have their own pool and need no API budget.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from core.budget import Budget
from core.polling import PollPlanner
from core.ratelimit import Pace
from core.scheduling import AllGates, DueQueue, Hold, Lane, Pool, Share
from core.tracker_config import TrackerConfig
from core.wan import CREATE, LIST, READ, WanClient

Begin = Callable[[str, "Action"], Coroutine[Any, Any, None] | None]


class Action(enum.Enum):
    SUBMIT = "submit"
    POLL = "poll"
    RECONCILE = "reconcile"
    DELIVER = "deliver"


QUEUED_ACTIONS = (Action.SUBMIT, Action.RECONCILE, Action.DELIVER)  # reads wait in the planner


@dataclass(frozen=True, slots=True)
class Lanes:
    lanes: list[Lane[str, Any]]
    delivery_pool: Pool


def tracker_lanes(
    cfg: TrackerConfig,
    planner: PollPlanner,
    queues: dict[Action, DueQueue[str, None]],
    client: WanClient,
    budget: Budget,
    begin: Begin,
) -> Lanes:
    """The lanes in priority order; ``begin(job_id, action)`` starts an action."""
    api, deliveries = Pool("api", cfg.concurrency), Pool("delivery", cfg.delivery_concurrency)
    # Reconciles take turns on one listing: one at a time, so they never fill the API pool.
    reconciling = Pool("reconcile", 1)
    total = Pace(cfg.max_rps, cfg.burst)

    def held_for(kind: str) -> Hold:
        return Hold(lambda: client.held_for(kind))

    def others_waiting(now: float) -> bool:
        """Creates or lists are due and not held off by the API."""
        for action, kind in ((Action.SUBMIT, CREATE), (Action.RECONCILE, LIST)):
            due = queues[action].first_due()
            if due is not None and due <= now and client.held_for(kind) <= 0.0:
                return True
        return False

    # Reads take at most their share while creates or lists wait, else the whole budget.
    share = Share(Pace(cfg.read_rps, cfg.burst), others_waiting)
    ours = Hold(lambda: 0.0 if budget.held else math.inf)  # this process holds the budget
    reads = AllGates(share, total, held_for(READ), ours)
    creates = AllGates(total, held_for(CREATE), ours)
    # One listing serves every reconcile due (most make no request): not charged per start;
    # the listing itself waits in the client's limiter like any request.
    lists = AllGates(held_for(LIST), ours)

    def start(action: Action) -> Callable[[str, Any], Coroutine[Any, Any, None] | None]:
        return lambda job_id, _value: begin(job_id, action)

    lanes: list[Lane[str, Any]] = [
        Lane("read", planner.valuable, api, start(Action.POLL), reads),
        Lane("reconcile", queues[Action.RECONCILE], reconciling, start(Action.RECONCILE), lists),
        Lane("submit", queues[Action.SUBMIT], api, start(Action.SUBMIT), creates),
        Lane("read-lag", planner.guaranteed, api, start(Action.POLL), reads),
        Lane("deliver", queues[Action.DELIVER], deliveries, start(Action.DELIVER)),
    ]
    return Lanes(lanes, deliveries)
