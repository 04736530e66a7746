"""Wake-ups between processes: PostgreSQL ``LISTEN``/``NOTIFY`` on one channel, or an
in-process fan-out with the same interface for SQLite (one process).

A signal is ``(event, job_id)``, sent as the payload ``"<event>:<job_id>"`` on the channel
``wanbot_jobs``: ``new`` (a job was accepted), ``webhook`` (a webhook for the job arrived
somewhere), ``deliver`` (the job is completed and free for whoever delivers). A signal only
*wakes* a listener: NOTIFY is not a queue (a listener that was reconnecting misses what was sent
meanwhile), so every consumer also sweeps the database on its own.

:class:`PostgresSignals` listens on a dedicated connection taken from the store's engine
(asyncpg's ``add_listener`` on the driver connection), outside any transaction. The connection
is watched: asyncpg tells us when it closes (the server ended the session, the socket broke),
a periodic ping finds one that died silently, and either way it is thrown away and opened again
with growing waits; listeners are told once it is back (``on_reconnect``), so they can sweep for
what they missed. :meth:`notify` goes through the engine's pool, or through the caller's own
connection inside a transaction, where PostgreSQL delivers it at commit (and never on rollback).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.store._sessions import open_dedicated, throw_away

log = logging.getLogger(__name__)

CHANNEL = "wanbot_jobs"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class SignalEvent(enum.StrEnum):
    NEW = "new"  # a job was accepted: the budget holder claims it
    WEBHOOK = "webhook"  # a webhook for the job arrived in some process: its owner acts now
    DELIVER = "deliver"  # the job completed and its lease is free: whoever delivers claims it


Listener = Callable[[SignalEvent, str], None]


def payload(event: SignalEvent, job_id: str) -> str:
    return f"{event.value}:{job_id}"


def parse_payload(raw: str) -> tuple[SignalEvent, str] | None:
    """``(event, job_id)`` from a payload, or None for one this version does not know."""
    name, sep, job_id = raw.partition(":")
    if not sep or not job_id:
        return None
    try:
        return SignalEvent(name), job_id
    except ValueError:
        return None


class Signals(Protocol):
    """What the tracker, the service and the webhook receiver use, in either mode."""

    def listen(self, listener: Listener) -> None:
        """Call ``listener(event, job_id)`` for every signal (sync: it should only wake work)."""

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after signals may have been missed (a reconnect)."""

    async def notify(
        self, event: SignalEvent, job_id: str, conn: AsyncConnection | None = None
    ) -> None:
        """Signal every process (this one included); with ``conn``, at its commit."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _FanOut:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._reconnected: list[Callable[[], None]] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnected.append(callback)

    def _dispatch(self, event: SignalEvent, job_id: str) -> None:
        for listener in self._listeners:
            try:
                listener(event, job_id)
            except Exception:
                log.exception("signal listener failed on %s:%s", event.value, job_id)

    def _resynced(self) -> None:
        for callback in self._reconnected:
            try:
                callback()
            except Exception:
                log.exception("signal reconnect callback failed")


class LocalSignals(_FanOut):
    """One process (SQLite): a signal goes to this process's listeners, on the next loop turn
    (as a NOTIFY arrives after its sender went on)."""

    async def notify(
        self, event: SignalEvent, job_id: str, conn: AsyncConnection | None = None
    ) -> None:
        asyncio.get_running_loop().call_soon(self._dispatch, event, job_id)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class PostgresSignals(_FanOut):
    """LISTEN/NOTIFY on ``CHANNEL`` (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        retry_base: float = 0.1,
        retry_cap: float = 5.0,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._conn: AsyncConnection | None = None
        self._lost = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    async def start(self) -> None:
        """Listen (raises when the database cannot be reached), then keep listening."""
        await self._connect()
        self._watcher = asyncio.create_task(self._watch(), name="signals-watch")

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await self._discard()

    async def notify(
        self, event: SignalEvent, job_id: str, conn: AsyncConnection | None = None
    ) -> None:
        params = {"channel": CHANNEL, "payload": payload(event, job_id)}
        if conn is not None:
            await conn.execute(_NOTIFY, params)  # delivered when the caller's transaction commits
            return
        async with self._engine.begin() as own:
            await own.execute(_NOTIFY, params)

    # ----------------------------------------------------------------- the listening connection

    async def _connect(self) -> None:
        lost = asyncio.Event()  # this connection's own: a late word from an old one is moot
        conn, driver = await open_dedicated(self._engine, lost.set)
        try:
            await driver.add_listener(CHANNEL, self._received)  # LISTEN, in effect at once
        except BaseException:
            await throw_away(conn)
            raise
        self._conn, self._lost = conn, lost

    def _received(self, _driver: object, _pid: int, _channel: str, raw: str) -> None:
        parsed = parse_payload(raw)
        if parsed is None:
            log.debug("signal %r ignored (unknown)", raw)
            return
        self._dispatch(*parsed)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await throw_away(conn)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: it may swallow a cancel
                async with asyncio.timeout(self._ping_interval):
                    await self._lost.wait()
            if not self._lost.is_set() and await self._alive():
                continue
            log.warning("signals: the listening connection was lost; reconnecting")
            await self._discard()
            await self._reconnect()
            log.info("signals: listening again")
            self._resynced()

    async def _alive(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            async with asyncio.timeout(self._ping_timeout):
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # the driver's, SQLAlchemy's or a timeout: all mean "gone"
            log.warning("signals: ping failed (%s)", type(exc).__name__)
            return False
        return True

    async def _reconnect(self) -> None:
        delay = self._retry_base
        while True:
            try:
                await self._connect()
                return
            except Exception as exc:
                log.warning(
                    "signals: cannot listen (%s); trying again in %.1fs", type(exc).__name__, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_cap)
