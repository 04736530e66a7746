"""Per-job webhook URLs: the token in each job's URL, derived from a secret, never stored.

Each job gets its own unguessable URL (``/webhooks/wan/{token}``); the store keeps only the
token's digest, which is what the receiver looks a delivery up by.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable

from core.config import Settings
from core.jobs import Job

log = logging.getLogger(__name__)

WEBHOOK_ROUTE = "/webhooks/wan/{token}"

# A job's token is derived, never stored: HMAC-SHA256 of the job id under a key taken from a
# secret the bot is given (WEBHOOK_SECRET when set, else the API key), so the database holds only
# its digest and a copy of the database alone cannot call a job's webhook. The label separates
# this use of the secret from its use for signatures.
_TOKEN_KEY_LABEL = b"wan-r2v-bot: per-job webhook tokens, v1"


def webhook_token_key(secret: str) -> bytes:
    """The key job tokens are derived with. Never stored, never logged."""
    return hmac.new(secret.encode(), _TOKEN_KEY_LABEL, hashlib.sha256).digest()


def job_webhook_token(key: bytes, job_id: str) -> str:
    """The token in ``job_id``'s webhook URL: 43 URL-safe characters."""
    mac = hmac.new(key, job_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def webhook_url_for(public_base: str, token: str) -> str:
    """The URL the API should call for the job owning ``token``."""
    return public_base.rstrip("/") + WEBHOOK_ROUTE.replace("{token}", token)


def token_digest(token: str) -> str:
    """A stable key to store and look tokens up by.

    Looking up a SHA-256 digest in a dict leaks nothing useful through timing (an attacker cannot
    steer the digest byte by byte), so the receiver needs no constant-time scan over all jobs.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    """The only part of a token that may appear in a log."""
    return token[:6] + "…"


class JobWebhooks:
    """Per-job webhook URLs for one configuration: the digest to store, the URL to submit."""

    def __init__(self, secret: str, public_url: str) -> None:
        self._key = webhook_token_key(secret)
        self._public_url = public_url

    def __repr__(self) -> str:
        return f"JobWebhooks({self._public_url!r})"  # never the key

    def digest(self, job_id: str) -> str:
        """What the store keeps for ``job_id`` (the receiver looks deliveries up by it)."""
        return token_digest(job_webhook_token(self._key, job_id))

    def url(self, job: Job) -> str | None:
        """The URL to submit ``job`` with; None when the job is to be tracked by polling.

        None when the job was accepted without webhooks, or its stored digest is not this key's:
        the key changed (WEBHOOK_SECRET set, rotated or unset, or the API key rotated) between
        acceptance and submission, or the job predates derived tokens. Its token cannot be
        rebuilt, and a URL the receiver would not know is worse than none. Jobs already
        submitted are unaffected by a key change: the API calls the URL it was given, and the
        receiver finds the job by that token's stored digest.
        """
        if job.webhook_token_hash is None:
            return None
        token = job_webhook_token(self._key, job.id)
        if not hmac.compare_digest(token_digest(token), job.webhook_token_hash):
            log.info("job %s: webhook key changed since it was accepted; polling it", job.id)
            return None
        return webhook_url_for(self._public_url, token)


def job_webhooks(settings: Settings) -> JobWebhooks | None:
    """The bot's per-job webhook URLs, or None when webhooks are off."""
    if settings.webhook_public_url is None:
        return None
    return JobWebhooks(settings.webhook_secret or settings.wan_api_key, settings.webhook_public_url)


def webhook_url_source(settings: Settings) -> Callable[[Job], str | None] | None:
    """What the tracker asks for each job's URL at submit time: ``Tracker(webhook_url=...)``."""
    webhooks = job_webhooks(settings)
    return None if webhooks is None else webhooks.url
