"""discord_side.limits: every text the bot sends fits Discord's limits, cut to still read well."""

from __future__ import annotations

import datetime

import discord
from hypothesis import given
from hypothesis import strategies as st

from discord_side.limits import (
    CONTENT_MAX,
    EMBED_TOTAL_MAX,
    fit_content,
    fit_embed,
    fit_text,
    length,
    shorten,
)


def embed_total(embed: discord.Embed) -> int:
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    parts.append(embed.author.name or "")
    for field in embed.fields:
        parts += [field.name or "", field.value or ""]
    return sum(length(part) for part in parts)


def test_length_counts_utf16_units() -> None:
    assert length("abc") == 3
    assert length("🎬") == 2  # outside the BMP: a surrogate pair
    assert length("\ud800") == 1  # a lone surrogate still has a length


def test_short_text_is_untouched() -> None:
    assert fit_content("hello") == "hello"
    assert shorten("x" * 2000, 2000) == "x" * 2000


def test_one_long_line_is_cut_with_an_ellipsis() -> None:
    cut = fit_content("y" * 5000)
    assert cut == "y" * 1999 + "…"


def test_a_cut_never_splits_an_emoji() -> None:
    cut = shorten("🎬" * 10, 6)
    assert cut == "🎬🎬…" and length(cut) == 5


def test_a_long_list_keeps_whole_lines_and_says_how_many_more() -> None:
    lines = [f"- the prompt names Image {n} but you attached only 1 image" for n in range(2, 61)]
    text = fit_content("\n".join(lines))
    assert length(text) <= CONTENT_MAX
    kept = text.split("\n")
    assert kept[:-1] == lines[: len(kept) - 1]
    assert kept[-1] == f"…and {len(lines) - len(kept) + 1} more"


@given(st.text(max_size=3000), st.integers(1, 2500))
def test_fit_text_always_fits(text: str, limit: int) -> None:
    fitted = fit_text(text, limit)
    assert length(fitted) <= limit
    if length(text) <= limit:
        assert fitted == text


def test_every_embed_part_is_cut_to_its_limit() -> None:
    embed = discord.Embed(title="t" * 300, description="d" * 5000, colour=0x123456)
    embed.timestamp = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    embed.set_author(name="a" * 300)
    embed.set_footer(text="f" * 100)
    embed.set_thumbnail(url="https://example.invalid/x.png")
    embed.add_field(name="n" * 300, value="v" * 2000, inline=False)
    fitted = fit_embed(embed)
    assert len(fitted.title or "") == 256 and fitted.title.endswith("…")
    assert len(fitted.author.name or "") == 256
    assert len(fitted.fields[0].name or "") == 256 and len(fitted.fields[0].value or "") == 1024
    assert embed_total(fitted) <= EMBED_TOTAL_MAX
    # Everything else is kept as it was.
    assert fitted.colour == embed.colour and fitted.timestamp == embed.timestamp
    assert fitted.thumbnail.url == embed.thumbnail.url and fitted.footer.text == "f" * 100
    assert fitted.fields[0].inline is False
    assert embed.title == "t" * 300  # the original is untouched


def test_an_embed_that_fits_is_unchanged() -> None:
    embed = discord.Embed(title="Jobs", description="none")
    embed.add_field(name="Unfinished", value="`abc` ⏳ Queued")
    assert fit_embed(embed).to_dict() == embed.to_dict()


def test_fields_past_25_become_one_note() -> None:
    embed = discord.Embed(title="History")
    for index in range(40):
        embed.add_field(name=f"job {index}", value="ok")
    fitted = fit_embed(embed)
    assert len(fitted.fields) == 25
    assert [field.name for field in fitted.fields[:24]] == [f"job {i}" for i in range(24)]
    assert fitted.fields[24].value == "…and 16 more"


def test_fields_past_6000_in_all_become_one_note() -> None:
    embed = discord.Embed(title="History", description="d" * 1000)
    for index in range(10):
        embed.add_field(name=f"job {index}", value="v" * 1000)
    fitted = fit_embed(embed)
    assert embed_total(fitted) <= EMBED_TOTAL_MAX
    kept = [field.name for field in fitted.fields[:-1]]
    assert kept == [f"job {i}" for i in range(len(kept))] and len(kept) == 4
    assert fitted.fields[-1].value == f"…and {10 - len(kept)} more"
    assert fitted.description == "d" * 1000


@given(
    st.text(max_size=400),
    st.text(max_size=6000),
    st.lists(st.tuples(st.text(min_size=1, max_size=400), st.text(min_size=1, max_size=1500))),
    st.text(max_size=2500),
)
def test_fit_embed_always_fits(
    title: str, description: str, fields: list[tuple[str, str]], footer: str
) -> None:
    embed = discord.Embed(title=title or None, description=description or None)
    for name, value in fields[:40]:
        embed.add_field(name=name, value=value)
    if footer:
        embed.set_footer(text=footer)
    fitted = fit_embed(embed)
    assert embed_total(fitted) <= EMBED_TOTAL_MAX
    assert len(fitted.fields) <= 25
    assert all(length(f.name or "") <= 256 and length(f.value or "") <= 1024 for f in fitted.fields)
    assert length(fitted.footer.text or "") <= 2048
    assert length(fitted.description or "") <= 4096 and length(fitted.title or "") <= 256
