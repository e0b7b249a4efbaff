"""Registered talent's faces in uploaded images and video frames.

    FaceDetector(index.faces, limits).detect(inputs, context)
        -> [Finding(kind="face", entity=talent id)]       a face within `review_distance` of a talent
         + [Finding(kind="face_unidentifiable", entity="")] a face too small (or one too many) to identify

Pipeline (dlib, CC0 models; never the 68-point model): HOG detection at ≤1024 px (upsample 0, then
more when nothing was found, then other views: see media_face; when faces were found upright but
none is registered talent, the right-angle turns as well), 5-point landmarks and the ResNet
128-d embedding (dlib's network, evaluated in numpy: see media_face) on the full-resolution frame,
Euclidean distance to every reference photo. Frames come from `image.image_frames`: an item is
decoded once for this detector and the IP image detector. Detections scoring under
`min_detection_score` (0.25) are dropped (spurious boxes on clothing scored 0.05, faces 0.76–1.5).
Distance ≤ `match_distance` (0.50) is a match, up to `review_distance` (0.60) is reported for review
(detail says `review`). Score is 1 − distance, so a match scores ≥ 0.5 and a review < 0.5.
Faces under `min_face_px` (80) px give unreliable embeddings and are reported as
`face_unidentifiable`, never passed silently; so are faces past `max_faces` in one frame. One finding
per talent and media item (the nearest), one `face_unidentifiable` per item.

Thread-safe: dlib calls are serialised inside the shared `FaceModel`; its encoder is read-only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gateway.content import ContentLimits, Inputs, MediaItem
from gateway.registry import FaceBank

from .finding import DetectionContext, Finding
from .image import image_frames
from .media_face import FaceBox, FaceModel, FaceSearch
from .media_guard import guarded

__all__ = ["FaceDetector"]


@dataclass(frozen=True, slots=True)
class _Face:
    kind: str
    entity: str
    score: float
    detail: str


class FaceDetector:
    """Finds registered talent's faces; thresholds as measured in shared/reference/media-matching.md."""

    name = "face"

    def __init__(
        self,
        bank: FaceBank,
        limits: ContentLimits | None = None,
        *,
        match_distance: float = 0.50,
        review_distance: float = 0.60,
        min_face_px: int = 80,
        max_faces: int = 20,
        upsample_retry: bool = True,
        rotations: bool = True,
        min_detection_score: float = 0.25,
        model: FaceModel | None = None,
    ) -> None:
        self.bank = bank
        self.limits = limits or ContentLimits()
        self.match_distance = match_distance
        self.review_distance = max(review_distance, match_distance)
        self.min_face_px = min_face_px
        self.max_faces = max_faces
        self.upsample_retry = upsample_retry
        self.rotations = rotations
        self.min_detection_score = min_detection_score
        self.model = model or FaceModel()

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        if not len(self.bank.talent):
            return []
        findings: list[Finding] = []
        for item in inputs.media:
            best: dict[tuple[str, str], _Face] = {}
            for number, frame in enumerate(image_frames(item, self.limits)):
                with guarded("face matcher", item.location):
                    for face in self.faces_in(frame):
                        _keep_best(best, _Face(face.kind, face.entity, face.score, f"frame {number}, {face.detail}"))
            findings += [_finding(item, face, self.name) for face in best.values()]
        return findings

    def faces_in(self, image: Image.Image) -> list[_Face]:
        """Every identified or unidentifiable face in one image.

        When faces were found upright but none is registered talent, the right-angle turns are
        searched too (~75 ms at 1 MP): otherwise a stranger's face upright beside a talent's face
        turned on its side would end the search before the talent's face was seen.
        """
        search = self.model.find(
            image, upsample_retry=self.upsample_retry, rotations=self.rotations, min_score=self.min_detection_score
        )
        results = self._faces(search)
        if not (self.rotations and search.upright and search.boxes) or _identified(results):
            return results
        for turned in self.model.turned(image, min_score=self.min_detection_score):
            results += self._faces(turned)
            if _identified(results):
                break
        return results

    def _faces(self, search: FaceSearch) -> list[_Face]:
        boxes = search.boxes
        pixels: np.ndarray | None = None
        results = []
        for number, box in enumerate(boxes):
            if number >= self.max_faces:
                results.append(_Face("face_unidentifiable", "", 1.0, f"{len(boxes)} faces, over {self.max_faces}"))
                break
            if box.size < self.min_face_px:
                results.append(_Face("face_unidentifiable", "", 1.0, f"face {box.size}px"))
                continue
            pixels = np.asarray(search.image) if pixels is None else pixels
            identified = self._identify(pixels, box)
            if identified is not None:
                results.append(identified)
        return results

    def _identify(self, pixels: np.ndarray, box: FaceBox) -> _Face | None:
        nearest = self.bank.nearest(self.model.embed(pixels, box))
        if not nearest:
            return None
        talent, distance = nearest[0]
        if distance > self.review_distance:
            return None
        verdict = "match" if distance <= self.match_distance else "review"
        return _Face("face", talent, 1.0 - distance, f"face {box.size}px, distance {distance:.2f}, {verdict}")


def _identified(results: list[_Face]) -> bool:
    return any(face.kind == "face" for face in results)


def _keep_best(best: dict[tuple[str, str], _Face], face: _Face) -> None:
    key = (face.kind, face.entity)
    if key not in best or face.score > best[key].score:
        best[key] = face


def _finding(item: MediaItem, face: _Face, detector: str) -> Finding:
    return Finding(
        kind="face" if face.kind == "face" else "face_unidentifiable",
        entity=face.entity,
        location=item.location,
        score=round(face.score, 4),
        detector=detector,
        detail=face.detail,
    )
