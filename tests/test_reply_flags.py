"""core.reply_flags: a thread reply → new prompt + setting overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.references import GenerationOptions, InvalidInput
from core.reply_flags import (
    Overrides,
    ReplyFlagError,
    ReplyRequest,
    parse_reply,
)
from core.request import SEED_MAX

BOT_ID = 123


def refused(text: str) -> list[str]:
    with pytest.raises(ReplyFlagError) as caught:
        parse_reply(text, BOT_ID)
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "overrides"),
    [
        ("--seed 42", Overrides(seed=42)),
        ("--seed=0", Overrides(seed=0)),
        (f"--seed {SEED_MAX}", Overrides(seed=SEED_MAX)),
        ("--seed random", Overrides(new_seed=True)),
        ("--duration 8", Overrides(duration=8)),
        ("--dur 2", Overrides(duration=2)),
        ("--dur 10s", Overrides(duration=10)),
        ("--DUR 8", Overrides(duration=8)),
        ("--ar 9:16", Overrides(aspect_ratio="9:16")),
        ("--aspect 1:1", Overrides(aspect_ratio="1:1")),
        ("--ar 4x3", Overrides(aspect_ratio="4:3")),
        ("--res 720P", Overrides(resolution="720P")),
        ("--resolution 1080p", Overrides(resolution="1080P")),
        ("--no-extend", Overrides(prompt_extend=False)),
        ("--no_extend", Overrides(prompt_extend=False)),
        ("--extend", Overrides(prompt_extend=True)),
        ('--neg "blurry, text"', Overrides(negative_prompt="blurry, text")),
        ("--negative watermark", Overrides(negative_prompt="watermark")),
        ('--neg ""', Overrides(negative_prompt="")),
        ("—seed 7", Overrides(seed=7)),  # a phone turned "--" into an em dash
        ("–dur 3", Overrides(duration=3)),
    ],
)
def test_each_flag(text, overrides):
    assert parse_reply(text, BOT_ID) == ReplyRequest("", overrides)


def test_flags_anywhere_and_the_rest_is_the_prompt():
    reply = parse_reply(
        '<@123> --seed 42 Image 1 now --dur 8 dances --neg "blurry, text" in the rain --ar 9:16',
        BOT_ID,
    )
    assert reply == ReplyRequest(
        "Image 1 now dances in the rain",
        Overrides(seed=42, duration=8, negative_prompt="blurry, text", aspect_ratio="9:16"),
    )


def test_no_flags_is_all_prompt():
    assert parse_reply("  Image 1 jumps  ", BOT_ID) == ReplyRequest("Image 1 jumps", Overrides())


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("<@123> Image 1 waves", "Image 1 waves"),
        ("<@!123>Image 1 waves", "Image 1 waves"),
        ("  <@123>  Image 1 waves", "Image 1 waves"),
        ("<@999> Image 1 waves", "<@999> Image 1 waves"),  # someone else's mention stays
        ("Image 1 waves at <@123>", "Image 1 waves at <@123>"),  # only a leading one goes
    ],
)
def test_leading_bot_mention_is_stripped(text, prompt):
    assert parse_reply(text, BOT_ID).prompt == prompt


def test_without_a_bot_id_mentions_stay():
    assert parse_reply("<@123> hi").prompt == "<@123> hi"


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("a  cat --seed 4 dances", "a  cat dances"),  # the user's own spacing is kept
        ("a cat --seed 4", "a cat"),
        ("a cat\n--seed 4 --dur 5\ndances", "a cat\ndances"),  # a flags-only line goes
        ("first\n\nsecond --seed 4", "first\n\nsecond"),  # blank lines the user wrote stay
        ("a cat --seed 4\t\nsits", "a cat\nsits"),
        ("a -- b", "a -- b"),  # not a flag: no letter after the dashes
        ("count --5 down", "count --5 down"),
        ("a cat — the big one", "a cat — the big one"),
    ],
)
def test_prompt_whitespace_is_kept_sensibly(text, prompt):
    assert parse_reply(text, BOT_ID).prompt == prompt


@pytest.mark.parametrize(
    ("text", "negative", "prompt"),
    [
        ('x --neg "blurry, text" y', "blurry, text", "x y"),
        ("x --neg “smart quotes” y", "smart quotes", "x y"),
        ("x --neg ‘single smart’ y", "single smart", "x y"),
        ('x --neg “mixed" y', "mixed", "x y"),
        ("x --neg 'don't blur' y", "don't blur", "x y"),
        ('x --neg "blurry", y', "blurry", "x , y"),
        ('x --neg="a b" y', "a b", "x y"),
        ('x --neg "  padded  " y', "padded", "x y"),
        # Unbalanced: to the next flag, or to the end of the line.
        ('x --neg "open ended --seed 5 y', "open ended", "x y"),
        ('x --neg "open ended\ny', "open ended", "x\ny"),
        ("x --neg blurry text", "blurry", "x text"),  # unquoted: one word, like a shell
    ],
)
def test_negative_prompt_quoting(text, negative, prompt):
    reply = parse_reply(text, BOT_ID)
    assert (reply.overrides.negative_prompt, reply.prompt) == (negative, prompt)


def test_unbalanced_quote_still_parses_the_following_flag():
    assert parse_reply('--neg "blurry --seed 5', BOT_ID).overrides == Overrides(
        negative_prompt="blurry", seed=5
    )


def test_last_repeat_wins():
    assert parse_reply("--seed 1 --seed 2 --extend --no-extend", BOT_ID).overrides == Overrides(
        seed=2, prompt_extend=False
    )


ALLOWED = (
    "--seed N, --duration/--dur N, --ar/--aspect RATIO, --res/--resolution 720P|1080P, "
    '--neg "text", --extend, --no-extend'
)
SEED_USAGE = "--seed takes a whole number from 0 to 2147483647, or random"
DURATION_USAGE = "--duration takes a whole number of seconds from 2 to 10"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("--foo 3", f"unknown flag --foo: use {ALLOWED}"),
        ("--sed 3", f"unknown flag --sed (did you mean --seed?): use {ALLOWED}"),
        (
            "--seed",
            f"--seed needs a value: {SEED_USAGE}",
        ),
        (
            "--dur --seed 4",
            f"--dur needs a value: {DURATION_USAGE}",
        ),
        (
            "--neg",
            '--neg needs a value: --neg takes text, quoted if it has spaces: --neg "blurry, text"',
        ),
        (
            "--seed abc",
            f"--seed 'abc' is not a number: {SEED_USAGE}",
        ),
        (
            "--seed 1.5",
            f"--seed '1.5' is not a number: {SEED_USAGE}",
        ),
        ("--seed -1", "seed -1 is out of range: use a whole number from 0 to 2147483647"),
        (
            f"--seed {SEED_MAX + 1}",
            f"seed {SEED_MAX + 1} is out of range: use a whole number from 0 to 2147483647",
        ),
        (
            "--dur eight",
            f"--dur 'eight' is not a number: {DURATION_USAGE}",
        ),
        ("--dur 1", "duration 1 s is out of range: use a whole number of seconds from 2 to 10"),
        (
            "--duration 11",
            "duration 11 s is out of range: use a whole number of seconds from 2 to 10",
        ),
        ("--ar 5:4", "aspect ratio '5:4' is not offered: use 16:9, 9:16, 1:1, 4:3 or 3:4"),
        ("--res 4k", "resolution '4k' is not offered: use 720P or 1080P"),
        ("--extend=yes", "--extend takes no value"),
        ("--neg " + "n" * 501, "the negative prompt is 501 characters: at most 500"),
    ],
)
def test_bad_flags_are_refused_specifically(text, problem):
    assert refused(text) == [problem]


def test_every_flag_problem_is_reported_at_once():
    found = refused("a cat --foo --seed x --dur 11 dances --ar 2:1")
    assert found == [
        f"unknown flag --foo: use {ALLOWED}",
        f"--seed 'x' is not a number: {SEED_USAGE}",
        "duration 11 s is out of range: use a whole number of seconds from 2 to 10",
        "aspect ratio '2:1' is not offered: use 16:9, 9:16, 1:1, 4:3 or 3:4",
    ]


def test_reply_flag_error_is_invalid_input():
    # The cog reports both the same way.
    with pytest.raises(InvalidInput):
        parse_reply("--bogus", BOT_ID)


# --- applying ------------------------------------------------------------------------------------

BASE = GenerationOptions(
    negative_prompt="old neg", aspect_ratio="16:9", resolution="1080P", duration=5, seed=9
)


def test_apply_changes_only_what_was_given():
    changed = Overrides(duration=8, resolution="720P", prompt_extend=False).apply(BASE)
    assert changed == GenerationOptions(
        negative_prompt="old neg",
        aspect_ratio="16:9",
        resolution="720P",
        duration=8,
        seed=9,
        prompt_extend=False,
    )


def test_apply_nothing_keeps_everything():
    assert Overrides().apply(BASE) == BASE


def test_apply_random_seed_drops_the_old_seed():
    assert parse_reply("--seed random").overrides.apply(BASE).seed is None


def test_apply_empty_negative_prompt_removes_it():
    assert parse_reply('--neg ""').overrides.apply(BASE).negative_prompt is None


def test_apply_new_values():
    reply = parse_reply('--seed 1 --ar 9:16 --neg "new neg"')
    assert reply.overrides.apply(BASE) == GenerationOptions(
        negative_prompt="new neg", aspect_ratio="9:16", resolution="1080P", duration=5, seed=1
    )


# --- round trip ----------------------------------------------------------------------------------

words = st.lists(
    st.text(alphabet="abcxyz,.!?'", min_size=1, max_size=6).filter(lambda w: w[0] != "'"),
    max_size=6,
)
negative_text = st.text(alphabet="abc ,", min_size=1, max_size=30).map(str.strip)


@st.composite
def flag_sets(draw: st.DrawFn) -> tuple[list[str], Overrides]:
    """Rendered flags (in a random order and spelling) and the overrides they mean."""
    flags: list[str] = []
    fields: dict[str, object] = {}
    if draw(st.booleans()):
        fields["seed"] = draw(st.integers(0, SEED_MAX))
        flags.append(f"--seed {fields['seed']}")
    if draw(st.booleans()):
        fields["duration"] = draw(st.integers(2, 10))
        name = draw(st.sampled_from(["--duration", "--dur", "—dur"]))
        flags.append(f"{name} {fields['duration']}{draw(st.sampled_from(['', 's']))}")
    if draw(st.booleans()):
        fields["aspect_ratio"] = draw(st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4"]))
        flags.append(f"{draw(st.sampled_from(['--ar', '--aspect']))} {fields['aspect_ratio']}")
    if draw(st.booleans()):
        fields["resolution"] = draw(st.sampled_from(["720P", "1080P"]))
        resolution = str(fields["resolution"])
        spelled = resolution.upper() if draw(st.booleans()) else resolution.lower()
        flags.append(f"{draw(st.sampled_from(['--res', '--resolution']))} {spelled}")
    if draw(st.booleans()):
        fields["negative_prompt"] = draw(negative_text)
        quotes: str = draw(st.sampled_from(['""', "“”", "''", "‘’", '“"']))
        opening, closing = quotes[0], quotes[1]
        flags.append(f"--neg {opening}{fields['negative_prompt']}{closing}")
    if draw(st.booleans()):
        fields["prompt_extend"] = draw(st.booleans())
        flags.append("--extend" if fields["prompt_extend"] else "--no-extend")
    return draw(st.permutations(flags)), Overrides(**fields)  # type: ignore[arg-type]


@given(flag_sets(), words, st.data())
def test_flags_round_trip_anywhere_in_the_text(flag_set, prompt_words, data):
    flags, overrides = flag_set
    tokens = list(prompt_words)
    for flag in flags:  # scatter the flags among the prompt's words
        tokens.insert(data.draw(st.integers(0, len(tokens))), flag)
    mention = data.draw(st.sampled_from(["", "<@123> ", "<@!123>"]))
    reply = parse_reply(mention + " ".join(tokens), BOT_ID)
    assert reply == ReplyRequest(" ".join(prompt_words), overrides)
