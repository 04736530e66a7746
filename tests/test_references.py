"""core.references: every documented limit at its boundary, labels, voices, and the JSON body."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.labels import find_labels, normalise_labels, render_label_map
from core.references import (
    VOICE_MAX_BYTES,
    Attachment,
    BuiltRequest,
    GenerationOptions,
    InvalidInput,
    LabelledReference,
    ReferenceInput,
    build_request,
    pair_slots,
)
from core.request import (
    ASPECT_RATIOS,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE_PX,
    IMAGE_MIN_SIDE_PX,
    SEED_MAX,
    VIDEO_MAX_BYTES,
)
from core.sniffing import Sniffed

CDN = "https://cdn.discordapp.com/attachments/1/2/"


def image(
    filename: str = "cat.png",
    content_type: str | None = "image/png",
    size: int = 1_000_000,
    width: int | None = 1024,
    height: int | None = 768,
) -> Attachment:
    return Attachment(CDN + filename, filename, content_type, size, width, height)


def video(
    filename: str = "clip.mp4", content_type: str | None = "video/mp4", size: int = 5_000_000
) -> Attachment:
    return Attachment(CDN + filename, filename, content_type, size, 1280, 720)


def voice(
    filename: str = "meow.mp3", content_type: str | None = "audio/mpeg", size: int = 200_000
) -> Attachment:
    return Attachment(CDN + filename, filename, content_type, size)


def refs(*media: Attachment) -> list[ReferenceInput]:
    """References in slots 1, 2, 3… in the order given."""
    return [ReferenceInput(slot, att) for slot, att in enumerate(media, start=1)]


def build(
    prompt: str = "Image 1 walks in a park",
    references: list[ReferenceInput] | None = None,
    options: GenerationOptions | None = None,
    start_image: Attachment | None = None,
) -> BuiltRequest:
    return build_request(
        prompt,
        refs(image()) if references is None else references,
        options or GenerationOptions(),
        start_image,
    )


def problems(
    prompt: str = "Image 1 walks in a park",
    references: list[ReferenceInput] | None = None,
    options: GenerationOptions | None = None,
    start_image: Attachment | None = None,
) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        build(prompt, references, options, start_image)
    return caught.value.problems


# --- the request body ----------------------------------------------------------------------------


def test_exact_json_body_with_every_option():
    built = build_request(
        "  Image 1 waves at Video 1  ",
        [
            ReferenceInput(1, image("cat.png"), voice("meow.mp3")),
            ReferenceInput(2, video("dog.mov", "video/quicktime"), voice("woof.wav", "audio/wav")),
        ],
        GenerationOptions(
            negative_prompt=" blurry, watermark ",
            aspect_ratio="9:16",
            resolution="720p",
            duration=8,
            seed=42,
            prompt_extend=False,
        ),
    )
    assert built.request.to_json() == {
        "prompt": "Image 1 waves at Video 1",
        "negative_prompt": "blurry, watermark",
        "image_urls": [{"url": CDN + "cat.png", "reference_voice": CDN + "meow.mp3"}],
        "video_urls": [{"url": CDN + "dog.mov", "reference_voice": CDN + "woof.wav"}],
        "aspect_ratio": "9:16",
        "resolution": "720P",
        "duration": 8,
        "seed": 42,
        "additional_settings": {"prompt_extend": False},
    }
    assert built.warnings == ()


def test_defaults_leave_optional_fields_out():
    body = build().request.to_json()
    assert body == {
        "prompt": "Image 1 walks in a park",
        "image_urls": [{"url": CDN + "cat.png"}],
        "resolution": "1080P",
        "duration": 5,
        "additional_settings": {"prompt_extend": True},
    }


def test_blank_negative_prompt_is_left_out():
    body = build(options=GenerationOptions(negative_prompt="   ")).request.to_json()
    assert "negative_prompt" not in body


def test_voice_goes_on_the_item_of_its_reference():
    built = build_request(
        "Video 1, Image 1 and Image 2 sing",
        [
            ReferenceInput(1, video("v.mp4"), voice("v1.mp3")),
            ReferenceInput(2, image("a.png")),
            ReferenceInput(3, image("b.png"), voice("v3.ogg", "audio/ogg")),
        ],
        GenerationOptions(),
    )
    body = built.request.to_json()
    assert body["image_urls"] == [
        {"url": CDN + "a.png"},
        {"url": CDN + "b.png", "reference_voice": CDN + "v3.ogg"},
    ]
    assert body["video_urls"] == [{"url": CDN + "v.mp4", "reference_voice": CDN + "v1.mp3"}]


# --- labels --------------------------------------------------------------------------------------


def test_labels_count_within_each_kind_in_slot_order():
    built = build(
        "Video 1 and Video 2 circle Image 1",
        refs(video("a.mp4"), image("b.png"), video("c.mov", "video/quicktime")),
    )
    assert [ref.label for ref in built.references] == ["Video 1", "Image 1", "Video 2"]
    assert built.label_map() == (
        "ref 1 → Video 1 (a.mp4)\nref 2 → Image 1 (b.png)\nref 3 → Video 2 (c.mov)"
    )
    assert [item["url"] for item in built.request.to_json()["video_urls"]] == [
        CDN + "a.mp4",
        CDN + "c.mov",
    ]


def test_references_are_ordered_by_slot_not_by_argument_order():
    built = build(
        "Image 1 and Image 2",
        [ReferenceInput(3, image("third.png")), ReferenceInput(1, image("first.png"))],
    )
    assert [(ref.slot, ref.label) for ref in built.references] == [(1, "Image 1"), (3, "Image 2")]
    assert built.request.image_refs[0].url == CDN + "first.png"


def test_label_map_shows_voice():
    built = build(references=[ReferenceInput(1, image("cat.png"), voice("meow.mp3"))])
    assert built.label_map() == "ref 1 → Image 1 (cat.png, voice: meow.mp3)"


def test_label_map_shortens_very_long_filenames():
    name = "x" * 100 + ".png"
    line = render_label_map(build(references=refs(image(name))).references)
    assert line == f"ref 1 → Image 1 ({'x' * 59}…)"


def test_prompt_naming_a_missing_video_is_refused():
    assert problems(prompt="Image 1 meets Video 2", references=refs(image(), video())) == [
        "the prompt names Video 2 but you attached only 1 video"
    ]


def test_prompt_naming_a_kind_with_none_attached_is_refused():
    assert problems(prompt="Video 1 dances", references=refs(image())) == [
        "the prompt names Video 1 but you attached no videos"
    ]


def test_missing_label_message_uses_plural_count():
    found = problems(prompt="Image 3", references=refs(image("a.png"), image("b.png")))
    assert found == ["the prompt names Image 3 but you attached only 2 images"]


def test_label_zero_is_refused():
    assert problems(prompt="Image 0 and Image 1") == [
        "the prompt names Image 0 but labels start at Image 1"
    ]


def test_unnamed_reference_is_a_warning_not_a_refusal():
    built = build("Image 1 runs", refs(image("cat.png"), image("dog.png")))
    assert built.warnings == (
        "Image 2 (dog.png) is not named in the prompt; the model may ignore it",
    )


def test_no_label_check_when_a_reference_kind_is_unknown():
    # ref 1 is refused; "Image 2" only looks missing because of that, so it is not reported too.
    found = problems(
        prompt="Image 1 and Image 2", references=refs(image("a.gif", "image/gif"), image())
    )
    assert found == ["ref 1 (a.gif) is a GIF: images must be JPEG, PNG, BMP or WEBP"]


def test_label_spelling_is_normalised_in_the_sent_prompt():
    built = build("image1 hugs VIDEO #1", refs(image(), video()))
    assert built.request.prompt == "Image 1 hugs Video 1"
    assert built.warnings == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Image 1", {("image", 1)}),
        ("image1", {("image", 1)}),
        ("IMAGE  2", {("image", 2)}),
        ("Image #1", {("image", 1)}),
        ("image # 4", {("image", 4)}),
        ("video-3", {("video", 3)}),
        ("video_3", {("video", 3)}),
        ("Video 10 and video 1", {("video", 10), ("video", 1)}),
        ("(Image 1), Image 1's hat.", {("image", 1)}),
        ("Image 01", {("image", 1)}),
        ("让Image 1跳舞", {("image", 1)}),
        ("myimage1x", set()),
        ("myimage1", set()),
        ("image1x", set()),
        ("images 1 and 2", set()),
        ("imagery 1", set()),
        ("an image one", set()),
        ("Image\n1", set()),
        ("a crisp image 1080p", set()),
    ],
)
def test_find_labels(text: str, expected: set[tuple[str, int]]):
    assert find_labels(text) == expected


def test_normalise_labels():
    assert normalise_labels("image1 and VIDEO #2 meet video-3, Image  01.") == (
        "Image 1 and Video 2 meet Video 3, Image 1."
    )
    assert normalise_labels("myimage1x stays") == "myimage1x stays"


def test_labelled_reference_json_round_trip():
    with_voice = LabelledReference(2, "video", 1, video(), voice())
    without = LabelledReference(1, "image", 1, image(), None)
    for ref in (with_voice, without):
        assert LabelledReference.from_json(json.loads(json.dumps(ref.to_json()))) == ref


def test_labelled_reference_from_json_rejects_unknown_kind():
    data = LabelledReference(1, "image", 1, image(), None).to_json() | {"kind": "audio"}
    with pytest.raises(ValueError, match="audio"):
        LabelledReference.from_json(data)


# --- kinds and formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type", "kind"),
    [
        ("a.jpg", "image/jpeg", "image"),
        ("a.png", "image/png", "image"),
        ("a.bmp", "image/bmp", "image"),
        ("a.bmp", "image/x-ms-bmp", "image"),
        ("a.webp", "image/webp", "image"),
        ("a.png", "IMAGE/PNG; charset=binary", "image"),
        ("a.mp4", "video/mp4", "video"),
        ("a.mov", "video/quicktime", "video"),
        # No content type, or a generic one: the extension decides.
        ("a.JPEG", None, "image"),
        ("a.webp", "application/octet-stream", "image"),
        ("a.MOV", None, "video"),
        ("a.mp4", "", "video"),
        # A specific content type wins over a misleading extension.
        ("a.mp4", "image/png", "image"),
    ],
)
def test_kind_comes_from_content_type_then_extension(filename, content_type, kind):
    att = Attachment(CDN + filename, filename, content_type, 1000, None, None)
    built = build(f"{kind.capitalize()} 1", [ReferenceInput(1, att)])
    assert built.references[0].kind == kind


@pytest.mark.parametrize(
    ("filename", "content_type", "message"),
    [
        ("anim.gif", "image/gif", "is a GIF: images must be JPEG, PNG, BMP or WEBP"),
        ("anim.gif", None, "is a GIF: images must be JPEG, PNG, BMP or WEBP"),
        ("p.heic", "image/heic", "is a HEIC image: images must be JPEG, PNG, BMP or WEBP"),
        ("p.tiff", "image/tiff", "is a TIFF image: images must be JPEG, PNG, BMP or WEBP"),
        ("p.svg", "image/svg+xml", "is an SVG image: images must be JPEG, PNG, BMP or WEBP"),
        ("v.webm", "video/webm", "is a WEBM video: videos must be MP4 or MOV"),
        ("v.mkv", None, "is an MKV video: videos must be MP4 or MOV"),
        ("v.avi", "video/x-msvideo", "is an AVI video: videos must be MP4 or MOV"),
        (
            "s.mp3",
            "audio/mpeg",
            "is MP3 audio: references must be images or videos; give voice clips as a voice option",
        ),
        (
            "n.txt",
            "text/plain",
            "is of type text/plain: references must be images (JPEG, PNG, BMP or WEBP) "
            "or videos (MP4 or MOV)",
        ),
        (
            "mystery",
            None,
            "is of no recognisable type: references must be images (JPEG, PNG, BMP or WEBP) "
            "or videos (MP4 or MOV)",
        ),
    ],
)
def test_unsupported_reference_formats(filename, content_type, message):
    att = Attachment(CDN + filename, filename, content_type, 1000, None, None)
    assert problems(references=[ReferenceInput(1, att)]) == [f"ref 1 ({filename}) {message}"]


# --- image and video limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (IMAGE_MIN_SIDE_PX, IMAGE_MIN_SIDE_PX),
        (IMAGE_MAX_SIDE_PX, IMAGE_MAX_SIDE_PX),
        (IMAGE_MIN_SIDE_PX, IMAGE_MAX_SIDE_PX),
        (None, None),  # unknown dimensions: nothing to check
    ],
)
def test_image_sides_inside_the_limits_are_accepted(width, height):
    assert build(references=refs(image(width=width, height=height))).references


@pytest.mark.parametrize(
    ("width", "height"),
    [(239, 500), (500, 239), (8001, 500), (500, 8001), (9000, 300)],
)
def test_image_sides_outside_the_limits_are_refused(width, height):
    assert problems(references=refs(image("huge.png", width=width, height=height))) == [
        f"ref 1 (huge.png) is {width}×{height} px: each side must be 240–8000 px"
    ]


def test_image_size_limit():
    assert build(references=refs(image(size=IMAGE_MAX_BYTES))).references
    assert problems(references=refs(image("big.png", size=IMAGE_MAX_BYTES + 1))) == [
        "ref 1 (big.png) is 20,000,001 bytes: images must be at most 20 MB"
    ]
    assert problems(references=refs(image("big.png", size=25_300_000))) == [
        "ref 1 (big.png) is 25.3 MB: images must be at most 20 MB"
    ]


def test_video_size_limit():
    assert build("Video 1", refs(video(size=VIDEO_MAX_BYTES))).references
    assert problems(prompt="Video 1", references=refs(video("clip.mp4", size=130_000_000))) == [
        "ref 1 (clip.mp4) is 130 MB: videos must be at most 100 MB"
    ]
    assert problems(prompt="Video 1", references=refs(video("c.mp4", size=VIDEO_MAX_BYTES + 1)))


@pytest.mark.parametrize(
    "url", ["ftp://host/cat.png", "file:///etc/cat.png", "cat.png", "https:///cat.png"]
)
def test_non_http_urls_are_refused(url):
    att = Attachment(url, "cat.png", "image/png", 1000)
    assert problems(references=[ReferenceInput(1, att)]) == [
        "ref 1 (cat.png) is not at an http(s) URL, so the API can't fetch it"
    ]


def test_plain_http_url_is_accepted():
    att = Attachment("http://example.com/cat.png", "cat.png", "image/png", 1000)
    assert build(references=[ReferenceInput(1, att)]).request.image_refs[0].url == att.url


# --- reference count and slots -------------------------------------------------------------------


def test_no_references_is_refused():
    assert problems(references=[]) == [
        "no references: attach at least one image or video as ref 1, or name saved"
        " characters with the characters option"
    ]


def test_five_references_are_accepted():
    built = build(
        "Image 1 Image 2 Image 3 Video 1 Video 2",
        refs(image("1.png"), image("2.png"), image("3.png"), video("4.mp4"), video("5.mp4")),
    )
    assert len(built.references) == 5


def test_six_references_are_refused():
    six = refs(*(image(f"{n}.png") for n in range(1, 7)))
    assert problems(references=six) == [
        "6 references given: at most 5 (images and videos combined)",
        "ref 6 is not a slot: use ref 1 to ref 5",
    ]


def test_duplicate_and_out_of_range_slots_are_refused():
    given = [ReferenceInput(2, image("a.png")), ReferenceInput(2, image("b.png"))]
    assert problems(prompt="Image 1", references=given) == ["ref 2 is given more than once"]
    assert problems(references=[ReferenceInput(0, image())]) == [
        "ref 0 is not a slot: use ref 1 to ref 5"
    ]


# --- voices --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("a.mp3", "audio/mpeg"),
        ("a.mp3", "audio/mp3"),
        ("a.wav", "audio/wav"),
        ("a.wav", "audio/x-wav"),
        ("a.m4a", "audio/x-m4a"),
        ("a.m4a", "audio/mp4"),
        ("a.aac", "audio/aac"),
        ("voice-message.ogg", "audio/ogg"),
        ("a.opus", "audio/opus"),
        ("a.ogg", None),
        ("a.m4a", "application/octet-stream"),
    ],
)
def test_accepted_voice_formats(filename, content_type):
    clip = voice(filename, content_type)
    built = build(references=[ReferenceInput(1, image(), clip)])
    assert built.request.image_refs[0].voice_url == clip.url


@pytest.mark.parametrize(
    ("filename", "content_type", "what"),
    [
        ("song.txt", "text/plain", "not audio"),
        ("clip.mp4", "video/mp4", "not audio"),
        ("cat.png", None, "not audio"),
        ("song.flac", "audio/flac", "FLAC audio"),
        ("song.webm", "audio/webm", "of type audio/webm"),
    ],
)
def test_refused_voice_formats(filename, content_type, what):
    given = [
        ReferenceInput(1, image()),
        ReferenceInput(2, image("b.png"), voice(filename, content_type)),
    ]
    assert problems(prompt="Image 1 Image 2", references=given) == [
        f"voice 2 ({filename}) is {what}: voice clips must be MP3, WAV, M4A/AAC or OGG/Opus"
    ]


def test_voice_size_limit():
    at_cap = voice(size=VOICE_MAX_BYTES)
    assert build(references=[ReferenceInput(1, image(), at_cap)]).references
    over = voice("long.wav", "audio/wav", size=VOICE_MAX_BYTES + 1)
    assert problems(references=[ReferenceInput(1, image(), over)]) == [
        "voice 1 (long.wav) is 15,000,001 bytes: voice clips must be at most 15 MB"
    ]


def test_voice_without_a_reference_in_its_slot_is_refused():
    given, stray = pair_slots({1: image()}, {1: voice("a.mp3"), 3: voice("c.mp3")})
    assert given == [ReferenceInput(1, image(), voice("a.mp3"))]
    with pytest.raises(InvalidInput) as caught:
        build_request("Image 1", given, GenerationOptions(), stray_voices=stray)
    assert caught.value.problems == [
        "voice 3 (c.mp3) has no ref 3 to go with: attach ref 3 or remove voice 3"
    ]


def test_pair_slots_orders_by_slot():
    given, stray = pair_slots({2: image("b.png"), 1: video("a.mp4")}, {2: voice()})
    assert given == [ReferenceInput(1, video("a.mp4")), ReferenceInput(2, image("b.png"), voice())]
    assert stray == {}


# --- prompt and options --------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_refused(prompt):
    assert problems(prompt=prompt) == [
        "the prompt is empty: describe the scene, naming references as Image 1, Video 1, …"
    ]


def test_prompt_length_limit():
    head = "Image 1 "
    assert build(head + "a" * (5000 - len(head))).request.prompt.endswith("a")
    assert problems(prompt=head + "a" * (5001 - len(head))) == [
        "the prompt is 5001 characters: at most 5000"
    ]


def test_prompt_length_counts_after_stripping():
    assert build("  Image 1 " + "a" * 4992 + "  ").request.prompt


def test_prompt_pushed_over_the_limit_by_label_spelling_says_so():
    prompt = "image1 " + "a" * (5000 - len("image1 "))
    assert problems(prompt=prompt) == [
        'the prompt is 5001 characters once labels are spelled out as "Image 1": at most 5000'
    ]


def test_negative_prompt_length_limit():
    assert build(options=GenerationOptions(negative_prompt="n" * 500)).request.negative_prompt
    assert problems(options=GenerationOptions(negative_prompt="n" * 501)) == [
        "the negative prompt is 501 characters: at most 500"
    ]


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_documented_aspect_ratio_is_accepted(ratio):
    assert build(options=GenerationOptions(aspect_ratio=ratio)).request.aspect_ratio == ratio


def test_aspect_ratio_spelling_is_normalised_and_others_refused():
    assert build(options=GenerationOptions(aspect_ratio=" 9x16 ")).request.aspect_ratio == "9:16"
    assert problems(options=GenerationOptions(aspect_ratio="5:4")) == [
        "aspect ratio '5:4' is not offered: use 16:9, 9:16, 1:1, 4:3 or 3:4"
    ]


@pytest.mark.parametrize(
    ("given", "sent"), [("720p", "720P"), ("1080P", "1080P"), (" 1080p", "1080P")]
)
def test_resolution_is_normalised(given, sent):
    assert build(options=GenerationOptions(resolution=given)).request.resolution == sent


def test_unknown_resolution_is_refused():
    assert problems(options=GenerationOptions(resolution="4K")) == [
        "resolution '4K' is not offered: use 720P or 1080P"
    ]


@pytest.mark.parametrize("duration", [2, 10])
def test_duration_boundaries_accepted(duration):
    assert build(options=GenerationOptions(duration=duration)).request.duration == duration


@pytest.mark.parametrize("duration", [1, 11, True])
def test_duration_outside_range_refused(duration):
    assert problems(options=GenerationOptions(duration=duration)) == [
        f"duration {duration} s is out of range: use a whole number of seconds from 2 to 10"
    ]


@pytest.mark.parametrize("seed", [0, SEED_MAX])
def test_seed_boundaries_accepted(seed):
    assert build(options=GenerationOptions(seed=seed)).request.to_json()["seed"] == seed


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1])
def test_seed_outside_range_refused(seed):
    assert problems(options=GenerationOptions(seed=seed)) == [
        f"seed {seed} is out of range: use a whole number from 0 to 2147483647"
    ]


# --- start image ---------------------------------------------------------------------------------


def test_start_image_is_sent_and_overrides_aspect_ratio_with_a_warning():
    built = build(options=GenerationOptions(aspect_ratio="1:1"), start_image=image("first.png"))
    body = built.request.to_json()
    assert body["start_image_url"] == CDN + "first.png"
    assert "aspect_ratio" not in body
    assert built.warnings == ("aspect ratio 1:1 is ignored: the start image's shape sets it",)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (image("s.gif", "image/gif"), "start image (s.gif) is a GIF: the start image must be"),
        (video("s.mp4"), "start image (s.mp4) is an MP4 video: the start image must be"),
        (image("s.png", width=239), "start image (s.png) is 239×768 px: each side must be"),
        (image("s.png", size=IMAGE_MAX_BYTES + 1), "start image (s.png) is 20,000,001 bytes"),
    ],
)
def test_start_image_follows_the_image_rules(start, message):
    [found] = problems(start_image=start)
    assert found.startswith(message)


# --- all at once ---------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInput) as caught:
        build_request(
            "Image 1 and Video 3",
            [
                ReferenceInput(1, image("huge.png", width=9000, height=300)),
                ReferenceInput(
                    2, video("clip.mp4", size=130_000_000), voice("song.txt", "text/plain")
                ),
            ],
            GenerationOptions(
                negative_prompt="n" * 501, aspect_ratio="5:4", resolution="4K", duration=11, seed=-1
            ),
            start_image=image("anim.gif", "image/gif"),
            stray_voices={4: voice("meow.mp3")},
        )
    assert caught.value.problems == [
        "voice 4 (meow.mp3) has no ref 4 to go with: attach ref 4 or remove voice 4",
        "ref 1 (huge.png) is 9000×300 px: each side must be 240–8000 px",
        "ref 2 (clip.mp4) is 130 MB: videos must be at most 100 MB",
        "voice 2 (song.txt) is not audio: voice clips must be MP3, WAV, M4A/AAC or OGG/Opus",
        "start image (anim.gif) is a GIF: the start image must be JPEG, PNG, BMP or WEBP",
        "the prompt names Video 3 but you attached only 1 video",
        "the negative prompt is 501 characters: at most 500",
        "aspect ratio '5:4' is not offered: use 16:9, 9:16, 1:1, 4:3 or 3:4",
        "resolution '4K' is not offered: use 720P or 1080P",
        "duration 11 s is out of range: use a whole number of seconds from 2 to 10",
        "seed -1 is out of range: use a whole number from 0 to 2147483647",
    ]
    assert str(caught.value).splitlines() == caught.value.problems


# --- properties ----------------------------------------------------------------------------------

kinds_and_slots = st.lists(st.sampled_from(["image", "video"]), min_size=1, max_size=5).flatmap(
    lambda kinds: st.tuples(st.just(kinds), st.permutations(range(1, 6)))
)


def make_refs(kinds: list[str], slots: list[int]) -> list[ReferenceInput]:
    """One reference per kind, in slot ``slots[i]``, given in that (unsorted) order."""
    return [
        ReferenceInput(slot, image(f"s{slot}.png") if kind == "image" else video(f"s{slot}.mp4"))
        for kind, slot in zip(kinds, slots, strict=False)
    ]


@given(kinds_and_slots)
def test_labels_are_positions_within_kind_in_slot_order(case):
    kinds, slots = case
    given_refs = make_refs(kinds, slots)
    built = build_request("a quiet scene", given_refs, GenerationOptions())
    body = built.request.to_json()
    kind_of_slot = dict(zip(slots, kinds, strict=False))
    for kind, key in (("image", "image_urls"), ("video", "video_urls")):
        slots_of_kind = sorted(slot for slot, k in kind_of_slot.items() if k == kind)
        labelled = [ref for ref in built.references if ref.kind == kind]
        # A bijection: kind-mates in slot order get 1..n, and the JSON list is in that order.
        assert [(ref.slot, ref.index) for ref in labelled] == [
            (slot, i) for i, slot in enumerate(slots_of_kind, start=1)
        ]
        extension = ".png" if kind == "image" else ".mp4"
        assert [item["url"] for item in body.get(key, [])] == [
            f"{CDN}s{slot}{extension}" for slot in slots_of_kind
        ]
    assert len(built.warnings) == len(given_refs)  # the prompt names none of them


@given(kinds_and_slots, st.data())
def test_prompt_naming_only_existing_labels_is_accepted(case, data):
    kinds, slots = case
    existing = [
        f"{kind.capitalize()} {i}"
        for kind in ("image", "video")
        for i in range(1, kinds.count(kind) + 1)
    ]
    named = data.draw(st.lists(st.sampled_from(existing), min_size=1))
    built = build_request(
        " and ".join(named) + " dance", make_refs(kinds, slots), GenerationOptions()
    )
    unnamed = {ref.label for ref in built.references} - set(named)
    assert len(built.warnings) == len(unnamed)


@given(kinds_and_slots, st.sampled_from(["image", "video"]), st.integers(1, 50))
def test_prompt_naming_a_label_past_the_count_is_refused(case, kind, beyond):
    kinds, slots = case
    label = f"{kind.capitalize()} {kinds.count(kind) + beyond}"
    with pytest.raises(InvalidInput) as caught:
        build_request(f"{label} dances", make_refs(kinds, slots), GenerationOptions())
    assert any(p.startswith(f"the prompt names {label} but") for p in caught.value.problems)


def spellings(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize(), word.swapcase()])


label_text = st.tuples(
    st.sampled_from(["image", "video"]),
    st.integers(1, 999),
    st.sampled_from(["", " ", "  ", "\t", "#", " #", "# ", "-", "_", " - "]),
).flatmap(
    lambda t: st.tuples(
        st.just((t[0], t[1])),
        spellings(t[0]).map(lambda word: f"{word}{t[2]}{t[1]}"),
    )
)
filler = st.sampled_from(["a", "cat", "and", "walks,", "the", "park.", "(", ")", "!", "—", "让"])


@given(st.lists(st.tuples(label_text, st.lists(filler, max_size=3)), max_size=6))
def test_find_labels_finds_generated_label_text(parts):
    pieces = []
    for (_, text), words in parts:
        pieces += [text, *words]
    prompt = " ".join(pieces)
    expected = {label for (label, _), _ in parts}
    assert find_labels(prompt) == expected
    # Normalising writes each one the documented way and finds the same labels.
    normalised = normalise_labels(prompt)
    assert find_labels(normalised) == expected
    for kind, index in expected:
        assert f"{kind.capitalize()} {index}" in normalised


@given(
    st.integers(1, 10_000),
    st.integers(1, 10_000),
    st.integers(1, IMAGE_MAX_BYTES * 2),
)
def test_image_accepted_exactly_when_within_every_limit(width, height, size):
    within = (
        all(IMAGE_MIN_SIDE_PX <= side <= IMAGE_MAX_SIDE_PX for side in (width, height))
        and size <= IMAGE_MAX_BYTES
    )
    att = image(size=size, width=width, height=height)
    if within:
        assert build(references=refs(att)).references[0].media == att
    else:
        assert problems(references=refs(att))


def test_is_audio_uses_the_type_then_the_extension():
    from core.references import is_audio

    assert is_audio(Attachment("https://x/a", "a.bin", "audio/ogg", 10))
    assert is_audio(Attachment("https://x/a", "song.mp3", None, 10))
    assert is_audio(Attachment("https://x/a", "song.wav", "application/octet-stream", 10))
    assert not is_audio(Attachment("https://x/a", "cat.png", "image/png", 10))
    assert not is_audio(Attachment("https://x/a", "notes", None, 10))


# --- what the files really are (``contents`` from core.sniffing) ---------------------------------


def sniffed_build(
    references: list[ReferenceInput],
    contents: dict[str, Sniffed],
    prompt: str = "Image 1 walks in a park",
    start_image: Attachment | None = None,
) -> BuiltRequest:
    return build_request(prompt, references, GenerationOptions(), start_image, contents=contents)


def sniffed_problems(
    references: list[ReferenceInput],
    contents: dict[str, Sniffed],
    prompt: str = "Image 1 walks in a park",
    start_image: Attachment | None = None,
) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        sniffed_build(references, contents, prompt, start_image)
    return caught.value.problems


PNG_OK = Sniffed("image/png", 1024, 768)
REF_FIX = "attach the image or video itself (JPEG, PNG, BMP or WEBP; MP4 or MOV)"


@pytest.mark.parametrize(
    ("att", "found", "message"),
    [
        (
            image("cat.png"),
            Sniffed(),
            "ref 1 (cat.png) says it is a PNG image but its contents are not an image, video or"
            f" sound format: {REF_FIX}",
        ),
        (
            image("cat.png"),
            Sniffed("application/zip"),
            f"ref 1 (cat.png) says it is a PNG image but its contents are a ZIP archive: {REF_FIX}",
        ),
        (
            image("holiday.jpg", content_type=None),
            Sniffed("application/zip"),
            "ref 1 (holiday.jpg) says it is a JPEG image but its contents are a ZIP archive",
        ),
        (
            video("clip.mp4"),
            Sniffed("image/png", 320, 320),
            "ref 1 (clip.mp4) says it is an MP4 video but its contents are a PNG image",
        ),
        (
            image("blank.png"),
            Sniffed(empty=True),
            f"ref 1 (blank.png) is empty (0 bytes): {REF_FIX}",
        ),
        (
            image("gone.png"),
            Sniffed(error="HTTP 404"),
            "ref 1 (gone.png) could not be read (HTTP 404): attach it again",
        ),
        (
            image("photo", content_type=None, width=None, height=None),
            Sniffed("image/png", 100, 100),
            "ref 1 (photo) is 100×100 px: each side must be 240–8000 px",
        ),
        (
            image("photo.png", width=None, height=None),
            Sniffed("image/png"),
            "ref 1 (photo.png) has no size in pixels that can be read: save it again as PNG"
            " or JPEG",
        ),
        (
            image("anim.png"),
            Sniffed("image/gif", 320, 320),
            "ref 1 (anim.png) is a GIF: images must be JPEG, PNG, BMP or WEBP",
        ),
        (
            image("notes", content_type=None),
            Sniffed(),
            "ref 1 (notes) is of no recognisable type: references must be images",
        ),
    ],
)
def test_a_file_is_judged_by_its_bytes(att, found, message):
    [problem] = sniffed_problems(refs(att), {att.url: found}, prompt="Image 1 dances")
    assert problem.startswith(message), problem


def test_the_bytes_set_the_kind_and_what_is_kept():
    # A JPEG named .png is a JPEG (one kind of image for another: the API decodes it fine);
    # a nameless file with MP4 bytes is a video. Both are kept as found, for rerolls.
    photo = image("photo.png")
    clip = Attachment(CDN + "clip", "clip", None, 5_000_000)
    built = sniffed_build(
        refs(photo, clip),
        {photo.url: Sniffed("image/jpeg", 2000, 1000), clip.url: Sniffed("video/mp4")},
        prompt="Image 1 meets Video 1",
    )
    assert [(r.label, r.media.content_type) for r in built.references] == [
        ("Image 1", "image/jpeg"),
        ("Video 1", "video/mp4"),
    ]
    # Discord's dimensions are kept when it gave them.
    assert (built.references[0].media.width, built.references[0].media.height) == (1024, 768)
    again = build_request(
        built.request.prompt,
        [ReferenceInput(ref.slot, ref.media, ref.voice) for ref in built.references],
        GenerationOptions(),
    )
    assert again.request == built.request


def test_voices_and_the_start_image_are_judged_by_their_bytes_too():
    cat, song, start = image("cat.png"), voice("song.mp3"), image("first.png")
    assert sniffed_problems(
        [ReferenceInput(1, cat, song)],
        {cat.url: PNG_OK, song.url: Sniffed("image/png", 300, 300), start.url: Sniffed()},
        start_image=start,
    ) == [
        "voice 1 (song.mp3) says it is MP3 audio but its contents are a PNG image: attach the"
        " sound file itself (MP3, WAV, M4A/AAC or OGG/Opus)",
        "start image (first.png) says it is a PNG image but its contents are not an image,"
        " video or sound format: attach the image itself (JPEG, PNG, BMP or WEBP)",
    ]
    found = {cat.url: PNG_OK, song.url: Sniffed("audio/x-wav"), start.url: PNG_OK}
    built = sniffed_build([ReferenceInput(1, cat, song)], found, start_image=start)
    assert built.references[0].voice is not None
    assert built.references[0].voice.content_type == "audio/x-wav"


def test_files_without_contents_are_judged_by_their_metadata():
    # A reroll passes no contents: what was found when the file was first given stands.
    assert build(references=refs(image("cat.png"))).request.image_refs


# --- invisible and broken text -------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["\u200b", "\u200b\u2060\ufeff", " \u3164 \u00ad ", "\u202e"])
def test_a_prompt_of_only_invisible_characters_is_empty(prompt):
    assert problems(prompt=prompt) == [
        "the prompt is empty (it has only invisible characters): describe the scene, naming"
        " references as Image 1, Video 1, …"
    ]


def test_invisible_characters_are_not_sent_nor_counted():
    prompt = "\u200bImage\u2060 1 " + "a" * 4992 + "\ufeff" * 300
    sent = build(prompt).request.prompt
    assert sent == "Image 1 " + "a" * 4992


def test_a_negative_prompt_of_only_invisible_characters_is_none():
    body = build(options=GenerationOptions(negative_prompt="\u200b\u200b")).request.to_json()
    assert "negative_prompt" not in body
    long_but_invisible = "blurry" + "\u200b" * 600
    built = build(options=GenerationOptions(negative_prompt=long_but_invisible))
    assert built.request.negative_prompt == "blurry"


def test_text_that_cannot_be_encoded_is_refused():
    assert problems(
        prompt="Image 1 dances \ud83d",
        options=GenerationOptions(negative_prompt="blurry \udc00"),
    ) == [
        "the prompt contains a broken character (U+D83D) that can't be sent: type it again,"
        " or paste it from somewhere else",
        "the negative prompt contains a broken character (U+DC00) that can't be sent: type it"
        " again, or paste it from somewhere else",
    ]


def test_a_file_name_that_cannot_be_encoded_is_refused_and_shown_safely():
    [problem] = problems(references=refs(image("cat\udc80.png")))
    assert (
        problem == "ref 1 (cat?.png) has a broken character (U+DC80) in its name: rename the file"
    )
    assert problem.encode("utf-8")  # the refusal itself can be sent


# --- messages that stay short --------------------------------------------------------------------


def test_many_missing_labels_make_one_line():
    prompt = " ".join(f"Image {index}" for index in range(1, 61)) + " and Video 2"
    assert problems(prompt=prompt) == [
        "the prompt names Image 2, Image 3, Image 4, Image 5, Image 6 …and 54 more,"
        " but you attached only 1 image",
        "the prompt names Video 2 but you attached no videos",
    ]
    assert problems(prompt="Image 1, Image 0, Image 3 and Image 4") == [
        "the prompt names Image 0 but labels start at Image 1",
        "the prompt names Image 3 and Image 4 but you attached only 1 image",
    ]


def test_a_huge_option_value_is_quoted_short():
    [problem] = problems(options=GenerationOptions(aspect_ratio="w" * 6000))
    assert problem == (
        f"aspect ratio '{'w' * 39}…' is not offered: use 16:9, 9:16, 1:1, 4:3 or 3:4"
    )


def test_a_long_refusal_fits_its_limit_and_still_says_nothing_was_charged():
    error = InvalidInput([f"problem number {index} " + "x" * 80 for index in range(60)])
    assert len(error.message) > 2000
    text = error.render(2000)
    assert len(text) <= 2000
    lines = text.splitlines()
    assert lines[0] == "I can't make this video yet:" and lines[-1] == "Nothing was charged."
    shown = len(lines) - 3
    assert lines[1 : 1 + shown] == [f"- {p}" for p in error.problems[:shown]]
    assert lines[-2] == f"- …and {60 - shown} more"
    assert error.render(10_000) == error.message


def test_a_file_not_at_an_http_url_gets_one_problem_whatever_its_contents():
    att = Attachment("ftp://example.invalid/cat.png", "cat.png", "image/png", 1000)
    assert sniffed_problems(refs(att), {att.url: Sniffed(error="not at an http(s) URL")}) == [
        "ref 1 (cat.png) is not at an http(s) URL, so the API can't fetch it"
    ]
