"""The API budget holder: which process may call the WAN API now.

``WAN_MAX_RPS`` is a budget per API key and egress address, not per process, so with several
processes on one PostgreSQL database exactly one of them spends it: the one holding the advisory
lock of :mod:`core.store._budget` on a session of its own. It makes every API call; the others
track deliveries only, and try for the lock every ``poll_interval`` (0.25 s). When the holder
dies its session ends (``kill -9`` closes its socket) and the server frees the lock at once, so
another process takes over well within 2 s. A holder whose session broke while it lives opens a
new one only after two polls of the others: one of them takes over, not the one with the
broken link.

The hand-over never puts more than ``WAN_MAX_RPS`` requests into one second: a process that takes
the lock starts *spent*, holding back every call for one limiter window
(:data:`core.ratelimit.WINDOW_SECONDS`), so the former holder's last calls and the new holder's
first ones never share a window. Only then is the budget :attr:`~PostgresBudget.held`. A holder
whose lock session breaks stops at once: asyncpg reports the closed connection, ``held`` turns
False in that moment and :meth:`admit` (asked by the limiter before and after every wait)
refuses every call still waiting; a session that dies silently is found by a ping every second
(a server that ends such a session only notices much later, over TCP keepalives).

SQLite (one process): :class:`LocalBudget`, always held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.ratelimit import WINDOW_SECONDS
from core.store import open_dedicated, ping, throw_away, try_take_budget
from core.wan_types import WanTransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
BudgetListener = Callable[[bool], None]  # told True when the budget becomes ours, False when not


class BudgetNotHeld(WanTransientError):
    """This process does not hold the API budget now: the call was not sent."""


class Budget(Protocol):
    @property
    def held(self) -> bool:
        """Whether this process may call the API now."""
        ...

    def admit(self) -> None:
        """Raise :class:`BudgetNotHeld` unless this process may call the API now."""

    def subscribe(self, listener: BudgetListener) -> None:
        """Call ``listener(held)`` whenever :attr:`held` changes (sync: it should only wake)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalBudget:
    """One process: the budget is always this process's."""

    @property
    def held(self) -> bool:
        return True

    def admit(self) -> None:
        return None

    def subscribe(self, listener: BudgetListener) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class PostgresBudget:
    """The budget as a PostgreSQL session lock (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        poll_interval: float = 0.25,
        settle: float = WINDOW_SECONDS,
        ping_interval: float = 1.0,
        ping_timeout: float = 2.0,
        retry_base: float = 0.5,  # twice the poll: a waiting process takes over before us
        retry_cap: float = 5.0,
    ) -> None:
        self._engine = engine
        self._poll = poll_interval
        self._window = settle
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._held = False
        self._listeners: list[BudgetListener] = []
        self._conn: AsyncConnection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._held

    def admit(self) -> None:
        if not self._held:
            raise BudgetNotHeld("not sent: another process holds the API budget now")

    def subscribe(self, listener: BudgetListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Open the lock session (raises when the database cannot be reached) and try for the
        lock once: if it is free, return once the budget is held (one window later), so that a
        process starting alone has its budget from the start. Then hold it whenever it is free,
        for as long as this process runs."""
        await self._open()
        assert self._conn is not None
        if await self._timed(try_take_budget(self._conn)):
            await self._settle(self._lost)
        self._task = asyncio.create_task(self._run(), name="api-budget")

    async def stop(self) -> None:
        """Give the budget up: the session ends, so another process takes over at once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_held(False, "this process is stopping")
        await self._discard()

    # ----------------------------------------------------------------- the lock session

    async def _open(self) -> None:
        lost = asyncio.Event()  # this session's own: a late word from an old one is moot
        conn, _driver = await open_dedicated(self._engine, lambda: self._session_ended(lost))
        self._conn, self._lost = conn, lost

    def _session_ended(self, lost: asyncio.Event) -> None:
        lost.set()
        if lost is self._lost:
            self._set_held(False, "its database session ended")  # now, not at the next ping

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await throw_away(conn)

    async def _run(self) -> None:
        delay = self._retry_base
        while True:
            try:
                if self._conn is None:
                    await self._open()
                    delay = self._retry_base
                await self._hold(self._conn, self._lost)
                reason = "its database session ended"
            except Exception as exc:  # the driver's, SQLAlchemy's or a timeout: the session is gone
                reason = f"its database session failed ({type(exc).__name__})"
            self._set_held(False, reason)
            await self._discard()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_cap)

    async def _hold(self, conn: AsyncConnection | None, lost: asyncio.Event) -> None:
        """Take the lock when it is free and hold it; return when the session is gone."""
        assert conn is not None
        if not self._held:  # (held already: taken at start)
            while not await self._timed(try_take_budget(conn)):
                if await _ended_within(lost, self._poll):
                    return
            if not await self._settle(lost):
                return
        while not await _ended_within(lost, self._ping_interval):
            await self._timed(ping(conn))

    async def _settle(self, lost: asyncio.Event) -> bool:
        """The lock is ours: hold the budget one limiter window from now (False: the session
        ended meanwhile). Spent until then: the former holder's last calls must be a whole
        window old before ours go out."""
        log.info("API budget taken; API calls start in %.1fs", self._window)
        if await _ended_within(lost, self._window):
            return False
        self._set_held(True, "")
        return True

    async def _timed(self, step: Awaitable[T]) -> T:
        """A step on the session, which must answer within ``ping_timeout``."""
        async with asyncio.timeout(self._ping_timeout):
            return await step

    def _set_held(self, held: bool, reason: str) -> None:
        if held == self._held:
            return
        self._held = held
        if held:
            log.info("API budget held: this process makes the API calls")
        else:
            log.warning("API budget no longer held: %s; no more API calls from here", reason)
        for listener in self._listeners:
            try:
                listener(held)
            except Exception:
                log.exception("API budget listener failed")


async def _ended_within(lost: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``; True at once if the session ends meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            await lost.wait()
    except TimeoutError:
        return False
    return True
