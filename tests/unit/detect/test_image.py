"""IP image detector: the demo poster under transformations is found, unrelated images are not."""

from __future__ import annotations

import io
import itertools
import sys
from collections import Counter
from pathlib import Path

import cv2
import pytest
from PIL import Image, PngImagePlugin

from gateway.content import ContentLimits, Inputs, MediaItem
from gateway.detect import image, media_image
from gateway.detect.image import IpImageDetector, image_frames
from gateway.errors import InspectionError, TooLargeError, UninspectableError
from gateway.registry import ImageBank
from gateway.registry import index as index_module

# media_samples is shared with tests/unit/registry (one index per test session)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
import media_samples as ms


@pytest.fixture(scope="module")
def detector() -> IpImageDetector:
    return IpImageDetector(ms.demo_index().images)


@pytest.mark.parametrize("transform", sorted(ms.TRANSFORMS))
def test_transformed_poster_is_found(detector: IpImageDetector, transform: str) -> None:
    """Every transformation of the registered poster (recompress, resize, crop, rotate, mirror, border,
    overlay, grayscale, screenshot, collage tile) is reported as the registered IP."""
    findings = detector.detect(ms.image_inputs(ms.TRANSFORMS[transform](ms.poster())), ms.CONTEXT)
    assert [(f.kind, f.entity, f.location) for f in findings] == [("ip_image", "blue-meridian", "form.file[0]")]
    assert 0.5 <= findings[0].score <= 1.0


@pytest.mark.parametrize("negative", sorted(ms.NEGATIVES))
def test_unrelated_image_is_not_matched(detector: IpImageDetector, negative: str) -> None:
    """Unrelated posters (same font family), noise, photos, a text page, a flat image, a portrait: nothing."""
    assert detector.detect(ms.image_inputs(ms.NEGATIVES[negative]()), ms.CONTEXT) == []


@pytest.mark.parametrize(
    ("transform", "stage"),
    [
        ("identity", "pdq"),
        ("mirror", "pdq"),
        ("rotate_90", "pdq"),
        ("crop_center_25", "orb"),
        ("mirror_crop_10", "mirrored orb"),
        ("negative", "negative pdq"),
        ("negative_crop_3", "negative orb"),
    ],
)
def test_detail_names_the_stage_not_content(detector: IpImageDetector, transform: str, stage: str) -> None:
    """The finding's detail says which stage matched and by how much (bits or inliers), nothing else."""
    [finding] = detector.detect(ms.image_inputs(ms.TRANSFORMS[transform](ms.poster())), ms.CONTEXT)
    assert finding.detail.startswith(f"frame 0, {stage} ")
    assert finding.detail.endswith(("bits", "inliers"))


def test_one_finding_per_item_and_ip() -> None:
    """Two uploads of the poster → two findings (one per location); a clean upload adds none."""
    detector = IpImageDetector(ms.demo_index().images)
    inputs = ms.image_inputs(ms.poster(), ms.smooth_photo(5), ms.jpeg(ms.poster(), 50))
    findings = detector.detect(inputs, ms.CONTEXT)
    assert sorted(f.location for f in findings) == ["form.file[0]", "form.file[2]"]


def test_every_frame_of_an_animation_is_checked() -> None:
    """A GIF whose third frame is the poster is caught; the detail names the frame."""
    frames = [ms.smooth_photo(1), ms.smooth_photo(2), ms.poster()]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    item = MediaItem(buffer.getvalue(), "image", "image/gif", "image/gif", "body.image")
    [finding] = IpImageDetector(ms.demo_index().images).detect(Inputs(media=(item,)), ms.CONTEXT)
    assert finding.entity == "blue-meridian"
    assert finding.detail.startswith("frame 2, ")


def test_video_frames_are_sampled() -> None:
    """A video showing the poster after two seconds of something else is caught."""
    frames = [ms.smooth_photo(1)] * 4 + [ms.poster()] * 4
    inputs = ms.media_inputs(ms.video_bytes(frames), "video", "video/mp4")
    findings = IpImageDetector(ms.demo_index().images).detect(inputs, ms.CONTEXT)
    assert [f.entity for f in findings] == ["blue-meridian"]


@pytest.mark.parametrize(
    ("setting", "value", "transform", "found"),
    [
        ("match_bits", 31, "jpeg_q30", True),
        ("match_inliers", 40, "crop_center_25", True),
        ("match_inliers", 100_000, "crop_center_25", False),
    ],
)
def test_thresholds_are_constructor_settings(setting: str, value: int, transform: str, found: bool) -> None:
    """Thresholds come from the constructor: an impossible inlier count turns the ORB stage off."""
    detector = IpImageDetector(ms.demo_index().images, **{setting: value})
    findings = detector.detect(ms.image_inputs(ms.TRANSFORMS[transform](ms.poster())), ms.CONTEXT)
    assert bool(findings) is found


def test_empty_bank_finds_nothing() -> None:
    """A registry without IP images: no work, no findings."""
    bank = ImageBank.from_arrays([], {k: v[:0] for k, v in ms.demo_index().images.arrays().items()})
    assert IpImageDetector(bank).detect(ms.image_inputs(ms.poster()), ms.CONTEXT) == []


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, UninspectableError),
        (b"not an image at all", UninspectableError),
    ],
)
def test_undecodable_images_raise_gateway_errors(data: bytes, error: type[InspectionError]) -> None:
    """A broken image is an InspectionError (the request is blocked), never a Pillow exception."""
    item = MediaItem(data, "image", "image/png", "image/png", "form.file[0]")
    with pytest.raises(error):
        IpImageDetector(ms.demo_index().images).detect(Inputs(media=(item,)), ms.CONTEXT)


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (cv2.error("boom"), UninspectableError),
        (RuntimeError("boom"), UninspectableError),
        (MemoryError(), TooLargeError),
    ],
)
def test_matcher_failures_become_gateway_errors(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException, error: type[InspectionError]
) -> None:
    """OpenCV, PDQ or faiss failing inside the matcher → an InspectionError with the item's location."""

    def explode(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr("gateway.detect.image.perceptual_hash", explode)
    with pytest.raises(error) as caught:
        IpImageDetector(ms.demo_index().images).detect(ms.image_inputs(ms.poster()), ms.CONTEXT)
    assert caught.value.location == "form.file[0]"


def test_flat_images_have_quality_zero() -> None:
    """PDQ gives flat images quality 0: their hash is ignored rather than matched."""
    from PIL import Image

    assert media_image.perceptual_hash(Image.new("RGB", (300, 300), (90, 90, 90))).quality == 0
    assert media_image.perceptual_hash(ms.poster()).quality > 50


def test_non_image_media_is_skipped() -> None:
    """Audio and documents are other detectors' business."""
    item = MediaItem(ms.wav_bytes(ms.speech(1, **ms.SPEAKER_A)), "audio", "audio/wav", "audio/wav", "form.file[0]")
    assert IpImageDetector(ms.demo_index().images).detect(Inputs(media=(item,)), ms.CONTEXT) == []


def test_detectors_can_be_shared_between_threads() -> None:
    """One detector (one index, one face model) used from four threads at once gives the same findings."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.detect.face import FaceDetector

    images = IpImageDetector(ms.demo_index().images)
    faces = FaceDetector(ms.demo_index().faces)
    cases = [ms.poster(), ms.portrait(), ms.TRANSFORMS["crop_center_25"](ms.poster()), ms.smooth_photo(3)] * 2

    def both(image: object) -> list[tuple[str, str]]:
        inputs = ms.image_inputs(image)  # type: ignore[arg-type]
        found = images.detect(inputs, ms.CONTEXT) + faces.detect(inputs, ms.CONTEXT)
        return sorted((f.kind, f.entity) for f in found)

    alone = [both(image) for image in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(both, cases))
    assert together == alone
    assert alone[0] == [("ip_image", "blue-meridian")]
    assert alone[1] == [("face", "eileen-collins")]


# --- frames decoded once per item, shared by the IP image and face detectors -----------------------

_NONCE = itertools.count()


def _fresh_inputs(*images: Image.Image) -> Inputs:
    """Like `ms.image_inputs`, with bytes no other test made (a PNG text chunk), so nothing is reused by accident."""
    items = []
    for number, picture in enumerate(images):
        info = PngImagePlugin.PngInfo()
        info.add_text("test", str(next(_NONCE)))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG", pnginfo=info)
        items.append(MediaItem(buffer.getvalue(), "image", "image/png", "image/png", f"form.file[{number}]"))
    return Inputs(media=tuple(items))


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each location was decoded."""
    calls: Counter[str] = Counter()
    real = image.decode_image_frames

    def counting(item: MediaItem, limits: ContentLimits) -> list[Image.Image]:
        calls[item.location] += 1
        return real(item, limits)

    monkeypatch.setattr("gateway.detect.image.decode_image_frames", counting)
    return calls


@pytest.fixture(scope="module")
def faces() -> object:
    from gateway.detect.face import FaceDetector

    return FaceDetector(ms.demo_index().faces)


def test_each_item_is_decoded_once_for_both_detectors(decodes: Counter[str], faces: object) -> None:
    """The IP image and face detectors on a request with two images: each image is decoded once, and
    each detector's findings stay with their own item (the poster at 0, the talent's face at 1)."""
    inputs = _fresh_inputs(ms.poster(), ms.portrait())
    found = IpImageDetector(ms.demo_index().images).detect(inputs, ms.CONTEXT)
    found += faces.detect(inputs, ms.CONTEXT)  # type: ignore[attr-defined]
    assert sorted((f.kind, f.entity, f.location) for f in found) == [
        ("face", "eileen-collins", "form.file[1]"),
        ("ip_image", "blue-meridian", "form.file[0]"),
    ]
    assert decodes == {"form.file[0]": 1, "form.file[1]": 1}


def test_frames_never_pass_to_another_item(decodes: Counter[str]) -> None:
    """Two requests with an image at the same location: the second, different image is decoded and
    judged on its own pixels (the first request's poster is not found in it)."""
    detector = IpImageDetector(ms.demo_index().images)
    assert [f.entity for f in detector.detect(_fresh_inputs(ms.poster()), ms.CONTEXT)] == ["blue-meridian"]
    assert detector.detect(_fresh_inputs(ms.smooth_photo(4)), ms.CONTEXT) == []
    assert decodes == {"form.file[0]": 2}


def test_stricter_limits_decode_for_themselves() -> None:
    """Frames decoded under loose limits are never handed to a caller with stricter ones: it decodes
    and refuses for itself."""
    inputs = _fresh_inputs(ms.poster())
    assert IpImageDetector(ms.demo_index().images).detect(inputs, ms.CONTEXT)
    strict = IpImageDetector(ms.demo_index().images, ContentLimits(max_image_pixels=10_000))
    with pytest.raises(TooLargeError):
        strict.detect(inputs, ms.CONTEXT)


def test_decoding_failures_are_not_kept(decodes: Counter[str]) -> None:
    """A broken image raises for every caller; nothing is remembered about it."""
    item = MediaItem(b"\x89PNG\r\n\x1a\n" + next(_NONCE).to_bytes(8) * 5, "image", "image/png", "image/png", "x")
    for _ in range(2):
        with pytest.raises(UninspectableError):
            image_frames(item, ContentLimits())
    assert decodes == {"x": 2}


def test_the_frame_cache_is_bounded(monkeypatch: pytest.MonkeyPatch, decodes: Counter[str]) -> None:
    """At most `items` items and `pixels` pixels are kept, the least recently used goes first, and
    an item larger than the whole budget is decoded for each caller."""
    monkeypatch.setattr(image, "_FRAMES", image._FrameCache(items=2, pixels=3 * 600 * 900))
    first, second, third = (_fresh_inputs(ms.synthetic_poster(n)).media[0] for n in range(3))
    large = _fresh_inputs(Image.new("RGB", (2000, 1000), "grey")).media[0]
    decoded = []
    for item in (first, second, first, third, second, first, large, large):
        before = decodes.total()
        image_frames(item, ContentLimits())
        decoded.append(decodes.total() > before)
    # the second `first` is kept; `third` pushes out `second` (least recently used), which pushes out `first`
    assert decoded == [True, True, False, True, True, True, True, True]


def test_detectors_leave_the_shared_frames_unchanged(faces: object) -> None:
    """Both detectors (every IP stage, the face search with rotations, the embedding) only read the
    shared frames: what the next detector gets is what was decoded."""
    for picture in (ms.portrait(), ms.smooth_photo(6)):
        inputs = _fresh_inputs(picture)
        frames = image_frames(inputs.media[0], ContentLimits())
        before = [frame.tobytes() for frame in frames]
        IpImageDetector(ms.demo_index().images).detect(inputs, ms.CONTEXT)
        faces.detect(inputs, ms.CONTEXT)  # type: ignore[attr-defined]
        assert image_frames(inputs.media[0], ContentLimits()) is frames
        assert [frame.tobytes() for frame in frames] == before


@pytest.mark.parametrize("transform", sorted(ms.TRANSFORMS))
@pytest.mark.parametrize("least", [6, 20, 40])
def test_assets_with_too_few_votes_are_skipped_without_changing_any_hit(transform: str, least: int) -> None:
    """`min_inliers` only skips RANSAC for assets whose votes cannot reach it (inliers ⊆ votes): every hit
    with enough inliers is still there, with the same score."""
    bank = ms.demo_index().images
    frame = ms.TRANSFORMS[transform](ms.poster()).convert("RGB")
    for mirrored in (False, True):
        features = media_image.local_features(frame, query=True)
        everything = [hit for hit in bank.match_features(features, mirrored=mirrored) if hit.inliers >= least]
        skipping = bank.match_features(features, mirrored=mirrored, min_inliers=least)
        assert [hit for hit in skipping if hit.inliers >= least] == everything


@pytest.mark.parametrize(
    ("votes", "needed", "iterations"),
    [
        (60, 40, 50),      # two thirds must be inliers: a few dozen samples find such a model
        (100, 40, 267),
        (40, 20, 108),
        (200, 40, 2000),   # a small share: OpenCV's default cap, as before
        (25, 20, 50),
        (6, 6, 50),        # every vote must be an inlier
        (0, 6, 2000),
    ],
)
def test_ransac_stops_at_the_least_acceptable_inlier_ratio(votes: int, needed: int, iterations: int) -> None:
    """RANSAC's stopping rule at 99.9 % for the least inlier ratio the caller accepts, within [50, 2000]."""
    assert index_module._ransac_iterations(votes, needed) == iterations


@pytest.mark.parametrize("transform", sorted(ms.TRANSFORMS))
def test_per_asset_inlier_needs_match_the_constant_form(transform: str) -> None:
    """`min_inliers` as a function of the asset gives what the constant gives for that asset's value."""
    bank = ms.demo_index().images
    features = media_image.local_features(ms.TRANSFORMS[transform](ms.poster()).convert("RGB"), query=True)
    for least in (6, 20, 40):
        assert bank.match_features(features, min_inliers=lambda _asset, n=least: n) == bank.match_features(
            features, min_inliers=least
        )
