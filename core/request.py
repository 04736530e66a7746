"""The WAN 2.7 Reference-to-Video request: documented limits, the exact JSON body, the stored form.

Everything here is plain data. Validation of user input lives in ``core.references``; this
module only knows the API's vocabulary and how to say it on the wire (:meth:`to_json`), and how
the store keeps a request (:meth:`to_stored`, versioned, in our own words): the wire body may
carry what must never rest in the database (the per-job webhook URL and its token).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

# Documented limits (product page + API reference).
MAX_REFERENCES: Final = 5
PROMPT_MAX_CHARS: Final = 5000
NEGATIVE_PROMPT_MAX_CHARS: Final = 500
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4")
RESOLUTIONS: Final = ("720P", "1080P")
DURATION_MIN: Final = 2
DURATION_MAX: Final = 10
SEED_MIN: Final = 0
SEED_MAX: Final = 2_147_483_647
IMAGE_MIN_SIDE_PX: Final = 240
IMAGE_MAX_SIDE_PX: Final = 8000
IMAGE_MAX_BYTES: Final = 20 * 1000 * 1000
VIDEO_MAX_BYTES: Final = 100 * 1000 * 1000

DEFAULT_ASPECT_RATIO: Final = "16:9"
DEFAULT_RESOLUTION: Final = "1080P"
DEFAULT_DURATION: Final = 5
DEFAULT_PROMPT_EXTEND: Final = True

# The version of GenerationRequest.to_stored(); rows without "v" hold the API body (version 0).
STORED_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Reference:
    """One character reference as the API takes it: a media URL and an optional voice clip."""

    url: str
    voice_url: str | None = None

    def to_json(self) -> dict[str, str]:
        body = {"url": self.url}
        if self.voice_url is not None:
            body["reference_voice"] = self.voice_url
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        return cls(url=str(data["url"]), voice_url=data.get("reference_voice"))

    def to_stored(self) -> dict[str, str | None]:
        return {"url": self.url, "voice_url": self.voice_url}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Reference:
        voice = data.get("voice_url")
        return cls(url=str(data["url"]), voice_url=None if voice is None else str(voice))


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A create-task body. Unset optionals (``None``) are omitted from the JSON."""

    prompt: str
    image_refs: tuple[Reference, ...] = ()
    video_refs: tuple[Reference, ...] = ()
    negative_prompt: str | None = None
    start_image_url: str | None = None
    aspect_ratio: str | None = None
    resolution: str = DEFAULT_RESOLUTION
    duration: int = DEFAULT_DURATION
    seed: int | None = None
    prompt_extend: bool = DEFAULT_PROMPT_EXTEND
    # Wire only: to_stored() leaves it out, since its token must never rest in the database.
    webhook_url: str | None = field(default=None, compare=False)

    @property
    def reference_count(self) -> int:
        return len(self.image_refs) + len(self.video_refs)

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The body for ``POST /v1/ai/reference-to-video/wan-2-7``."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.webhook_url is not None:
            body["webhook_url"] = self.webhook_url
        if self.negative_prompt:
            body["negative_prompt"] = self.negative_prompt
        if self.image_refs:
            body["image_urls"] = [ref.to_json() for ref in self.image_refs]
        if self.video_refs:
            body["video_urls"] = [ref.to_json() for ref in self.video_refs]
        if self.start_image_url is not None:
            body["start_image_url"] = self.start_image_url
        # The API ignores aspect_ratio when a start frame is given; don't send a value it ignores.
        if self.aspect_ratio is not None and self.start_image_url is None:
            body["aspect_ratio"] = self.aspect_ratio
        body["resolution"] = self.resolution
        body["duration"] = self.duration
        if self.seed is not None:
            body["seed"] = self.seed
        body["additional_settings"] = {"prompt_extend": self.prompt_extend}
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> GenerationRequest:
        """Inverse of :meth:`to_json` (and the reader of rows stored before :meth:`to_stored`)."""
        extra = body.get("additional_settings") or {}
        return cls(
            prompt=str(body["prompt"]),
            image_refs=tuple(Reference.from_json(r) for r in body.get("image_urls", ())),
            video_refs=tuple(Reference.from_json(r) for r in body.get("video_urls", ())),
            negative_prompt=body.get("negative_prompt"),
            start_image_url=body.get("start_image_url"),
            aspect_ratio=body.get("aspect_ratio"),
            resolution=str(body.get("resolution", DEFAULT_RESOLUTION)),
            duration=int(body.get("duration", DEFAULT_DURATION)),
            seed=body.get("seed"),
            prompt_extend=bool(extra.get("prompt_extend", DEFAULT_PROMPT_EXTEND)),
            webhook_url=body.get("webhook_url"),
        )

    def to_stored(self) -> dict[str, Any]:
        """The form the jobs table keeps: versioned, our names, never the webhook URL.

        ``resolution`` and ``duration`` keep the wire's names and types: the store's run-time
        query reads them with ``json_extract`` from rows of either form.
        """
        return {
            "v": STORED_VERSION,
            "prompt": self.prompt,
            "images": [ref.to_stored() for ref in self.image_refs],
            "videos": [ref.to_stored() for ref in self.video_refs],
            "negative_prompt": self.negative_prompt,
            "start_image_url": self.start_image_url,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "duration": self.duration,
            "seed": self.seed,
            "prompt_extend": self.prompt_extend,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> GenerationRequest:
        """Inverse of :meth:`to_stored`; also reads rows written before it (the API body, "v0").

        A webhook URL in an old row is dropped: the URL is rebuilt for each submission.
        """
        version = data.get("v", 0)
        if version == 0:
            return cls.from_json(data).replace(webhook_url=None)
        if version != STORED_VERSION:
            raise ValueError(f"stored request version {version!r} is newer than this code")
        seed = data.get("seed")
        return cls(
            prompt=str(data["prompt"]),
            image_refs=tuple(Reference.from_stored(r) for r in data.get("images", ())),
            video_refs=tuple(Reference.from_stored(r) for r in data.get("videos", ())),
            negative_prompt=data.get("negative_prompt"),
            start_image_url=data.get("start_image_url"),
            aspect_ratio=data.get("aspect_ratio"),
            resolution=str(data.get("resolution", DEFAULT_RESOLUTION)),
            duration=int(data.get("duration", DEFAULT_DURATION)),
            seed=None if seed is None else int(seed),
            prompt_extend=bool(data.get("prompt_extend", DEFAULT_PROMPT_EXTEND)),
        )
