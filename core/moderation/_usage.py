"""The usage report moderators read: totals, the top members, and the table as a CSV file.

The CSV is opened in spreadsheets, and member names are user input: a cell that would start a
formula gets a leading ``'``, and rows end in CRLF (RFC 4180), so a CR or LF inside a name is
quoted rather than starting a new row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from core.store import UsageRow, day_end

TOP_USERS_SHOWN: Final = 10
USAGE_CSV_FIELDS: Final = ("user_id", "member", "seconds", "jobs", "failed")
# Characters that make a spreadsheet treat a cell as a formula.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\n")


@dataclass(frozen=True, slots=True)
class SpendToday:
    """What the server has spent today (reserved, refunds given back) against its daily cap,
    and what is left of the bot's budget for every server together (None: no cap)."""

    day: str
    spent: int
    cap: int | None
    budget_left: int | None = None

    @property
    def left(self) -> int | None:
        return None if self.cap is None else max(self.cap - self.spent, 0)

    @property
    def resets_at(self) -> datetime:
        return day_end(self.day)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Per member over ``days`` days up to today (UTC); ``seconds`` are quota seconds of
    delivered videos."""

    days: int
    since_day: str  # the first day counted, YYYY-MM-DD (UTC)
    rows: tuple[UsageRow, ...]
    today: SpendToday | None = None

    @property
    def seconds(self) -> int:
        return sum(row.seconds for row in self.rows)

    @property
    def jobs(self) -> int:
        return sum(row.jobs for row in self.rows)

    @property
    def failed(self) -> int:
        return sum(row.failed for row in self.rows)

    def top(self, count: int = TOP_USERS_SHOWN) -> list[UsageRow]:
        """The members who made the most (seconds, then jobs; ties by id)."""
        return sorted(self.rows, key=lambda row: (-row.seconds, -row.jobs, row.user_id))[:count]

    @property
    def csv_filename(self) -> str:
        return f"usage-since-{self.since_day}.csv"

    def csv(self, names: Mapping[int, str] | None = None) -> bytes:
        return usage_csv(self.rows, names or {})


def spreadsheet_safe(cell: str | int) -> str | int:
    """Text a spreadsheet shows as text: a leading ``'`` defuses a would-be formula."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def usage_csv(rows: Sequence[UsageRow], names: Mapping[int, str]) -> bytes:
    """One row per member, UTF-8.

    ``names`` are current display names (from the member cache, when it has them); otherwise
    the name recorded with the member's latest job is used.
    """
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: a CR or LF inside a cell is then quoted, not a new row.
    writer = csv.DictWriter(buffer, fieldnames=USAGE_CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells: dict[str, str | int] = {
            "user_id": row.user_id,
            "member": names.get(row.user_id) or row.name or "",
            "seconds": row.seconds,
            "jobs": row.jobs,
            "failed": row.failed,
        }
        writer.writerow({key: spreadsheet_safe(value) for key, value in cells.items()})
    return buffer.getvalue().encode("utf-8")
