"""core.text: what counts as visible, what is removed before sending, and what can't be sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import clean, fit_lines, has_visible, unencodable

INVISIBLE = "\u200b\u2060\ufeff\u00ad\u180e\u202e\u2066\u200e\x00\x7f"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        INVISIBLE,
        "\u3164\u115f\u1160\uffa0\u2800",  # "blank" letters and the blank Braille pattern
        "\u00a0\u3000\u2028",  # separators that are not ASCII
        "\u0301\u034f\ufe0f",  # combining marks with nothing to combine with
    ],
)
def test_nothing_visible(text: str) -> None:
    assert not has_visible(clean(text))


def test_invisible_filler_is_removed_and_the_rest_kept() -> None:
    assert clean(f"  {INVISIBLE}Image\u200b 1 runs{INVISIBLE}  ") == "Image 1 runs"
    assert clean("a\u3164b") == "a b"
    assert clean("line one\r\nline\ttwo") == "line one\nline\ttwo"


def test_joiners_and_emoji_sequences_survive() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    persian = "می\u200cخواهم"
    for text in (family, scotland, persian, "☺\ufe0f"):
        assert clean(text) == text and has_visible(text)


def test_nfc_after_the_filler_is_gone() -> None:
    assert clean("Cafe\u0301") == "Café"
    assert clean("Cafe\u200b\u0301") == "Café" and len(clean("Cafe\u200b\u0301")) == 4


def test_unassigned_code_points_count_as_visible() -> None:
    # An emoji newer than this Python's Unicode tables must not make a prompt "empty".
    assert has_visible("\U0001faf8")


def test_unencodable_names_the_first_lone_surrogate() -> None:
    assert unencodable("fine ✓ 🎬") is None
    assert unencodable("half \ud83d of an emoji \udc00") == "U+D83D"


@given(st.text())
def test_clean_is_idempotent_and_only_removes(text: str) -> None:
    once = clean(text)
    assert clean(once) == once


def test_fit_lines_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"line {index}" for index in range(10)]
    assert fit_lines(lines, 1000) == lines
    fitted = fit_lines(lines, 40)
    assert fitted == ["line 0", "line 1", "line 2", "line 3", "…and 6 more"]
    assert len("\n".join(fitted)) <= 40


@given(st.lists(st.text(min_size=1, max_size=30), max_size=30), st.integers(20, 400))
def test_fit_lines_always_fits(lines: list[str], budget: int) -> None:
    fitted = fit_lines(lines, budget, more="- …and {n} more")
    assert len("\n".join(fitted)) <= budget
    if fitted != lines:
        kept = fitted[:-1]
        assert kept == lines[: len(kept)]
        assert fitted[-1] == f"- …and {len(lines) - len(kept)} more"
