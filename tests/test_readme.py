"""The README stays true: its two commands, its settings table, its permissions integer."""

from __future__ import annotations

import re
from pathlib import Path

from cogs.video import BOT_PERMISSIONS
from core.config import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_first_lines_give_the_run_and_test_commands() -> None:
    head = README[:800]
    assert "requirements.txt" in head and "bot.py" in head
    assert "requirements-dev.txt" in head and "pytest" in head
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line.strip() for line in head.splitlines() if "pytest" in line)
    assert test_command in ci, "the CI must run the README's test command"


def test_every_setting_the_bot_reads_is_documented() -> None:
    source = (ROOT / "core" / "config.py").read_text(encoding="utf-8")
    # Every name handed to from_env's readers: get(...), required(...), parsed(...), url(...).
    calls = re.findall(r'\b(?:get|required|parsed|url)\(\s*((?:"[A-Z0-9_]+",?\s*)+)', source)
    names = {name for call in calls for name in re.findall(r'"([A-Z0-9_]+)"', call)}
    assert {"DISCORD_TOKEN", "FREEPIK_API_KEY", "WAN_API_BASE"} <= names
    assert names == set(SETTING_NAMES), "core.config.SETTING_NAMES must list every variable read"
    table = README[README.index("## Configuration") :]
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert missing == []


def test_the_invite_permissions_integer_is_what_the_bot_needs() -> None:
    assert f"`{BOT_PERMISSIONS.value}`" in README
