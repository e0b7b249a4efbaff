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

Later stages only run when earlier ones found nothing. One finding per IP id and media item: the
surest. Score: 1 − bits/256 for PDQ, min(1, 0.5 + inliers/200) for ORB; detail names the stage,
frame and measure, never content. Thread-safe: the bank is read-only and OpenCV objects are per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from PIL import Image

from gateway.content import ContentLimits, Inputs, MediaItem, decode_image_frames, sample_video_frames
from gateway.registry import ImageBank

from .finding import DetectionContext, Finding
from .media_guard import guarded
from .media_image import HASH_BITS, Features, local_features, perceptual_hash, region_boxes

__all__ = ["IpImageDetector", "image_frames"]

_REGIONS = 3


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
        """Registered IP in one image (stages 1–4, stopping at the first that finds any)."""
        candidates: set[int] = set()
        matches = self._by_hash(image, candidates, "pdq")
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
        return self._by_features(features, candidates, mirrored=True, stage="mirrored orb")

    def _by_hash(self, image: Image.Image, candidates: set[int], stage: str) -> list[_Match]:
        fingerprint = perceptual_hash(image)
        if fingerprint.quality < self.min_quality:
            return []
        matches = []
        for hit in self.bank.near_hashes(fingerprint.bits, self.candidate_bits):
            if hit.bits <= self.match_bits:
                matches.append(_Match(hit.ip, 1.0 - hit.bits / HASH_BITS, f"{stage} {hit.bits} bits"))
            else:
                candidates.add(hit.asset)
        return matches

    def _by_features(
        self, features: Features, candidates: set[int], *, mirrored: bool, stage: str
    ) -> list[_Match]:
        matches = []
        for hit in self.bank.match_features(features, mirrored=mirrored):
            needed = self.candidate_inliers if hit.asset in candidates else self.match_inliers
            if hit.inliers >= needed:
                score = min(1.0, 0.5 + hit.inliers / 200)
                matches.append(_Match(hit.ip, score, f"{stage} {hit.inliers} inliers"))
        return matches


def image_frames(item: MediaItem, limits: ContentLimits) -> Iterator[Image.Image]:
    """The frames of an image item, or the sampled frames of a video item; nothing for other kinds."""
    frames: Iterable[Image.Image]
    if item.kind == "image":
        frames = decode_image_frames(item, limits)
    elif item.kind == "video":
        frames = sample_video_frames(item, limits)
    else:
        return
    yield from frames


def _keep_best(best: dict[str, _Match], match: _Match) -> None:
    if match.ip not in best or match.score > best[match.ip].score:
        best[match.ip] = match


def _finding(item: MediaItem, match: _Match, detector: str) -> Finding:
    return Finding(
        kind="ip_image", entity=match.ip, location=item.location, score=round(match.score, 4),
        detector=detector, detail=match.detail,
    )
