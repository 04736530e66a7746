"""``python bot.py --migrate-from-sqlite PATH``: move a single server's SQLite database to the
PostgreSQL database ``DATABASE_URL`` names (the copy itself: :mod:`core.store._copy`).

Run it with the bot stopped: the file is upgraded first, then copied in one transaction, so the
target ends up with every row or with none. Foreseeable problems are one line each.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from core.config import Settings
from core.startup_checks import DATABASE_ERRORS, describe_postgres_error
from core.store import CopyRefused, copy_sqlite_to_postgres, redact

log = logging.getLogger(__name__)


def migrate_from_sqlite(settings: Settings, source: Path) -> int:
    """Copy ``source`` into DATABASE_URL's database; print what was copied; the exit code."""
    url = settings.database_url
    if url is None:
        log.error(
            "cannot copy: DATABASE_URL is not set; set it to the empty PostgreSQL database to"
            " copy %s into (postgresql://user:password@host/database)",
            source,
        )
        return 1

    def copied(table: str, rows: int) -> None:
        sys.stdout.write(f"{table}: {rows} rows\n")

    try:
        report = asyncio.run(copy_sqlite_to_postgres(source, url, progress=copied))
    except CopyRefused as exc:
        log.error("cannot copy: %s", exc)
        return 1
    except DATABASE_ERRORS as exc:
        log.error("cannot copy: %s", describe_postgres_error(url, exc))
        return 1
    sys.stdout.write(
        f"copied {report.total} rows from {source} into {redact(url)} in {report.seconds:.1f} s;"
        " start the bot with this DATABASE_URL\n"
    )
    return 0
