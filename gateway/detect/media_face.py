"""Face detection and identity embeddings with dlib's CC0 models from `face_recognition_models`.

    FaceModel()                         loads the HOG detector, 5-point landmarks and ResNet encoder
    FaceModel.find(image, ...) -> faces  boxes in the image's own pixels, largest first
    FaceModel.embed(image, face)         128-d identity embedding (Euclidean distance ≤0.6 = same person)

Only the 5-point landmark model is ever loaded: the 68-point model in the same package was trained
on iBUG 300-W, whose licence excludes commercial use. Model paths are found without importing
`face_recognition_models` (its __init__ imports pkg_resources, gone from recent setuptools).

Detection runs on a copy scaled to ≤1024 px (upsample 0; when nothing was found, upsampled once, or
up to three times for small images, to reach faces of about 40 px at the detection scale; then the
image turned by 90°/180°/270°, by ±45°/±135°, squeezed back from a stretch, then its negative, each at
≤512 px); landmarks and embeddings use the full-resolution image (a ≤768 px copy for the diagonal
turns, the ≤1024 px copy squeezed for the squeezed views).
HOG sees the colour image although grey would cost 30 % less (66 instead of 93 ms at 1000×1000:
with colour, dlib takes the strongest gradient of the three channels): grey scores weak faces up to
0.45 lower or higher (a portrait stretched 1.3× and saved as JPEG q20 scores 0.34 in colour, 0.21 in
grey, under the 0.25 threshold), and proposing on grey then deciding in colour on a crop does not
work either: a crop moves the HOG cell grid, and the same face's score moves by ±0.2 with it.
Every image gets the ≤1024 px pass: a first pass at ≤512 px would cost a quarter (19 ms instead of
73 ms at 1000×1000) but misses the smaller identifiable faces (87 and 104 px faces in a 1000 px image
were missed, a 124 px one found), so stopping there whenever it found a face would let a small face
beside a large one through unseen.

The embedding is dlib's ResNet (`dlib_face_recognition_resnet_model_v1.dat`) evaluated in numpy, as
`media_voice` does for the voice encoder: the weights are read from dlib's own file, each batch norm
(affine layer) is folded into its convolution, and each convolution is one matrix product. 12 ms a
face instead of 74 ms in dlib (built without BLAS), and the same vector to within 1e-6
(tests/unit/detect/test_face.py compares them). The 150 px face chip, aligned on the landmarks, is
still cut by dlib exactly as its `compute_face_descriptor` cuts it.
Callers wrap these in `media_guard.guarded`: dlib raises RuntimeError and friends.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dlib
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageOps
from threadpoolctl import threadpool_limits

from gateway.errors import ConfigError

__all__ = ["FaceBox", "FaceModel", "FaceSearch", "model_files"]

_DETECT_SIDE = 1024
_ROTATED_SIDE = 512
_DIAGONAL_BASE_SIDE = 768
_UNSTRETCH = ((0.6, 1.0), (1.0, 0.5))
"""HOG finds faces stretched up to ~1.3x wide or ~1.8x tall (a 16:9 photo squashed to a square: 1.78x,
found as it is, though its likeness may only reach the review band); these views undo 1.35-2.2x wide
and 1.8-2.4x tall."""
_FILL = (255, 255, 255)
_RIGHT_ANGLES = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_180)
_MAX_UPSAMPLE = 3
_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
_ENCODER = "dlib_face_recognition_resnet_model_v1.dat"
_CHIP_SIDE = 150
_CHIP_PADDING = 0.25


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
    upright: bool = True
    """found in the image as given (not turned, not inverted)."""


class FaceModel:
    """dlib's HOG detector + 5-point landmarks, and the ResNet encoder in numpy.

    dlib calls are serialised by a lock; the encoder is read-only numpy and runs outside it.
    """

    def __init__(self) -> None:
        landmarks, encoder = model_files()
        try:
            self._detector = dlib.get_frontal_face_detector()
            self._landmarks = dlib.shape_predictor(str(landmarks))
        except RuntimeError as exc:
            raise ConfigError(
                f"face models in {landmarks.parent} cannot be loaded; reinstall face_recognition_models"
            ) from exc
        self._encoder = _load_encoder(encoder)
        self._lock = threading.Lock()
        _single_threaded_blas()

    def find(
        self, image: Image.Image, *, upsample_retry: bool = True, rotations: bool = True, min_score: float = 0.25
    ) -> FaceSearch:
        """Faces in `image`, largest first, in the pixels of `FaceSearch.image`.

        Upright first (upsample 0, then more when nothing was found and `upsample_retry`); when still
        nothing, other views, cheaply (large faces only), until one has a face: the image turned by
        90°, 270° and 180° at ≤512 px, turned by ±45° and ±135° at ≤512 px (HOG finds faces tilted
        up to about 40° either way, so these close the gaps between the right angles), squeezed to
        60 % of its width and to half its height (undoing a resize that ignored the aspect
        ratio), and its negative at ≤512 px (a colour-inverted photo; the face is found, and
        embedded, in the positive).
        Boxes scoring under `min_score` (HOG SVM margin) are dropped: true faces measured 0.76–1.5,
        spurious boxes on clothing and texture 0.05.
        """
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        boxes = self._upright(rgb, upsample_retry, min_score)
        if boxes or not rotations:
            return FaceSearch(rgb, boxes)
        for view, side in _other_views(rgb):
            boxes = self._detect(view, side, (0,), min_score)
            if boxes:
                return FaceSearch(view, boxes, upright=False)
        return FaceSearch(rgb, [])

    def turned(self, image: Image.Image, *, min_score: float = 0.25) -> Iterator[FaceSearch]:
        """The faces of `image` turned by 90°, 270° and 180° (at ≤512 px), one turn at a time, for
        the turns that have any: for a caller that found faces upright but none it was looking for."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        for turn in _RIGHT_ANGLES:
            turned = rgb.transpose(turn)
            boxes = self._detect(turned, _ROTATED_SIDE, (0,), min_score)
            if boxes:
                yield FaceSearch(turned, boxes, upright=False)

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
            chip = dlib.get_face_chip(pixels, shape, size=_CHIP_SIDE, padding=_CHIP_PADDING)
        return self._encoder(chip)


def _other_views(rgb: Image.Image) -> Iterator[tuple[Image.Image, int]]:
    """The views `find` tries when the upright image has no face, each with its detection side; made
    one at a time (most images stop at the first). The diagonal turns are made from a ≤768 px copy
    (turning the full-resolution photo by 45° would cost more than looking at it; at ≤512 px a face
    the detector finds can be too small to identify) and keep its canvas:
    a photo someone turned by 45° sits upright inside it again, at a size the detector can see."""
    for turn in _RIGHT_ANGLES:
        yield rgb.transpose(turn), _ROTATED_SIDE
    base, _ = _detection_copy(rgb, _DIAGONAL_BASE_SIDE)
    for angle in (45, -45, 135, -135):
        yield base.rotate(angle, Image.Resampling.BILINEAR, fillcolor=_FILL), _ROTATED_SIDE
    large, _ = _detection_copy(rgb, _DETECT_SIDE)  # squeezing shrinks: start from more pixels
    for width, height in _UNSTRETCH:
        size = (max(1, round(large.width * width)), max(1, round(large.height * height)))
        yield large.resize(size, Image.Resampling.BILINEAR), _ROTATED_SIDE
    yield ImageOps.invert(rgb), _ROTATED_SIDE  # a photographic negative: HOG's signed gradients point the other way


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


@cache
def _single_threaded_blas() -> None:
    """Limit BLAS to one thread in this process (once), as `media_voice` does: the encoder's matrix
    products are small, OpenBLAS threads spin on a busy machine, and parallelism comes from the pool
    the detectors run in."""
    threadpool_limits(limits=1, user_api="blas")


# --- dlib's face ResNet in numpy ---------------------------------------------------------------------

_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(filters, residual blocks, whether the first block halves the size) from the input side: the
`anet_type` of dlib's dnn_face_recognition_ex.cpp, which the model file was trained as."""

_EMBEDDING = 128
_LAYER_NAMES = ("input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2", "avg_pool_2", "add_prev_", "fc_2")
_LAYER = re.compile(b"|".join(re.escape(bytes([1, len(name)]) + name.encode()) for name in _LAYER_NAMES))
"""a layer's name as dlib serialises a string: 0x01 (one length byte), the length, the characters."""


def _expected_layers() -> list[str]:
    """The file's layer sequence, input first (dlib writes a network's layers from the input up)."""
    layers = ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]
    for _filters, blocks, halves in _LEVELS:
        for number in range(blocks):
            layers += ["con_4", "affine_", "relu_", "con_4", "affine_"]
            layers += ["avg_pool_2"] if halves and number == 0 else []
            layers += ["add_prev_", "relu_"]
    return [*layers, "avg_pool_2", "fc_2"]


class _Reader:
    """dlib's serialisation: compact integers (a size byte with the sign in bit 7, then little-endian
    bytes), reals as (mantissa, exponent) integers, tensors as version 2, four dimensions, float32 LE."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def integer(self) -> int:
        head = self.data[self.position]
        start, self.position = self.position + 1, self.position + 1 + (head & 0x0F)
        if self.position > len(self.data):
            raise ValueError("integer past the end of the file")
        value = int.from_bytes(self.data[start : self.position], "little")
        return -value if head & 0x80 else value

    def integers(self, count: int) -> tuple[int, ...]:
        return tuple(self.integer() for _ in range(count))

    def real(self) -> float:
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unknown tensor version")
        shape = self.integers(4)
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position)
        self.position += 4 * count
        return values.astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Layer:
    name: str
    settings: tuple[int, ...] = ()
    """con_4: filters, rows, columns, stride y, stride x, padding y, padding x; pools: the last six."""
    params: np.ndarray | None = None
    """con_4: filters then biases; affine_: gammas then betas; fc_2: the (inputs, outputs) matrix."""
    means: tuple[float, ...] = ()
    """input_rgb_image_sized: the red, green and blue means subtracted from every pixel."""


def _read_layers(data: bytes) -> list[_Layer]:
    """Every layer of the file, found by its serialised name, in file order, with its parameters.

    dlib's bookkeeping between layers (versions, flags, empty cached tensors) is skipped. A name that
    happened to occur inside the weights would add a layer the expected sequence does not have, and
    `_ResNet.from_layers` refuses the file then.
    """
    layers = []
    for match in _LAYER.finditer(data):
        name = match.group()[2:].decode()
        reader = _Reader(data, match.end())
        if name == "input_rgb_image_sized":
            layers.append(_Layer(name, means=(reader.real(), reader.real(), reader.real())))
        elif name == "con_4":
            params = reader.tensor()
            layers.append(_Layer(name, reader.integers(7), params))
        elif name == "affine_":
            layers.append(_Layer(name, params=reader.tensor()))
        elif name in ("max_pool_2", "avg_pool_2"):
            layers.append(_Layer(name, reader.integers(6)))
        elif name == "fc_2":
            outputs, inputs = reader.integers(2)
            layers.append(_Layer(name, (outputs, inputs), reader.tensor()))
        else:
            layers.append(_Layer(name))
    return layers


@dataclass(frozen=True, slots=True)
class _Conv:
    """A convolution with its affine layer folded in, as one matrix product over image patches."""

    weights: np.ndarray
    """(size · size · inputs, filters): rows in (patch row, patch column, input channel) order."""
    bias: np.ndarray
    size: int
    stride: int
    padding: int
    relu: bool

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (rows, columns, channels) float32 → (rows', columns', filters)."""
        if self.padding:
            x = np.pad(x, ((self.padding, self.padding), (self.padding, self.padding), (0, 0)))
        patches = sliding_window_view(x, (self.size, self.size), axis=(0, 1))[:: self.stride, :: self.stride]
        rows, columns = patches.shape[:2]
        y = patches.transpose(0, 1, 3, 4, 2).reshape(rows * columns, -1) @ self.weights
        y += self.bias
        if self.relu:
            np.maximum(y, 0, out=y)
        return y.reshape(rows, columns, -1)


@dataclass(frozen=True, slots=True)
class _Block:
    """relu(second(first(x)) + x), or + the 2×2 average of x when the block halves the size."""

    first: _Conv
    second: _Conv
    halves: bool


@dataclass(frozen=True, slots=True)
class _ResNet:
    """dlib's `anet_type` forward pass on one 150×150 RGB face chip. Read-only: safe between threads."""

    means: np.ndarray
    stem: _Conv
    blocks: tuple[_Block, ...]
    projection: np.ndarray

    def __call__(self, chip: np.ndarray) -> np.ndarray:
        x = (np.asarray(chip, np.float32) - self.means) / np.float32(256)
        x = _max_pool_3x3(self.stem(x))
        for block in self.blocks:
            shortcut = _average_pool_2x2(x) if block.halves else x
            x = np.maximum(_sum(block.second(block.first(x)), shortcut), 0)
        return x.mean(axis=(0, 1)) @ self.projection

    @classmethod
    def from_layers(cls, layers: list[_Layer]) -> _ResNet:
        """ValueError unless `layers` are exactly the expected network."""
        if [layer.name for layer in layers] != _expected_layers():
            raise ValueError("unexpected layer sequence")
        queue = iter(layers)
        means = np.array(next(queue).means, np.float32)
        stem = _folded(next(queue), next(queue), inputs=3, size=7, stride=2, padding=0, relu=True)
        next(queue)  # relu_, folded into the stem
        _check_pool(next(queue), size=3)
        blocks, channels = [], stem.weights.shape[1]
        for filters, count, halves in _LEVELS:
            for number in range(count):
                down = halves and number == 0
                first = _folded(next(queue), next(queue), channels, 3, 2 if down else 1, 0 if down else 1, True)
                next(queue)  # relu_, folded into the first convolution
                second = _folded(next(queue), next(queue), filters, 3, 1, 1, relu=False)
                if down:
                    _check_pool(next(queue), size=2)
                next(queue), next(queue)  # add_prev_, relu_
                blocks.append(_Block(first, second, down))
                channels = filters
        if next(queue).settings[:4] != (0, 0, 1, 1):  # average over the whole map
            raise ValueError("unexpected final pooling")
        fc = next(queue)
        if fc.settings != (_EMBEDDING, channels) or fc.params is None or fc.params.size != channels * _EMBEDDING:
            raise ValueError("unexpected projection")
        return cls(means, stem, tuple(blocks), fc.params.reshape(channels, _EMBEDDING))


def _folded(conv: _Layer, affine: _Layer, inputs: int, size: int, stride: int, padding: int, relu: bool) -> _Conv:
    filters = conv.settings[0]
    if conv.settings != (filters, size, size, stride, stride, padding, padding):
        raise ValueError("unexpected convolution settings")
    if conv.params is None or conv.params.size != filters * (inputs * size * size + 1):
        raise ValueError("unexpected convolution shape")
    if affine.params is None or affine.params.size != 2 * filters:
        raise ValueError("unexpected affine layer shape")
    kernels = conv.params[: filters * inputs * size * size].reshape(filters, inputs, size, size)
    gamma, beta = affine.params[:filters], affine.params[filters:]
    weights = (kernels * gamma[:, None, None, None]).transpose(2, 3, 1, 0).reshape(-1, filters)
    bias = conv.params[-filters:] * gamma + beta
    return _Conv(np.ascontiguousarray(weights, np.float32), bias.astype(np.float32), size, stride, padding, relu)


def _check_pool(layer: _Layer, size: int) -> None:
    if layer.settings != (size, size, 2, 2, 0, 0):
        raise ValueError("unexpected pooling settings")


def _max_pool_3x3(x: np.ndarray) -> np.ndarray:
    """3×3 windows, stride 2, no padding (dlib `max_pool<3,3,2,2>`)."""
    rows, columns = (x.shape[0] - 3) // 2 + 1, (x.shape[1] - 3) // 2 + 1
    pooled = x[: 2 * rows - 1 : 2, : 2 * columns - 1 : 2].copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(pooled, x[dy : dy + 2 * rows - 1 : 2, dx : dx + 2 * columns - 1 : 2], out=pooled)
    return pooled


def _average_pool_2x2(x: np.ndarray) -> np.ndarray:
    """2×2 windows, stride 2, no padding (dlib `avg_pool<2,2,2,2>`; an odd last row or column is dropped)."""
    rows, columns = x.shape[0] // 2, x.shape[1] // 2
    x = x[: 2 * rows, : 2 * columns]
    return (x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]) * np.float32(0.25)


def _sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b; where the shapes differ, the smaller is zero-extended at the end (dlib `add_prev`)."""
    if a.shape == b.shape:
        return a + b
    total = np.zeros(tuple(max(m, n) for m, n in zip(a.shape, b.shape, strict=True)), np.float32)
    total[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    total[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return total


@cache
def _load_encoder(path: Path) -> _ResNet:
    """The ResNet of dlib's model file (read once per process); ConfigError if it is not that network."""
    try:
        return _ResNet.from_layers(_read_layers(path.read_bytes()))
    except (OSError, ValueError, IndexError, StopIteration) as exc:
        raise ConfigError(
            f"face model {path.name} is not dlib's face ResNet v1 as expected ({type(exc).__name__}); "
            "reinstall face_recognition_models"
        ) from exc
