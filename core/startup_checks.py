"""Foreseeable start-up failures told in one line with the fix: the database path, the port."""

from __future__ import annotations

import errno
import os
import pwd
from pathlib import Path


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
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return f"cannot write the database {path}: the file system is read-only"
    return f"cannot open the database {path}: {exc}"


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
