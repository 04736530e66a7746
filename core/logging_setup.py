"""Logging for the whole process: one root handler that never lets a secret through.

Every record reaching the root handler (discord.py's and aiohttp's included, at any level) passes
:class:`RedactingFilter` first, which replaces the configured secrets (the Discord token, the API
key, the webhook secret) and every token-shaped part of a URL or payload (interaction and
webhook tokens) with ``<redacted>``, in the message, its arguments and its traceback.
``LOG_FORMAT=json`` writes one JSON object a line for log collectors.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 8  # shorter "secrets" would blank out ordinary words
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Tokens that travel in URL paths: Discord's interaction callbacks and interaction webhooks
# (/interactions/{id}/{token}/callback, /webhooks/{application}/{token}/...), and this bot's own
# webhook receiver (/webhooks/wan/{token}).
_PATH_TOKENS = re.compile(r"(/(?:interactions|webhooks)/[^/\s'\"]+/)([^/\s?#'\"<>]+)")
# Tokens in payloads as discord.py logs them (a dict's repr or JSON): "token": "...".
_FIELD_TOKENS = re.compile(r"""(['"](?:token|access_token)['"]\s*:\s*['"])([^'"]+)(['"])""")
_BOT_AUTH = re.compile(r"(\bBot\s+)[A-Za-z0-9._\-]{20,}")

_EXCEPTIONS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no secret or token is left in it; never drops a record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        found: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            found.add(secret)
            # A webhook secret may be written with or without its "whsec_" prefix.
            found.add(secret.removeprefix("whsec_"))
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(
            (s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _PATH_TOKENS.sub(rf"\1{REDACTED}", text)
        text = _FIELD_TOKENS.sub(rf"\1{REDACTED}\3", text)
        return _BOT_AUTH.sub(rf"\1{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # wrong arguments: still show what there is, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        # The traceback is rendered (and redacted) now; formatters must not render it again.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str,
    log_format: str,
    secrets: Iterable[str | None],
    stream: TextIO | None = None,
) -> RedactingFilter:
    """Replace the root logger's handlers with one redacting handler on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    redactor = RedactingFilter(secrets)
    handler.addFilter(redactor)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings go through the same filter
    return redactor
