"""Images: probing at extraction time, and full decoding for the detectors.

`probe_image` runs while Inputs are gathered: it reads the header only (size, frame count) so a
decompression bomb or an unreadable file fails the request early and cheaply.
`decode_image_frames` is for detectors: every frame or page (GIF, APNG, WebP, TIFF, HEIC), EXIF
orientation applied, alpha composited onto white, as RGB Pillow images, within the limits.
HEIC/HEIF come from pillow-heif; AVIF, WebP and JPEG 2000 from Pillow's own wheels.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pillow_heif
from PIL import Image, ImageOps, ImageSequence

from gateway.errors import TooLargeError, UninspectableError

from .failure import translated
from .inputs import MediaItem
from .limits import ContentLimits

if TYPE_CHECKING:
    from .collector import Collector

__all__ = ["decode_image_frames", "probe_image"]

pillow_heif.register_heif_opener()
# Our own pixel limit decides; Pillow's warning (between 1x and 2x its default) is only noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_VECTOR_TYPES = frozenset({"image/svg+xml", "image/wmf", "image/emf"})
_WHITE = (255, 255, 255, 255)


def probe_image(sink: Collector, data: bytes, location: str, depth: int) -> None:
    """Check an image's header against the limits; an unreadable image is uninspectable."""
    with _opened(data, sink.limits, location) as picture:
        _check_frame_count(picture, sink.limits, location)
        if hasattr(picture, "verify") and picture.format == "PNG":
            picture.verify()


def decode_image_frames(item: MediaItem, limits: ContentLimits) -> list[Image.Image]:
    """Every frame of an image as an RGB image: oriented by EXIF, alpha composited onto white.

    Vector formats (SVG, WMF) give no frames: their text and embedded rasters are separate inputs.
    """
    if item.sniffed_type in _VECTOR_TYPES:
        return []
    frames: list[Image.Image] = []
    pixels = 0
    with _opened(item.data, limits, item.location) as picture:
        _check_frame_count(picture, limits, item.location)
        for frame in ImageSequence.Iterator(picture):
            pixels += frame.width * frame.height
            if pixels > limits.max_decoded_pixels:
                raise TooLargeError(
                    f"image frames exceed {limits.max_decoded_pixels} pixels in total", location=item.location
                )
            frames.append(_flattened(frame))
    if not frames:
        raise UninspectableError("image has no frames", location=item.location)
    return frames


@contextmanager
def _opened(data: bytes, limits: ContentLimits, location: str) -> Iterator[Image.Image]:
    """An image opened lazily; Pillow's errors inside the block become InspectionErrors."""
    with translated("image", location):
        picture = _open_checked(data, limits, location)
        try:
            yield picture
        finally:
            picture.close()


def _open_checked(data: bytes, limits: ContentLimits, location: str) -> Image.Image:
    try:
        picture = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise TooLargeError("image is a decompression bomb", location=location) from exc
    if picture.width * picture.height > limits.max_image_pixels:
        picture.close()
        raise TooLargeError(f"image exceeds {limits.max_image_pixels} pixels", location=location)
    return picture


def _check_frame_count(picture: Image.Image, limits: ContentLimits, location: str) -> None:
    frames = getattr(picture, "n_frames", 1)
    if frames > limits.max_frames:
        raise TooLargeError(f"image has more than {limits.max_frames} frames", location=location)


def _flattened(frame: Image.Image) -> Image.Image:
    """One frame, upright and opaque: EXIF orientation applied, transparency composited onto white."""
    upright = ImageOps.exif_transpose(frame)  # a new image whether or not it turned (the frame is left alone)
    if upright.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        upright = upright.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if upright.mode == "RGB":
        return upright  # opaque already: compositing onto white would give the same pixels
    if upright.mode in ("1", "L") or (upright.mode == "P" and "transparency" not in upright.info):
        return upright.convert("RGB")
    rgba = upright.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")
