"""Foreseeable start-up failures told in one line with the fix: the database (a SQLite path or
a PostgreSQL server), the port."""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from core.store import database_url, redact

# What opening the store may raise for a foreseeable reason (told in one line, no traceback):
# the driver's errors as SQLAlchemy wraps them, the file system's or network's, a schema from
# a newer bot (RuntimeError).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError, RuntimeError)


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _owner(path: Path) -> str:
    try:
        return _user(path.stat().st_uid)
    except OSError:
        return "unknown"


def database_problem(path: Path, *, create: bool = True) -> str | None:
    """Why the bot could not create or write its database at ``path``, or None if it can.

    Checks what SQLite needs in WAL mode: the file (if it exists) and its directory writable
    (the ``-wal`` and ``-shm`` files live beside it). Missing directories are created, or with
    ``create=False`` (``--check``) only the nearest existing one is checked.
    """
    path = path.expanduser()
    me = _user(os.geteuid())
    directory = path.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create {directory}: {existing} is not a directory (set DATABASE_PATH)"
    if not create and not directory.exists():
        directory = existing  # what would have to be writable to create the rest
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        return (
            f"cannot create the database directory {directory}: {existing} is owned by"
            f" {_owner(existing)} and this bot runs as {me}; create it and give it to that user"
            f" (chown {os.geteuid()} {directory}) or set DATABASE_PATH"
        )
    except OSError as exc:
        return f"cannot create the database directory {directory}: {exc.strerror}"
    for target in (directory, path) if path.exists() else (directory,):
        if os.access(target, os.W_OK):
            continue
        kind = "directory" if target.is_dir() else "file"
        return (
            f"cannot write the database {kind} {target}: it is owned by {_owner(target)} and this"
            f" bot runs as {me}; it must be owned by (or writable for) that user"
            f" (chown -R {os.geteuid()} {directory}) or set DATABASE_PATH"
        )
    return None


def describe_database_error(path: Path, exc: BaseException) -> str:
    """A one-line reason for an error SQLite raised while opening ``path``."""
    problem = database_problem(path)
    if problem is not None:
        return problem
    reason = driver_reason(exc)
    if isinstance(reason, OSError) and reason.errno == errno.EROFS:
        return f"cannot write the database {path}: the file system is read-only"
    return f"cannot open the database {path}: {_one_line(reason)}"


def describe_postgres_error(url: str, exc: BaseException) -> str:
    """A one-line reason for an error met while opening the PostgreSQL database at ``url``."""
    reason = driver_reason(exc)
    if isinstance(reason, TimeoutError):
        return f"the PostgreSQL server of {redact(url)} did not answer in time (DATABASE_URL)"
    if isinstance(reason, OSError):
        return (
            f"cannot reach the PostgreSQL server of {redact(url)}: {reason.strerror or reason};"
            " check DATABASE_URL's host and port, and that the server runs"
        )
    return f"cannot open the PostgreSQL database {redact(url)}: {_one_line(reason)}"


def driver_reason(exc: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrapping (its message names the problem)."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    while reason.__cause__ is not None and "asyncpg" in type(reason.__cause__).__module__:
        reason = reason.__cause__
    return reason


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def postgres_problem(url: str, *, within: float = 10.0) -> str | None:
    """Why the bot could not use the PostgreSQL database at ``url``, or None (``--check``)."""
    engine = create_async_engine(database_url(url), pool_size=1, max_overflow=0)
    try:
        async with asyncio.timeout(within), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError, RuntimeError) as exc:  # TimeoutError is an OSError
        return describe_postgres_error(url, exc)
    finally:
        await engine.dispose()
    return None


def describe_bind_error(exc: OSError, host: str, port: int) -> str:
    """The HTTP server could not listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"the HTTP port {port} on {host} is already in use (another copy of the bot, or"
            " another server): stop it, or set WEBHOOK_PORT to a free port (0 turns the"
            " server off, and webhooks, /healthz and /metrics with it)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"no permission to listen on port {port}: ports below 1024 need privileges;"
            " set WEBHOOK_PORT to 1024 or above"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: this machine has no such address (check HTTP_HOST)"
    return (
        f"cannot listen on {host}:{port}: {exc.strerror or exc} (check HTTP_HOST and WEBHOOK_PORT)"
    )
