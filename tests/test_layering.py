"""The layering rules (README, Development) hold, and CI's ruff config really enforces them.

Two independent checks: every module's imports read from its source (so a rule holds even if a
``ruff.toml`` is lost), and ruff itself run on a probe placed in each guarded directory (so a
broken per-directory config cannot silently pass).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Directory → the top-level packages its modules may never import.
BANNED: dict[str, frozenset[str]] = {
    "core": frozenset({"discord", "cogs", "discord_side", "bot"}),
    "discord_side": frozenset({"cogs", "bot"}),
    "cogs": frozenset({"bot"}),
}


def imported_packages(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports, type-only and late ones included."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(directory: str) -> list[Path]:
    return sorted((ROOT / directory).rglob("*.py"))


@pytest.mark.parametrize("directory", sorted(BANNED))
def test_no_module_imports_a_layer_above_it(directory: str) -> None:
    assert modules(directory), f"no modules found under {directory}/"
    broken = {
        str(path.relative_to(ROOT)): sorted(
            imported_packages(path.read_text(encoding="utf-8")) & BANNED[directory]
        )
        for path in modules(directory)
    }
    assert {path: names for path, names in broken.items() if names} == {}


def test_the_import_reader_sees_every_form_of_import() -> None:
    source = (
        "from __future__ import annotations\n"
        "import discord.ext.commands\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from bot import WanBot\n"
        "def later():\n"
        "    import cogs.video\n"
    )
    assert imported_packages(source) == {"__future__", "discord", "typing", "bot", "cogs"}


def ruff_on(path_in_tree: str, source: str) -> subprocess.CompletedProcess[str]:
    """Ruff as CI runs it, on ``source`` as if it were the file at ``path_in_tree``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--stdin-filename",
            str(ROOT / path_in_tree),
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("directory", "package"),
    [(directory, package) for directory, banned in BANNED.items() for package in sorted(banned)],
)
def test_ruff_refuses_each_banned_import(directory: str, package: str) -> None:
    source = f"import {package}\n\nprint({package})\n"
    result = ruff_on(f"{directory}/_layering_probe.py", source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"TID251 `{package}` is banned" in result.stdout


def test_ruff_allows_what_each_layer_may_import() -> None:
    allowed = {
        "core/_layering_probe.py": "import aiohttp\n\nprint(aiohttp)\n",
        "discord_side/_layering_probe.py": "import discord\n\nimport core.jobs\n\n"
        "print(core.jobs, discord)\n",
        "cogs/_layering_probe.py": "import discord_side.views\n\nprint(discord_side.views)\n",
    }
    for path, source in allowed.items():
        result = ruff_on(path, source)
        assert result.returncode == 0, result.stdout + result.stderr
