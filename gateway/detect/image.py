"""Registered IP images (stills, posters, logos, key frames) in uploaded images and video frames.

    IpImageDetector(index.images, limits).detect(inputs, context) -> [Finding(kind="ip_image", entity=ip id)]

Per image frame (every frame of an animation or multi-page image; sampled frames of a video):

1. PDQ of the frame (at 512 px) against every registered image's 8 rotations/mirrors:
   ≤ `match_bits` (31) is a match; `match_bits`+1 … `candidate_bits` (50) makes the asset a candidate.
   Flat frames (PDQ quality below `min_quality`) have no meaningful hash and skip this stage.
2. ORB + RANSAC against every registered image: ≥ `match_inliers` (40) homography inliers is a match,
   ≥ `candidate_inliers` (20) for a stage-1 candidate.
3. The large content regions of the frame (a still inside a screenshot, one tile of a collage):
   stages 1 and 2 again on each region.
4. The mirrored registered images (ORB descriptors of the mirror).
5. The frame's negative (colours inverted): its PDQ is the complement of the frame's, so stage 1
   checks the complemented hash too, at no cost; when that makes an asset a candidate (and nothing
   else matched), ORB on the inverted frame decides with the candidate's inlier need. An ORB
   descriptor does not survive inversion (its orientation and every comparison flip), so a negative
   cropped past what PDQ tolerates (10 %) is not found: ORB on every frame's negative would cost
   every image without registered IP another ~15 ms.

Later stages only run when earlier ones found nothing. One finding per IP id and media item: the
surest. Score: 1 − bits/256 for PDQ, min(1, 0.5 + inliers/200) for ORB; detail names the stage,
frame and measure, never content. Thread-safe: the bank is read-only and OpenCV objects are per call.

Every stage runs on an image without registered IP (the common case), and ORB is what finds crops
and rotations, where PDQ gives no candidate at all: no stage can be skipped on PDQ's word.

`image_frames` decodes an item once for both image detectors: the face detector, which runs next on
the same item, gets the frames this detector decoded (34 ms for a 1000×1000 PNG) from `_FrameCache`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, ImageOps

from gateway.content import ContentLimits, Inputs, MediaItem, decode_image_frames, sample_video_frames
from gateway.registry import ImageBank

from .finding import DetectionContext, Finding
from .media_guard import guarded
from .media_image import HASH_BITS, Features, local_features, perceptual_hash, region_boxes

__all__ = ["IpImageDetector", "image_frames"]

_REGIONS = 3
_CACHED_ITEMS = 4
_CACHED_PIXELS = 16_000_000


@dataclass(frozen=True, slots=True)
class _Match:
    ip: str
    score: float
    detail: str


class IpImageDetector:
    """Finds registered IP images; thresholds as measured in shared/reference/media-matching.md."""

    name = "ip_image"

    def __init__(
        self,
        bank: ImageBank,
        limits: ContentLimits | None = None,
        *,
        match_bits: int = 31,
        candidate_bits: int = 50,
        match_inliers: int = 40,
        candidate_inliers: int = 20,
        min_quality: int = 1,
    ) -> None:
        self.bank = bank
        self.limits = limits or ContentLimits()
        self.match_bits = match_bits
        self.candidate_bits = max(candidate_bits, match_bits)
        self.match_inliers = match_inliers
        self.candidate_inliers = min(candidate_inliers, match_inliers)
        self.min_quality = min_quality

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        if not self.bank.asset_count:
            return []
        findings: list[Finding] = []
        for item in inputs.media:
            best: dict[str, _Match] = {}
            for number, frame in enumerate(image_frames(item, self.limits)):
                with guarded("image matcher", item.location):
                    for match in self.match_image(frame):
                        _keep_best(best, _Match(match.ip, match.score, f"frame {number}, {match.detail}"))
            findings += [_finding(item, match, self.name) for match in best.values()]
        return findings

    def match_image(self, image: Image.Image) -> list[_Match]:
        """Registered IP in one image (stages 1–5, stopping at the first that finds any)."""
        candidates: set[int] = set()
        negative: set[int] = set()
        matches = self._by_hash(image, candidates, "pdq", negative)
        if matches:
            return matches
        features = local_features(image, query=True)
        matches = self._by_features(features, candidates, mirrored=False, stage="orb")
        if matches:
            return matches
        for box in region_boxes(image)[:_REGIONS]:
            region = image.crop(box)
            matches = self._by_hash(region, candidates, "region pdq") or self._by_features(
                local_features(region, query=True), candidates, mirrored=False, stage="region orb"
            )
            if matches:
                return matches
        matches = self._by_features(features, candidates, mirrored=True, stage="mirrored orb")
        if matches or not negative:
            return matches
        return self._by_features(local_features(ImageOps.invert(image.convert("RGB")), query=True), negative,
                                 mirrored=False, stage="negative orb")

    def _by_hash(
        self, image: Image.Image, candidates: set[int], stage: str, negative: set[int] | None = None
    ) -> list[_Match]:
        """PDQ matches (and candidates); with `negative`, also the image's negative: inverting an
        image complements its PDQ bits, so the complemented hash finds it for free."""
        fingerprint = perceptual_hash(image)
        if fingerprint.quality < self.min_quality:
            return []
        matches = self._hash_hits(fingerprint.bits, candidates, stage)
        if matches or negative is None:
            return matches
        return self._hash_hits(_complement(fingerprint.bits), negative, f"negative {stage}")

    def _hash_hits(self, bits: bytes, candidates: set[int], stage: str) -> list[_Match]:
        matches = []
        for hit in self.bank.near_hashes(bits, self.candidate_bits):
            if hit.bits <= self.match_bits:
                matches.append(_Match(hit.ip, 1.0 - hit.bits / HASH_BITS, f"{stage} {hit.bits} bits"))
            else:
                candidates.add(hit.asset)
        return matches

    def _by_features(
        self, features: Features, candidates: set[int], *, mirrored: bool, stage: str
    ) -> list[_Match]:
        def needed(asset: int) -> int:
            return self.candidate_inliers if asset in candidates else self.match_inliers

        matches = []
        for hit in self.bank.match_features(features, mirrored=mirrored, min_inliers=needed):
            if hit.inliers >= needed(hit.asset):
                score = min(1.0, 0.5 + hit.inliers / 200)
                matches.append(_Match(hit.ip, score, f"{stage} {hit.inliers} inliers"))
        return matches


def image_frames(item: MediaItem, limits: ContentLimits) -> tuple[Image.Image, ...]:
    """The frames of an image item, or the sampled frames of a video item; nothing for other kinds.

    Decoded once per item for all the detectors that call this (see `_FrameCache`): the frames are
    shared, so callers must not change them in place (crop, resize, convert and transpose copy).
    """
    if item.kind not in ("image", "video"):
        return ()
    return _FRAMES.frames(item, limits)


class _FrameCache:
    """The decoded frames of the last few media items, so that each item is decoded once per request.

    The key is everything decoding depends on: the item's bytes, kind and sniffed type, and the
    limits. Equal keys decode to equal frames, so an entry only ever serves an item with the same
    bytes, checked under the same limits (a stricter caller decodes, and refuses, for itself).
    Bounded by items and pixels (a larger item is decoded for each detector, as before); decoding
    errors are not kept. Entries outlive the request until pushed out: at most `_CACHED_ITEMS`
    items and `_CACHED_PIXELS` decoded pixels (48 MB of RGB) per process.
    """

    def __init__(self, items: int = _CACHED_ITEMS, pixels: int = _CACHED_PIXELS) -> None:
        self.items = items
        self.pixels = pixels
        self._entries: OrderedDict[tuple[object, ...], tuple[Image.Image, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def frames(self, item: MediaItem, limits: ContentLimits) -> tuple[Image.Image, ...]:
        if not isinstance(item.data, bytes):  # a buffer cannot be a key: decode it for this caller only
            return _decoded(item, limits)
        key = (item.data, item.kind, item.sniffed_type, limits)
        with self._lock:
            frames = self._entries.get(key)
            if frames is not None:
                self._entries.move_to_end(key)
                return frames
        frames = _decoded(item, limits)
        self._keep(key, frames)
        return frames

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _keep(self, key: tuple[object, ...], frames: tuple[Image.Image, ...]) -> None:
        if _pixels(frames) > self.pixels:
            return
        with self._lock:
            self._entries[key] = frames
            self._entries.move_to_end(key)
            while len(self._entries) > self.items or sum(map(_pixels, self._entries.values())) > self.pixels:
                self._entries.popitem(last=False)


def _decoded(item: MediaItem, limits: ContentLimits) -> tuple[Image.Image, ...]:
    return tuple(decode_image_frames(item, limits) if item.kind == "image" else sample_video_frames(item, limits))


def _pixels(frames: tuple[Image.Image, ...]) -> int:
    return sum(frame.width * frame.height for frame in frames)


_FRAMES = _FrameCache()


def _complement(bits: bytes) -> bytes:
    return bytes(255 - byte for byte in bits)


def _keep_best(best: dict[str, _Match], match: _Match) -> None:
    if match.ip not in best or match.score > best[match.ip].score:
        best[match.ip] = match


def _finding(item: MediaItem, match: _Match, detector: str) -> Finding:
    return Finding(
        kind="ip_image", entity=match.ip, location=item.location, score=round(match.score, 4),
        detector=detector, detail=match.detail,
    )
