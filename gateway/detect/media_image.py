"""Image fingerprints shared by the IP image detector and the registry index.

    perceptual_hash(image) -> PerceptualHash       PDQ (256 bits, packed) and its quality, at ≤512 px
    dihedral_hashes(image) -> list[bytes], quality  the 8 PDQ hashes of every 90° rotation and mirror
    local_features(image, query=...) -> Features    ORB keypoints and binary descriptors
    region_boxes(image) -> list[box]                large content blobs: a still inside a screenshot/collage

Settings are the ones measured in shared/reference/media-matching.md (PDQ after a 512 px thumbnail;
ORB 1000 features, FAST threshold 10, bank at ≤1024 px, queries scaled into 768–1600 px).
Callers wrap these in `media_guard.guarded`: OpenCV and PDQ raise their own errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pdqhash
from PIL import Image

__all__ = [
    "HASH_BITS",
    "Features",
    "PerceptualHash",
    "dihedral_hashes",
    "local_features",
    "perceptual_hash",
    "region_boxes",
]

# Per-image work is small; the detectors' pool provides the parallelism (see registry/index.py).
cv2.setNumThreads(1)

HASH_BITS = 256
_HASH_SIDE = 512
_BANK_SIDE = 1024
_QUERY_MIN_SIDE = 768
_QUERY_MAX_SIDE = 1600
_ORB_FEATURES = 1000
_ORB_FAST_THRESHOLD = 10

Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class PerceptualHash:
    bits: bytes
    """32 bytes: the PDQ hash, bit-packed."""
    quality: int
    """PDQ quality 0–100; 0 for flat images, whose hash means nothing."""


@dataclass(frozen=True, slots=True)
class Features:
    """ORB keypoint positions (pixels of the analysed image) and their 256-bit descriptors."""

    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]
    """(width, height) of the analysed image, for the homography's coverage."""

    @property
    def count(self) -> int:
        return int(self.descriptors.shape[0])


def perceptual_hash(image: Image.Image) -> PerceptualHash:
    """PDQ of the image thumbnailed to 512 px."""
    vector, quality = pdqhash.compute(_hash_input(image))
    return PerceptualHash(bits=_packed(vector), quality=int(quality))


def dihedral_hashes(image: Image.Image) -> tuple[list[bytes], int]:
    """PDQ of all eight 90° rotations and mirrors, and the quality."""
    vectors, quality = pdqhash.compute_dihedral(_hash_input(image))
    return [_packed(v) for v in vectors], int(quality)


def local_features(image: Image.Image, *, query: bool) -> Features:
    """ORB features; queries are scaled into 768–1600 px so corners appear at the bank's scale."""
    gray = _gray(_query_scaled(image) if query else _limited(image, _BANK_SIDE))
    orb = cv2.ORB.create(nfeatures=_ORB_FEATURES, fastThreshold=_ORB_FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    size = (gray.shape[1], gray.shape[0])
    if descriptors is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), size)
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(points, np.ascontiguousarray(descriptors, dtype=np.uint8), size)


def region_boxes(image: Image.Image, min_fraction: float = 0.04, limit: int = 4) -> list[Box]:
    """Boxes (x0, y0, x1, y1) of large content blobs, largest first (Canny, dilate ×3, contours)."""
    width, height = image.size
    scale = min(1.0, _BANK_SIDE / max(width, height))
    gray = _gray(image.resize((max(1, int(width * scale)), max(1, int(height * scale)))) if scale < 1 else image)
    edges = cv2.Canny(gray, 40, 120)
    dilated = cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=3)
    contours, _ = cv2.findContours(dilated, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area = gray.shape[0] * gray.shape[1]
    boxes: list[tuple[int, Box]] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if not (min_fraction * area <= w * h < 0.95 * area and 0.2 < w / h < 5):
            continue
        x, y, w, h = _tightened(edges, x, y, w, h)
        boxes.append((w * h, (int(x / scale), int(y / scale), int((x + w) / scale), int((y + h) / scale))))
    boxes.sort(reverse=True)
    return [box for _, box in boxes[:limit]]


def _tightened(edges: np.ndarray, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Shrink a dilated blob's box to its raw edge pixels."""
    ys, xs = np.nonzero(edges[y : y + h, x : x + w])
    if not len(xs):
        return x, y, w, h
    return x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1


def _hash_input(image: Image.Image) -> np.ndarray:
    return np.asarray(_limited(image, _HASH_SIDE).convert("RGB"))


def _packed(vector: np.ndarray) -> bytes:
    return np.packbits(np.asarray(vector, dtype=np.uint8).reshape(-1)[:HASH_BITS]).tobytes()


def _limited(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR)
    return copy


def _query_scaled(image: Image.Image) -> Image.Image:
    width, height = image.size
    if max(width, height) < _QUERY_MIN_SIDE:
        scale = _QUERY_MIN_SIDE / max(width, height)
        return image.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.BICUBIC)
    return _limited(image, _QUERY_MAX_SIDE)


def _gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"))
