"""Replies in a video thread: a new prompt, with settings changed by flags anywhere in the text.

``@bot Image 1 now dances in the rain --seed 42 --dur 8 --neg "blurry, text"``

Flags: ``--seed N`` (or ``--seed random``), ``--duration N``/``--dur N`` (``8s`` also works),
``--ar R``/``--aspect R``, ``--res R``/``--resolution R``, ``--neg "…"``/``--negative "…"``,
``--extend``/``--no-extend``; ``--flag=value`` also works. Phones often turn ``--`` into a dash,
so ``—seed`` and ``–seed`` count too. A value is one word, or a quoted string (straight or
typographic quotes); a quote left open runs to the next flag or the end of its line. When a flag
is given twice, the last one wins. Everything else is the prompt; an empty prompt means "keep
the previous one".
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from core.option_checks import (
    aspect_ratio_problem,
    duration_problem,
    normalise_aspect_ratio,
    normalise_resolution,
    resolution_problem,
    seed_problem,
)
from core.references import GenerationOptions, InvalidInput
from core.request import (
    ASPECT_RATIOS,
    DURATION_MAX,
    DURATION_MIN,
    NEGATIVE_PROMPT_MAX_CHARS,
    RESOLUTIONS,
    SEED_MAX,
    SEED_MIN,
)

# Flag spelling → the setting it changes.
_FLAG_NAMES: Final = {
    "seed": "seed",
    "duration": "duration",
    "dur": "duration",
    "ar": "aspect_ratio",
    "aspect": "aspect_ratio",
    "res": "resolution",
    "resolution": "resolution",
    "neg": "negative_prompt",
    "negative": "negative_prompt",
    "extend": "extend",
    "no-extend": "no_extend",
}
_SWITCHES: Final = frozenset({"extend", "no_extend"})  # flags that take no value
ALLOWED_FLAGS_TEXT: Final = (
    "--seed N, --duration/--dur N, --ar/--aspect RATIO, --res/--resolution 720P|1080P, "
    '--neg "text", --extend, --no-extend'
)

# Opening quote → the characters that may close it (people mix straight and typographic quotes).
_CLOSING_QUOTES: Final = {
    '"': '"”“',
    "'": "'’‘",
    "“": '”“"',
    "‘": "’‘'",
    "„": '“”"',
    "«": "»",
}
_WORD_RE: Final = re.compile(r"\S+")
_FLAG_RE: Final = re.compile(r"(?:--|[—–])([A-Za-z][A-Za-z0-9_-]*)(=.*)?", re.DOTALL)
# Where an unclosed quoted value stops: just before the next flag-shaped word.
_NEXT_FLAG_RE: Final = re.compile(r"\s(?:--|[—–])[A-Za-z]")


class _Given(NamedTuple):
    flag: str  # as the user wrote it, for messages ("--dur")
    value: str


class ReplyFlagError(InvalidInput):
    """A reply's flags can't be used; ``problems`` lists every reason."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """Settings a reply changes; ``None`` means "as before"."""

    seed: int | None = None
    new_seed: bool = False  # "--seed random": drop the old seed so the API picks one
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    negative_prompt: str | None = None  # "" removes the old negative prompt
    prompt_extend: bool | None = None

    def apply(self, options: GenerationOptions) -> GenerationOptions:
        changes: dict[str, Any] = {
            name: value
            for name in ("seed", "duration", "aspect_ratio", "resolution", "prompt_extend")
            if (value := getattr(self, name)) is not None
        }
        if self.new_seed:
            changes["seed"] = None
        if self.negative_prompt is not None:
            changes["negative_prompt"] = self.negative_prompt or None
        return dataclasses.replace(options, **changes)


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    prompt: str  # "" when the reply only changes settings
    overrides: Overrides


def parse_reply(text: str, bot_id: int | None = None) -> ReplyRequest:
    """Split a reply into prompt and overrides; raise :class:`ReplyFlagError` listing problems."""
    parsed, problems = read_reply(text, bot_id)
    if problems:
        raise ReplyFlagError(problems)
    return parsed


def read_reply(text: str, bot_id: int | None = None) -> tuple[ReplyRequest, list[str]]:
    """Like :func:`parse_reply`, but returns the problems instead of raising them, so they can
    be reported together with the request's other problems (files, labels). Flags with a
    problem change nothing."""
    if bot_id is not None:
        text = re.sub(rf"^\s*<@!?{bot_id}>", "", text, count=1)

    given: dict[str, _Given] = {}
    problems: list[str] = []
    lines = []
    for line in text.split("\n"):
        kept, had_flags = _take_flags(line, given, problems)
        if had_flags:
            kept = kept.rstrip()
            if not kept:
                continue  # a line that held only flags leaves no blank line behind
        lines.append(kept)

    overrides = _overrides_from(given, problems)
    return ReplyRequest("\n".join(lines).strip(), overrides), problems


def _take_flags(line: str, given: dict[str, _Given], problems: list[str]) -> tuple[str, bool]:
    """Remove the flags from one line, recording their raw values; return what's left."""
    kept: list[str] = []
    pos = 0
    had_flags = False
    while word := _WORD_RE.search(line, pos):
        flag = _FLAG_RE.fullmatch(word[0])
        if flag is None:
            kept.append(line[pos : word.end()])
            pos = word.end()
            continue
        had_flags = True
        kept.append(line[pos : word.start()])
        end = word.end()
        written = word[0][: flag.end(1)]
        name = _FLAG_NAMES.get(flag[1].lower().replace("_", "-"))
        if name is None:
            problems.append(_unknown_flag(written))
        elif name in _SWITCHES:
            given["prompt_extend"] = _Given(written, name)
            if flag[2] is not None:
                problems.append(f"{written} takes no value")
        else:
            # The value follows "=" in the same word, or is the next word.
            start = word.start() + flag.end(1) + 1 if flag[2] is not None else _next_word(line, end)
            if start is None or (flag[2] is None and _FLAG_RE.match(line, start)):
                problems.append(f"{written} needs a value: {_usage(name)}")
            else:
                value, end = _read_value(line, start)
                given[name] = _Given(written, value)
        pos = len(line) - len(line[end:].lstrip())  # drop the spaces after a flag too
    kept.append(line[pos:])
    return "".join(kept), had_flags


def _next_word(line: str, pos: int) -> int | None:
    word = _WORD_RE.search(line, pos)
    return None if word is None else word.start()


def _read_value(line: str, start: int) -> tuple[str, int]:
    """The value starting at ``start`` and the position after it: a word or a quoted string."""
    opening = line[start : start + 1]
    closers = _CLOSING_QUOTES.get(opening)
    if closers is None:
        word = _WORD_RE.match(line, start)
        end = start if word is None else word.end()
        return line[start:end], end
    # A closing quote is one not followed by a letter or digit, so "don't" stays inside.
    closing = re.compile(f"[{re.escape(closers)}](?![A-Za-z0-9])")
    found = closing.search(line, start + 1)
    if found is not None:
        return line[start + 1 : found.start()].strip(), found.end()
    stop = _NEXT_FLAG_RE.search(line, start + 1)
    end = len(line) if stop is None else stop.start()
    return line[start + 1 : end].strip(), end


def _overrides_from(given: dict[str, _Given], problems: list[str]) -> Overrides:
    fields: dict[str, Any] = {}
    if (seed_given := given.get("seed")) is not None:
        flag, raw = seed_given
        if raw.lower() in ("random", "any", "none"):
            fields["new_seed"] = True
        elif (seed := _whole_number(raw)) is None:
            problems.append(f"{flag} {raw!r} is not a number: {_usage('seed')}")
        elif (problem := seed_problem(seed)) is not None:
            problems.append(problem)
        else:
            fields["seed"] = seed
    if (duration_given := given.get("duration")) is not None:
        flag, raw = duration_given
        seconds = re.fullmatch(r"([+-]?[0-9]+)\s*(?:s|secs?|seconds?)?", raw, re.IGNORECASE)
        if seconds is None:
            problems.append(f"{flag} {raw!r} is not a number: {_usage('duration')}")
        elif (problem := duration_problem(int(seconds[1]))) is not None:
            problems.append(problem)
        else:
            fields["duration"] = int(seconds[1])
    if (ratio_given := given.get("aspect_ratio")) is not None:
        fields["aspect_ratio"] = normalise_aspect_ratio(ratio_given.value)
        if fields["aspect_ratio"] is None:
            problems.append(aspect_ratio_problem(ratio_given.value))
    if (resolution_given := given.get("resolution")) is not None:
        fields["resolution"] = normalise_resolution(resolution_given.value)
        if fields["resolution"] is None:
            problems.append(resolution_problem(resolution_given.value))
    if (negative_given := given.get("negative_prompt")) is not None:
        negative = negative_given.value
        if len(negative) > NEGATIVE_PROMPT_MAX_CHARS:
            problems.append(
                f"the negative prompt is {len(negative)} characters: "
                f"at most {NEGATIVE_PROMPT_MAX_CHARS}"
            )
        fields["negative_prompt"] = negative
    if (extend_given := given.get("prompt_extend")) is not None:
        fields["prompt_extend"] = extend_given.value == "extend"
    return Overrides(**fields)


def _whole_number(raw: str) -> int | None:
    return int(raw) if re.fullmatch(r"[+-]?[0-9]+", raw) else None


def _usage(name: str) -> str:
    return {
        "seed": f"--seed takes a whole number from {SEED_MIN} to {SEED_MAX}, or random",
        "duration": (
            f"--duration takes a whole number of seconds from {DURATION_MIN} to {DURATION_MAX}"
        ),
        "aspect_ratio": f"--ar takes one of {', '.join(ASPECT_RATIOS)}",
        "resolution": f"--res takes {' or '.join(RESOLUTIONS)}",
        "negative_prompt": '--neg takes text, quoted if it has spaces: --neg "blurry, text"',
    }[name]


def _unknown_flag(written: str) -> str:
    name = written.lstrip("-—–").lower()
    guess = difflib.get_close_matches(name, list(_FLAG_NAMES), n=1)
    hint = f" (did you mean --{guess[0]}?)" if guess else ""
    return f"unknown flag {written}{hint}: use {ALLOWED_FLAGS_TEXT}"
