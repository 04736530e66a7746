"""The README stays true: its two commands (and the locks they install), its settings table,
its permissions integer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core.config import SETTING_NAMES
from discord_side.inputs import BOT_PERMISSIONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_first_lines_give_the_run_and_test_commands() -> None:
    head = README[:800]
    run_command = next(line.strip() for line in head.splitlines() if "bot.py" in line)
    test_command = next(line.strip() for line in head.splitlines() if "pytest" in line)
    assert "-r requirements.lock" in run_command
    assert "-r requirements-dev.lock" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci, "the CI must run the README's test command"
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements.lock" in docker


# A pinned requirement and its first hash: `name==version[ ; marker] \` then `--hash=sha256:…`.
_PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==([^ ;\\]+)(?: ; ([^\\]+?))? \\\n\s+--hash=sha256:[0-9a-f]{64}", re.M
)


def _pins(lock: str) -> dict[str, tuple[str, str]]:
    """name -> (version, marker) for every requirement of a lock file that carries a hash."""
    return {canonicalize_name(m[1]): (m[2], m[3] or "") for m in _PIN.finditer(lock)}


@pytest.mark.parametrize(
    ("source", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_the_locks_pin_every_input_with_hashes(source: str, lock: str) -> None:
    """A dependency added to an input without `bash .ci/lock` fails here, not on a server."""
    text = (ROOT / lock).read_text(encoding="utf-8")
    pins = _pins(text)
    requirement_lines = re.findall(r"^[A-Za-z0-9]", text, re.M)
    assert len(pins) == len(requirement_lines), "every pin carries its hashes"
    for line in (ROOT / source).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{name} is in {source} but not in {lock}: run bash .ci/lock"
        version = pins[name][0]
        assert wanted.specifier.contains(version), f"{lock} pins {name}=={version}: bash .ci/lock"
    if lock == "requirements-dev.lock":  # the runtime runs the same versions in tests
        runtime = _pins((ROOT / "requirements.lock").read_text(encoding="utf-8"))
        assert {n: v for n, (v, _m) in runtime.items()} == {
            n: pins[n][0] for n in runtime if n in pins
        }
        assert set(runtime) <= set(pins)


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
