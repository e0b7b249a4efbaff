"""Face detection and identity embeddings with dlib's CC0 models from `face_recognition_models`.

    FaceModel()                         loads the HOG detector, 5-point landmarks and ResNet encoder
    FaceModel.find(image, ...) -> faces  boxes in the image's own pixels, largest first
    FaceModel.embed(image, face)         128-d identity embedding (Euclidean distance ≤0.6 = same person)

Only the 5-point landmark model is ever loaded: the 68-point model in the same package was trained
on iBUG 300-W, whose licence excludes commercial use. Model paths are found without importing
`face_recognition_models` (its __init__ imports pkg_resources, gone from recent setuptools).

Detection runs on a copy scaled to ≤1024 px (upsample 0; when nothing was found, upsampled once, or
up to three times for small images, to reach faces of about 40 px at the detection scale; then the
image turned by 90°/180°/270° at ≤512 px); landmarks and embeddings use the full-resolution image.
Callers wrap these in `media_guard.guarded`: dlib raises RuntimeError and friends.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from gateway.errors import ConfigError

__all__ = ["FaceBox", "FaceModel", "FaceSearch", "model_files"]

_DETECT_SIDE = 1024
_ROTATED_SIDE = 512
_MAX_UPSAMPLE = 3
_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
_ENCODER = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face in the analysed image's pixels."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def size(self) -> int:
        """Side of the face box in pixels (the smaller of width and height)."""
        return min(self.right - self.left, self.bottom - self.top)


def model_files() -> tuple[Path, Path]:
    """Paths of the 5-point landmark model and the ResNet encoder inside `face_recognition_models`."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ConfigError("face models are missing: install the `face_recognition_models` package")
    folder = Path(spec.origin).parent / "models"
    paths = (folder / _LANDMARKS, folder / _ENCODER)
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"face model {path.name} is missing from {folder}; reinstall face_recognition_models")
    return paths


@dataclass(frozen=True, slots=True)
class FaceSearch:
    """Faces found, and the image (the input, or the input turned) whose pixels the boxes refer to."""

    image: Image.Image
    boxes: list[FaceBox]


class FaceModel:
    """dlib's HOG detector + 5-point landmarks + ResNet encoder; calls are serialised by a lock."""

    def __init__(self) -> None:
        landmarks, encoder = model_files()
        try:
            self._detector = dlib.get_frontal_face_detector()
            self._landmarks = dlib.shape_predictor(str(landmarks))
            self._encoder = dlib.face_recognition_model_v1(str(encoder))
        except RuntimeError as exc:
            raise ConfigError(
                f"face models in {landmarks.parent} cannot be loaded; reinstall face_recognition_models"
            ) from exc
        self._lock = threading.Lock()

    def find(
        self, image: Image.Image, *, upsample_retry: bool = True, rotations: bool = True, min_score: float = 0.25
    ) -> FaceSearch:
        """Faces in `image`, largest first, in the pixels of `FaceSearch.image`.

        Upright first (upsample 0, then more when nothing was found and `upsample_retry`); when still
        nothing, the image turned by 90°, 180° and 270° at ≤512 px (large faces only, cheaply).
        Boxes scoring under `min_score` (HOG SVM margin) are dropped: true faces measured 0.76–1.5,
        spurious boxes on clothing and texture 0.05.
        """
        rgb = image.convert("RGB")
        boxes = self._upright(rgb, upsample_retry, min_score)
        if boxes or not rotations:
            return FaceSearch(rgb, boxes)
        for turn in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_180):
            turned = rgb.transpose(turn)
            boxes = self._detect(turned, _ROTATED_SIDE, (0,), min_score)
            if boxes:
                return FaceSearch(turned, boxes)
        return FaceSearch(rgb, [])

    def _upright(self, image: Image.Image, upsample_retry: bool, min_score: float) -> list[FaceBox]:
        longest = max(image.size)
        retries = [1]
        while upsample_retry and longest * 2 ** (retries[-1] + 1) <= _DETECT_SIDE and retries[-1] < _MAX_UPSAMPLE:
            retries.append(retries[-1] + 1)
        return self._detect(image, _DETECT_SIDE, (0, retries[-1]) if upsample_retry else (0,), min_score)

    def _detect(self, image: Image.Image, side: int, upsamples: tuple[int, ...], min_score: float) -> list[FaceBox]:
        small, scale = _detection_copy(image, side)
        pixels = np.asarray(small)
        rects: list[dlib.rectangle] = []
        with self._lock:
            for upsample in upsamples:
                found, _scores, _ = self._detector.run(pixels, upsample, min_score)
                rects = list(found)
                if rects:
                    break
        faces = [_scaled_box(rect, scale, image.size) for rect in rects]
        return sorted(faces, key=lambda face: -face.size)

    def embed(self, pixels: np.ndarray, face: FaceBox) -> np.ndarray:
        """128-d embedding of one face of an RGB uint8 array (the full-resolution image)."""
        rect = dlib.rectangle(face.left, face.top, face.right, face.bottom)
        with self._lock:
            shape = self._landmarks(pixels, rect)
            descriptor = self._encoder.compute_face_descriptor(pixels, shape, 0)
        return np.asarray(descriptor, dtype=np.float32)


def _detection_copy(rgb: Image.Image, side: int) -> tuple[Image.Image, float]:
    longest = max(rgb.size)
    if longest <= side:
        return rgb, 1.0
    scale = side / longest
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BILINEAR), scale


def _scaled_box(rect: dlib.rectangle, scale: float, size: tuple[int, int]) -> FaceBox:
    width, height = size
    return FaceBox(
        left=max(0, int(rect.left() / scale)),
        top=max(0, int(rect.top() / scale)),
        right=min(width, int(rect.right() / scale)),
        bottom=min(height, int(rect.bottom() / scale)),
    )
