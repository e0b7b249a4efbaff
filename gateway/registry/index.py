"""The compiled registry: fingerprints of every IP image, talent face and talent voice, searchable.

    RegistryIndex
     ├── images: ImageBank   PDQ hashes (8 dihedral variants per image) in a faiss IndexBinaryFlat,
     │                       ORB descriptors of each image and of its mirror in two more
     ├── faces: FaceBank     128-d embeddings of every talent reference photo
     └── voices: VoiceBank   one 256-d enrolment per talent with voice clips (mean of the clips)

Stored in `<data-dir>/registry/index-<digest>/` as `manifest.json` (ids, counts) and `.npz` arrays
(no pickles); the faiss indexes are rebuilt from the arrays when loaded (milliseconds). Every bank is
read-only once built: searching is safe from many threads at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import faiss
import numpy as np

from gateway.detect.media_image import HASH_BITS, Features
from gateway.errors import ConfigError

from .layout import MANIFEST

__all__ = ["FaceBank", "HashHit", "ImageBank", "LocalHit", "RegistryIndex", "VoiceBank"]

# One query searches a few thousand descriptors: OpenMP threads cost more than they save, and on a
# busy 2-core machine they spin (1.1 s instead of 23 ms measured). Parallelism comes from the pool
# the detectors run in.
faiss.omp_set_num_threads(1)

_RATIO = 0.8
_RANSAC_PIXELS = 8.0
_RANSAC_CONFIDENCE = 0.999
_RANSAC_MIN_ITERATIONS = 50
_RANSAC_MAX_ITERATIONS = 2000
_MIN_VOTES = 6


@dataclass(frozen=True, slots=True)
class HashHit:
    ip: str
    asset: int
    bits: int


@dataclass(frozen=True, slots=True)
class LocalHit:
    ip: str
    asset: int
    inliers: int
    coverage: float
    """fraction of the asset's area covered by the matched (inlier) keypoints' bounding box."""


@dataclass(frozen=True, slots=True)
class _Descriptors:
    """ORB features of every asset (one variant: plain or mirrored), stacked."""

    descriptors: np.ndarray  # (m, 32) uint8
    points: np.ndarray  # (m, 2) float32, in the asset's analysed pixels
    owners: np.ndarray  # (m,) int32 asset number

    @classmethod
    def stacked(cls, features: list[Features]) -> _Descriptors:
        owners = [np.full(f.count, i, np.int32) for i, f in enumerate(features)]
        return cls(
            descriptors=np.concatenate([f.descriptors for f in features] or [np.zeros((0, 32), np.uint8)]),
            points=np.concatenate([f.points for f in features] or [np.zeros((0, 2), np.float32)]),
            owners=np.concatenate(owners or [np.zeros(0, np.int32)]),
        )


class ImageBank:
    """IP images: PDQ range search (stage 1) and ORB + RANSAC against every asset (stage 2)."""

    def __init__(
        self,
        ips: list[str],
        sizes: np.ndarray,
        hashes: np.ndarray,
        hash_owners: np.ndarray,
        plain: _Descriptors,
        mirrored: _Descriptors,
    ) -> None:
        self.ips = list(ips)
        self.sizes = np.asarray(sizes, np.float32).reshape(-1, 2)
        self.hashes = np.ascontiguousarray(hashes, np.uint8).reshape(-1, HASH_BITS // 8)
        self.hash_owners = np.asarray(hash_owners, np.int32)
        self.plain = plain
        self.mirrored = mirrored
        self._hash_index = _binary_index(self.hashes)
        self._plain_index = _binary_index(plain.descriptors)
        self._mirrored_index = _binary_index(mirrored.descriptors)

    @property
    def asset_count(self) -> int:
        return len(self.ips)

    def near_hashes(self, bits: bytes, radius: int) -> list[HashHit]:
        """Assets with a dihedral variant within `radius` bits (inclusive), nearest first, one per asset."""
        if not len(self.hashes):
            return []
        query = np.frombuffer(bits, np.uint8).reshape(1, -1)
        limits, distances, labels = self._hash_index.range_search(query, radius + 1)
        best: dict[int, int] = {}
        for distance, label in zip(distances[limits[0] : limits[1]], labels[limits[0] : limits[1]], strict=True):
            asset = int(self.hash_owners[label])
            best[asset] = min(best.get(asset, HASH_BITS), int(distance))
        return sorted((HashHit(self.ips[a], a, d) for a, d in best.items()), key=lambda hit: hit.bits)

    def match_features(
        self,
        features: Features,
        *,
        mirrored: bool = False,
        top: int = 3,
        min_inliers: int | Callable[[int], int] = _MIN_VOTES,
    ) -> list[LocalHit]:
        """The `top` assets with most ratio-test votes, scored by RANSAC homography inliers, best first.

        `min_inliers`: the least the caller would accept, for every asset or per asset number. Inliers
        are a subset of an asset's votes, so an asset with fewer votes gets no RANSAC fit; and the fit
        stops once a model with that many inliers would have been found at 99.9 % confidence (RANSAC's
        own stopping rule, taken at the least acceptable inlier ratio), instead of running all 2,000
        iterations on an image that does not match.
        """
        bank, index = (self.mirrored, self._mirrored_index) if mirrored else (self.plain, self._plain_index)
        if features.count < _MIN_VOTES or index.ntotal < 2:
            return []
        distances, labels = index.search(features.descriptors, 2)
        good = distances[:, 0] < _RATIO * distances[:, 1]
        query_points = features.points[good]
        bank_labels = labels[good, 0]
        owners = bank.owners[bank_labels]
        votes = np.bincount(owners, minlength=self.asset_count)
        hits = []
        for asset in np.argsort(-votes)[:top]:
            chosen = owners == asset
            count = int(chosen.sum())
            needed = max(_MIN_VOTES, min_inliers(int(asset)) if callable(min_inliers) else min_inliers)
            if count < needed:
                continue
            inliers, coverage = _homography_inliers(
                query_points[chosen], bank.points[bank_labels[chosen]], self.sizes[asset],
                _ransac_iterations(count, needed),
            )
            hits.append(LocalHit(self.ips[asset], int(asset), inliers, coverage))
        return sorted(hits, key=lambda hit: -hit.inliers)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "sizes": self.sizes,
            "hashes": self.hashes,
            "hash_owners": self.hash_owners,
            **{f"plain_{k}": v for k, v in _descriptor_arrays(self.plain).items()},
            **{f"mirrored_{k}": v for k, v in _descriptor_arrays(self.mirrored).items()},
        }

    @classmethod
    def from_arrays(cls, ips: list[str], arrays: dict[str, np.ndarray]) -> ImageBank:
        return cls(
            ips,
            arrays["sizes"],
            arrays["hashes"],
            arrays["hash_owners"],
            _Descriptors(arrays["plain_descriptors"], arrays["plain_points"], arrays["plain_owners"]),
            _Descriptors(arrays["mirrored_descriptors"], arrays["mirrored_points"], arrays["mirrored_owners"]),
        )


class FaceBank:
    """Reference face embeddings, each owned by a talent id."""

    def __init__(self, talent: list[str], embeddings: np.ndarray) -> None:
        self.talent = list(talent)
        self.embeddings = np.asarray(embeddings, np.float32).reshape(-1, 128)

    def nearest(self, embedding: np.ndarray) -> list[tuple[str, float]]:
        """(talent id, smallest Euclidean distance to any of their photos), nearest first."""
        if not len(self.embeddings):
            return []
        distances = np.linalg.norm(self.embeddings - embedding.reshape(1, -1), axis=1)
        best: dict[str, float] = {}
        for talent, distance in zip(self.talent, distances.tolist(), strict=True):
            best[talent] = min(best.get(talent, np.inf), distance)
        return sorted(best.items(), key=lambda item: item[1])


class VoiceBank:
    """One unit enrolment vector per talent with voice clips."""

    def __init__(self, talent: list[str], enrolments: np.ndarray) -> None:
        self.talent = list(talent)
        self.enrolments = np.asarray(enrolments, np.float32).reshape(-1, 256)

    def similarities(self, embedding: np.ndarray) -> list[tuple[str, float]]:
        """(talent id, cosine similarity), most similar first."""
        if not len(self.enrolments):
            return []
        scores = (self.enrolments @ embedding.reshape(-1)).tolist()
        return sorted(zip(self.talent, scores, strict=True), key=lambda item: -item[1])


@dataclass(frozen=True, slots=True)
class RegistryIndex:
    """Every searchable fingerprint of one registry version (`digest`)."""

    digest: str
    images: ImageBank
    faces: FaceBank
    voices: VoiceBank
    path: Path | None = None

    def save(self, folder: Path) -> None:
        """Write the index into an empty folder."""
        images: dict[str, Any] = self.images.arrays()
        np.savez(folder / "images.npz", **images)
        np.savez(folder / "faces.npz", embeddings=self.faces.embeddings)
        np.savez(folder / "voices.npz", enrolments=self.voices.enrolments)
        manifest = {
            "digest": self.digest,
            "images": self.images.ips,
            "faces": self.faces.talent,
            "voices": self.voices.talent,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> RegistryIndex:
        """Load an index written by `save`; ConfigError if it is missing or damaged."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            images = _arrays(folder / "images.npz")
            faces = _arrays(folder / "faces.npz")
            voices = _arrays(folder / "voices.npz")
            return cls(
                digest=str(manifest["digest"]),
                images=ImageBank.from_arrays(list(manifest["images"]), images),
                faces=FaceBank(list(manifest["faces"]), faces["embeddings"]),
                voices=VoiceBank(list(manifest["voices"]), voices["enrolments"]),
                path=folder,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{folder}: registry index is unreadable ({type(exc).__name__}); rebuild it") from exc


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _descriptor_arrays(bank: _Descriptors) -> dict[str, np.ndarray]:
    return {"descriptors": bank.descriptors, "points": bank.points, "owners": bank.owners}


def _binary_index(codes: np.ndarray) -> faiss.IndexBinaryFlat:
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8 if codes.ndim == 2 and codes.shape[1] else HASH_BITS)
    if len(codes):
        index.add(np.ascontiguousarray(codes, np.uint8))
    return index


def _ransac_iterations(votes: int, needed: int) -> int:
    """Iterations after which a homography with `needed` inliers among `votes` correspondences would
    have been sampled (4 inliers drawn) with `_RANSAC_CONFIDENCE`; between `_RANSAC_MIN_ITERATIONS`
    and OpenCV's default `_RANSAC_MAX_ITERATIONS`."""
    all_inliers = (min(needed, votes) / votes) ** 4 if votes else 0.0
    if all_inliers >= 1.0:
        return _RANSAC_MIN_ITERATIONS
    if all_inliers <= 0.0:
        return _RANSAC_MAX_ITERATIONS
    wanted = math.ceil(math.log(1.0 - _RANSAC_CONFIDENCE) / math.log(1.0 - all_inliers))
    return max(_RANSAC_MIN_ITERATIONS, min(_RANSAC_MAX_ITERATIONS, wanted))


def _homography_inliers(
    query: np.ndarray, bank: np.ndarray, size: np.ndarray, iterations: int = _RANSAC_MAX_ITERATIONS
) -> tuple[int, float]:
    """RANSAC inliers of the query→asset homography, and the asset area their bounding box covers."""
    if len(query) < 4:
        return 0, 0.0
    _, mask = cv2.findHomography(
        query.astype(np.float32), bank.astype(np.float32), cv2.RANSAC, _RANSAC_PIXELS, maxIters=iterations
    )
    if mask is None:
        return 0, 0.0
    inlier = mask.reshape(-1).astype(bool)
    if not inlier.any():
        return 0, 0.0
    points = bank[inlier]
    span = points.max(axis=0) - points.min(axis=0)
    area = float(size[0] * size[1]) or 1.0
    return int(inlier.sum()), float(span[0] * span[1]) / area
