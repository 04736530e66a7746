"""Saved characters' plain rules: names, ``{name}`` in prompts, slots, limits, permissions."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.characters import (
    NAME_MAX_CHARS,
    CharacterLimits,
    CharacterTag,
    character_slots,
    clean_name,
    limit_problem,
    may_change,
    may_save_server_characters,
    name_key,
    name_problem,
    named_characters,
    names_for_labels,
    rewrite_names,
    split_names,
)
from core.labels import _LABEL_RE, normalise_labels

# ----------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["fox", "Captain Fox", "r2-d2", "mr_whiskers", "7", "Zoë", "狐狸", "a" * NAME_MAX_CHARS],
)
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "needs a name"),
        ("   ", "needs a name"),
        ("a" * (NAME_MAX_CHARS + 1), f"at most {NAME_MAX_CHARS}"),
        ("fox!", "(!)"),
        ("fox{1}", "({ })"),
        ("a,b", "(,)"),
        ("---", "at least one letter or digit"),
        ("Image 1", "looks like a label"),
        ("video2", "looks like a label"),
        ("IMAGE_3", "looks like a label"),
        ("IMAGE #3", "(#)"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, says: str) -> None:
    problem = name_problem(name)
    assert problem is not None and says in problem


def test_names_compare_without_case_and_extra_spaces() -> None:
    assert clean_name("  Captain   Fox ") == "Captain Fox"
    assert name_key("Captain   FOX") == name_key("captain fox")
    assert name_key("Straße") == name_key("STRASSE")  # case folding, not just lower()
    assert name_problem("  Captain   Fox ") is None  # the cleaned name is what counts
    assert name_problem(" " + "a" * NAME_MAX_CHARS + "  ") is None


def test_a_list_of_names_is_split_checked_and_kept_in_order() -> None:
    names, problems = split_names(" fox, Cat ,, bad! , FOX ")
    assert names == ["fox", "Cat"]
    assert len(problems) == 2
    assert "(!)" in problems[0] and "{FOX} is listed twice" in problems[1]
    assert split_names(None) == ([], [])
    assert split_names("") == ([], [])


def test_a_character_tag_round_trips() -> None:
    tag = CharacterTag(7, "Captain Fox")
    assert CharacterTag.from_json(tag.to_json()) == tag


# ----------------------------------------------------------------- {name} in prompts


def test_names_become_their_labels() -> None:
    done = rewrite_names(
        "{fox} chases {Cat}, then {FOX} rests", {"fox": "Image 2", "cat": "Video 1"}
    )
    assert done.text == "Image 2 chases Video 1, then Image 2 rests"
    assert done.used == {"fox": "Image 2", "cat": "Video 1"}  # by the names as saved
    assert done.problems == []


def test_spaces_inside_braces_and_in_names_are_forgiven() -> None:
    done = rewrite_names("{ captain  fox } waves", {"Captain Fox": "Image 1"})
    assert done.text == "Image 1 waves"


def test_a_label_never_merges_with_what_touches_it() -> None:
    labels = {"fox": "Image 2", "cat": "Image 3"}
    assert rewrite_names("{fox}2 and x{cat}", labels).text == "Image 2 2 and x Image 3"
    assert rewrite_names("{fox}{cat}", labels).text == "Image 2 Image 3"
    cjk = rewrite_names("{fox}'s tail, 让{cat}跳舞", labels).text
    assert cjk == "Image 2's tail, 让Image 3跳舞"


def test_braces_around_what_is_no_name_stay_as_written() -> None:
    prompt = "a {dramatic, moody} sky, {} and {x!} and {{fox}}"
    done = rewrite_names(prompt, {"fox": "Image 1"})
    assert done.text == "a {dramatic, moody} sky, {} and {x!} and {Image 1}"
    assert done.problems == []


def test_an_unknown_name_is_refused_with_the_names_there_are() -> None:
    done = rewrite_names("{fox} meets {dog} and {Cow}", {"fox": "Image 1", "Cat": "Image 2"})
    assert done.problems == [
        "the prompt names {dog} and {Cow}, which are not in this video: add them with the"
        " characters option (in this video: {fox} and {Cat})"
    ]
    alone = rewrite_names("{fox} dances", {})
    assert len(alone.problems) == 1 and "no saved characters" in alone.problems[0]


def test_named_characters_in_order_of_first_use() -> None:
    assert named_characters("{Fox} and {cat} and {fox} and {not a name!}") == ["Fox", "cat"]


def test_a_sent_prompt_gets_its_characters_names_back() -> None:
    sent = "Image 1 hands Image 2 to Video 1; Image 2 smiles; Image 12 stays"
    back = names_for_labels(sent, {"Image 2": "fox", "Video 1": "Captain Fox"})
    assert back == "Image 1 hands {fox} to {Captain Fox}; {fox} smiles; Image 12 stays"
    labels = {"fox": "Image 3", "Captain Fox": "Video 1"}
    assert rewrite_names(back, labels).text == sent.replace("Image 2", "Image 3")


# Property-based: prompts made of plain text (labels included) and {name} references.

NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,10}", fullmatch=True).filter(
    lambda name: name_problem(name) is None
)
PLAIN = st.text(
    alphabet=st.sampled_from(list("abcImagevideoVIDEO 0123456789#_-.,!?\n'让跳")), max_size=20
) | st.sampled_from(["Image 1", "image2", "Video 3", "IMAGE #2", " video-1 ", "Image 10"])


@st.composite
def prompts(draw: st.DrawFn) -> tuple[list[str | tuple[str, str]], dict[str, str]]:
    """Segments (plain text, or ``(name, as written)``) and the video's name → label map."""
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique_by=name_key))
    labels = {
        name: f"{draw(st.sampled_from(['Image', 'Video']))} {index}"
        for index, name in enumerate(names, start=1)
    }
    segments: list[str | tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            segments.append(draw(PLAIN))
        else:
            name = draw(st.sampled_from(names))
            written = draw(st.sampled_from([name, name.upper(), name.lower(), f" {name}  "]))
            segments.append((name, written))
    return segments, labels


def compose(segments: list[str | tuple[str, str]], reference: str | None = None) -> str:
    """The prompt; with ``reference`` given, each {name} written as that instead."""
    return "".join(
        part if isinstance(part, str) else (reference or "{" + part[1] + "}") for part in segments
    )


def label_counts(text: str) -> Counter[str]:
    return Counter(normalise_labels(match[0]) for match in _LABEL_RE.finditer(text))


@given(prompts())
def test_rewriting_invents_no_label_and_maps_each_name_to_exactly_one(
    case: tuple[list[str | tuple[str, str]], dict[str, str]],
) -> None:
    segments, labels = case
    done = rewrite_names(compose(segments), labels)
    assert done.problems == []
    plain = label_counts(compose(segments, reference=" | "))
    expected = plain + Counter(labels[part[0]] for part in segments if not isinstance(part, str))
    # Every label in the result was in the plain text or stands for exactly one {name}.
    assert label_counts(done.text) == expected
    assert named_characters(done.text) == []  # every {name} was replaced


@given(prompts())
def test_text_outside_names_is_kept_in_order(
    case: tuple[list[str | tuple[str, str]], dict[str, str]],
) -> None:
    segments, labels = case
    done = rewrite_names(compose(segments), labels)
    position = 0
    for part in segments:
        if isinstance(part, str):
            found = done.text.find(part, position)
            assert found >= 0, (part, done.text)
            position = found + len(part)
        else:
            label = labels[part[0]]
            found = done.text.find(label, position)
            assert found >= 0 and done.text[position:found].strip() == ""
            position = found + len(label)


@given(st.text(max_size=60))
def test_a_prompt_without_names_is_untouched(prompt: str) -> None:
    assume(not named_characters(prompt))
    done = rewrite_names(prompt, {"fox": "Image 1"})
    assert done.text == prompt and done.problems == [] and done.used == {}


@given(prompts(), NAME)
def test_a_name_not_in_the_video_is_always_refused(
    case: tuple[list[str | tuple[str, str]], dict[str, str]], stranger: str
) -> None:
    segments, labels = case
    assume(name_key(stranger) not in {name_key(name) for name in labels})
    done = rewrite_names(compose([*segments, "{" + stranger + "}"]), labels)
    assert len(done.problems) == 1 and "{" + clean_name(stranger) + "}" in done.problems[0]


# ----------------------------------------------------------------- slots


def test_characters_come_after_the_attached_files() -> None:
    assert character_slots([], 3, 5) == [1, 2, 3]
    assert character_slots([1, 2], 2, 5) == [3, 4]
    assert character_slots([1, 3], 2, 5) == [4, 5]  # ref 3 keeps the label it had
    assert character_slots([5], 2, 5) == [1, 2]  # no room after: before it
    assert character_slots([1, 2, 3, 4], 3, 5) == [5]  # only what is free


# ----------------------------------------------------------------- limits and permissions


def test_limits_have_a_clear_message_at_the_limit() -> None:
    limits = CharacterLimits(per_member=2, per_server=3)
    assert limit_problem("me", 1, limits) is None
    mine = limit_problem("me", 2, limits)
    assert mine is not None and "most a member may keep (2)" in mine and "/character delete" in mine
    assert limit_problem("server", 2, limits) is None
    server = limit_problem("server", 3, limits)
    assert server is not None and "(3)" in server and "moderator" in server


def test_who_may_save_server_characters() -> None:
    assert may_save_server_characters(moderator=True, role_ids=[], editor_role_id=None)
    assert not may_save_server_characters(moderator=False, role_ids=[5], editor_role_id=None)
    assert may_save_server_characters(moderator=False, role_ids=[4, 5], editor_role_id=5)
    assert not may_save_server_characters(moderator=False, role_ids=[4], editor_role_id=5)


def test_who_may_rename_or_delete() -> None:
    assert may_change(scope="me", owner_id=1, user_id=1, moderator=False)
    assert not may_change(scope="me", owner_id=1, user_id=2, moderator=True)
    assert may_change(scope="server", owner_id=1, user_id=2, moderator=True)
    assert not may_change(scope="server", owner_id=1, user_id=2, moderator=False)
    assert may_change(scope="server", owner_id=1, user_id=1, moderator=False)


def test_the_label_pattern_used_here_is_the_builders() -> None:
    # The tests count labels with the builder's own pattern: check it reads what we mean.
    assert [m[0] for m in _LABEL_RE.finditer("Image 1, image2, x video-3y, Video 4")] == [
        "Image 1",
        "image2",
        "Video 4",
    ]
