"""The prompt and negative prompt as they will be sent (clean, labels spelled out), and what is
wrong with them: broken characters, nothing visible, too long."""

from __future__ import annotations

from core.labels import normalise_labels
from core.request import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS
from core.text import clean, has_visible, unencodable


def prompt_text(prompt: str) -> tuple[str, list[str]]:
    """The prompt as it will be sent (clean, labels spelled out) and the problems with it."""
    bad = unencodable(prompt)
    if bad is not None:
        return "", [_broken_text("the prompt", bad)]
    cleaned = clean(prompt)
    sent = normalise_labels(cleaned)
    if not has_visible(cleaned):
        why = " (it has only invisible characters)" if prompt.strip() else ""
        return sent, [
            f"the prompt is empty{why}: describe the scene, naming references as "
            "Image 1, Video 1, …"
        ]
    return sent, _prompt_length_problems(cleaned, sent)


def negative_text(negative: str | None) -> tuple[str | None, list[str]]:
    """The negative prompt to send (None: none, or only invisible characters), and problems."""
    if negative is None:
        return None, []
    bad = unencodable(negative)
    if bad is not None:
        return None, [_broken_text("the negative prompt", bad)]
    cleaned = clean(negative)
    if not has_visible(cleaned):
        return None, []
    if len(cleaned) > NEGATIVE_PROMPT_MAX_CHARS:
        return cleaned, [
            f"the negative prompt is {len(cleaned)} characters: at most {NEGATIVE_PROMPT_MAX_CHARS}"
        ]
    return cleaned, []


def _broken_text(what: str, character: str) -> str:
    # A lone surrogate: half of an emoji or rare character, cut by a broken client or a bad paste.
    return (
        f"{what} contains a broken character ({character}) that can't be sent: "
        "type it again, or paste it from somewhere else"
    )


def _prompt_length_problems(stripped: str, sent: str) -> list[str]:
    if len(sent) <= PROMPT_MAX_CHARS:
        return []
    if len(stripped) > PROMPT_MAX_CHARS:
        return [f"the prompt is {len(stripped)} characters: at most {PROMPT_MAX_CHARS}"]
    # Only our label spelling ("image1" → "Image 1") pushed it over.
    return [
        f"the prompt is {len(sent)} characters once labels are spelled out as "
        f'"Image 1": at most {PROMPT_MAX_CHARS}'
    ]
