"""Webhook signatures (see API_NOTES "Webhooks"): the HMAC check with its timestamp window, and
the guard that answers a replayed ``webhook-id`` only once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Mapping

TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


def signing_keys(secret: str) -> tuple[bytes, ...]:
    """The HMAC keys to try: the secret's raw bytes, then its base64 decoding (``whsec_`` stripped).

    The API's Python/JS samples use the raw secret, its PHP sample decodes it first.
    """
    keys = [secret.encode()]
    encoded = secret.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded and decoded not in keys:
        keys.append(decoded)
    return tuple(keys)


def signature_problem(
    keys: tuple[bytes, ...], headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """Why a delivery's signature is refused, or None when it is valid. Never mentions the key."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signature = lowered.get("webhook-signature", "")
    if not (webhook_id and timestamp and signature):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        return "malformed webhook-timestamp"
    skew = now - int(timestamp)
    if abs(skew) > TIMESTAMP_TOLERANCE_SECONDS:
        # Reported so that a wrong server clock can be told apart from a forgery.
        return f"webhook-timestamp is {skew:+.0f}s off"
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    for entry in signature.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # compare_digest: the time taken says nothing about how much of a forgery was right.
        if any(hmac.compare_digest(candidate, digest) for digest in expected):
            return None
    return "no matching v1 signature"


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """True when ``body`` carries a valid, fresh signature made with ``secret``."""
    return signature_problem(signing_keys(secret), headers, body, now) is None


class ReplayGuard:
    """Remembers recently accepted ``webhook-id``s, bounded in size and time.

    In memory is enough: a delivery older than the timestamp tolerance is refused anyway, so an id
    only has to be remembered for about twice that window, and a restart only reopens that window
    for deliveries that were already verified. Only verified ids are recorded (so nobody can
    poison the guard), and an unverified body is only a hint: the tracker re-reads the task.
    """

    def __init__(
        self,
        ttl_seconds: float = 2 * TIMESTAMP_TOLERANCE_SECONDS,
        max_entries: int = 10_000,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, webhook_id: str, now: float) -> bool:
        """Record ``webhook_id``; False when it was already seen and has not expired."""
        self._prune(now)
        if webhook_id in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            # Only signed deliveries get here, so a full guard means a flood from the API itself.
            self._expiry.popitem(last=False)
        self._expiry[webhook_id] = now + self._ttl
        return True

    def release(self, webhook_id: str) -> None:
        """Forget an id whose delivery failed on our side, so the sender's retry is handled."""
        self._expiry.pop(webhook_id, None)

    def _prune(self, now: float) -> None:
        while self._expiry:
            oldest_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[oldest_id]
