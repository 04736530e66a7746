"""Logs never carry secrets or tokens, whatever the logger and level; LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.logging_setup import REDACTED, RedactingFilter, configure_logging

DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz012345"
API_KEY = "FPSX0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWJ5dGVz"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6"
SECRETS = (DISCORD_TOKEN, API_KEY, WEBHOOK_SECRET)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Bot {DISCORD_TOKEN}",
        f"headers={{'x-freepik-api-key': '{API_KEY}'}}",
        f"secret {WEBHOOK_SECRET} and without prefix {WEBHOOK_SECRET.removeprefix('whsec_')}",
        f"POST https://discord.com/api/v10/interactions/123/{INTERACTION_TOKEN}/callback with {{}}",
        f"PATCH https://discord.com/api/v10/webhooks/99/{INTERACTION_TOKEN}/messages/@original",
        f"POST http://127.0.0.1:8080/webhooks/wan/{INTERACTION_TOKEN[:43]}",
        f"WebSocket Event: {{'t': 'INTERACTION_CREATE', 'd': {{'token': '{INTERACTION_TOKEN}'}}}}",
        f'{{"type": 2, "token": "{INTERACTION_TOKEN}", "id": "1"}}',
        "Authorization: Bot some.other.token-that-is-not-configured",
    ],
)
def test_secrets_and_tokens_are_redacted(line: str) -> None:
    cleaned = RedactingFilter(SECRETS).redact(line)
    assert REDACTED in cleaned
    for secret in (*SECRETS, WEBHOOK_SECRET.removeprefix("whsec_"), INTERACTION_TOKEN[:43]):
        assert secret not in cleaned
    assert "some.other.token-that-is-not-configured" not in cleaned


def test_ordinary_text_is_left_alone() -> None:
    line = "job 3fa1c2b4d5e6: delivered as message 123 in /channels/5/messages (token_prefix ok)"
    assert RedactingFilter(SECRETS).redact(line) == line


def test_short_or_missing_secrets_do_not_blank_out_words() -> None:
    redactor = RedactingFilter(["abc", None, ""])
    assert redactor.redact("abc def") == "abc def"


def test_discord_debug_lines_and_tracebacks_are_redacted_at_every_level(
    stream: io.StringIO,
) -> None:
    configure_logging("DEBUG", "text", SECRETS, stream=stream)
    http = logging.getLogger("discord.http")
    url = f"https://discord.com/api/v10/interactions/1/{INTERACTION_TOKEN}/callback"
    http.debug("%s %s with %s has returned %s", "POST", url, {"type": 5}, 204)
    logging.getLogger("discord.gateway").debug(
        "For Shard ID %s: WebSocket Event: %s", None, {"d": {"token": INTERACTION_TOKEN}}
    )
    try:
        raise RuntimeError(f"request to {url} failed with key {API_KEY}")
    except RuntimeError:
        logging.getLogger("core.wan").exception("failed for %s", DISCORD_TOKEN)
    text = stream.getvalue()
    assert "has returned 204" in text and "RuntimeError" in text and "Traceback" in text
    for secret in (*SECRETS, INTERACTION_TOKEN):
        assert secret not in text
    assert text.count(REDACTED) >= 5


def test_json_format_is_one_object_a_line(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", SECRETS, stream=stream)
    log = logging.getLogger("bot")
    log.info("started as %s with %s", "wan-bot", DISCORD_TOKEN)
    log.debug("not shown at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries] == [f"started as wan-bot with {REDACTED}", "it failed"]
    assert entries[0]["level"] == "INFO" and entries[0]["logger"] == "bot"
    assert entries[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in entries[1]["exception"]
    assert "exception" not in entries[0]


def test_a_record_with_bad_arguments_is_still_logged_and_redacted(stream: io.StringIO) -> None:
    configure_logging("INFO", "text", SECRETS, stream=stream)
    logging.getLogger("x").info("two %s %s", API_KEY)  # one argument missing
    text = stream.getvalue()
    assert "two" in text and API_KEY not in text
