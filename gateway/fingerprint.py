"""Fingerprints of generated media: enough to recognise an output later, never enough to rebuild it.

    fingerprint_output(OutputItem) -> OutputFingerprint     what the gateway records per output
    fingerprint_media(data, path=...) -> OutputFingerprint  what a provenance scan computes per file
    pdq_distance(a, b) -> int                               Hamming distance of two PDQ hashes
    audio_distance(query, stored) -> AudioAlignment | None  best bit error rate over alignments

What is kept (value types are frozen; no output bytes are held after a call returns):

- **SHA-256** of the bytes: the exact copy.
- **PDQ** (Meta's 256-bit perceptual hash, `pdqhash`, at ≤512 px as in media-matching.md) of an
  image, of each sampled video frame, and — on the recorded side only — of four centre crops
  (keep 90, 80, 70, 60 %) and four corner crops (keep 85 % from each corner). Global hashes do not
  survive cropping (0/16 at a 10 % crop in media-matching.md); hashing the output's own crops
  moves the cropped copy back within PDQ's ≤31-bit match radius (measured in tests and
  docs/outputs.md). The scan side hashes a file's eight dihedral variants (rotations, mirrors),
  so a mirrored copy meets the recorded hash unmirrored.
- **Audio**: a Haitsma–Kalker ("Philips") landmark-free fingerprint over `decode_audio`'s mono
  16 kHz PCM: 256 ms Hann frames every 16 ms, energies in 33 log-spaced bands 300–3000 Hz, and
  per frame 32 bits, the signs of the band-energy differences across frequency *and* time. The
  signs of energy slopes survive lossy coding and resampling (they depend on the spectral
  envelope, not on the waveform); a copy is recognised by its bit error rate (BER) against the
  recorded bits at the best alignment, found by voting on exactly equal 32-bit frames and by a
  ±1 s search around zero (encoder delay). Chosen over chroma or peak-pair landmarks because it
  needs only numpy, is fixed-size per frame, and its BER has a known distribution for unrelated
  audio (≈0.5). Frames quieter than −55 dBFS are masked out (silence matches silence).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from gateway.content.image import decode_image_frames
from gateway.content.inputs import MediaItem
from gateway.content.limits import ContentLimits
from gateway.content.media import SAMPLE_RATE, decode_audio, media_kind
from gateway.content.sniff import sniff
from gateway.detect.media_guard import guarded
from gateway.detect.media_image import dihedral_hashes, local_features, perceptual_hash
from gateway.errors import TooLargeError, UninspectableError
from gateway.outputs import OutputItem, OutputKind

__all__ = [
    "AUDIO_FRAME",
    "AUDIO_HOP",
    "AudioAlignment",
    "AudioFingerprint",
    "AudioFingerprinter",
    "ImageHash",
    "LocalFeatures",
    "OutputFingerprint",
    "audio_distance",
    "fingerprint_audio",
    "fingerprint_file",
    "fingerprint_media",
    "fingerprint_output",
    "image_features",
    "image_hashes",
    "pdq_distance",
    "sampled_frames",
    "stream_audio",
    "trim_borders",
]

AUDIO_FRAME = 4096
"""samples per audio frame (256 ms at 16 kHz)."""
AUDIO_HOP = 256
"""samples between frames (16 ms): frames overlap 15/16, so a misaligned copy still lines up."""
_BANDS = 33
_LOW_HZ, _HIGH_HZ = 300.0, 3000.0
_SILENCE_RMS = 10 ** (-55 / 20)
_BLOCK_FRAMES = 2048
_SEARCH_AROUND_ZERO = 64
_MIN_OVERLAP = 48
"""frames (0.77 s) two fingerprints must share before a BER means anything."""
_VOTED_OFFSETS = 5

_CENTRE_CROPS = (0.9, 0.8, 0.7, 0.6)
_SIDE_CROPS = (0.9, 0.8)
_ANCHORS = {  # where a crop keeps its content: (x, y) alignment, 0 = left/top, 0.5 = centre, 1 = right/bottom
    "left": (0.0, 0.5), "right": (1.0, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0),
    "top-left": (0.0, 0.0), "top-right": (1.0, 0.0), "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0),
}  # fmt: skip
_MAX_OUTPUT_FRAMES = 64
_HASH_SIDE = 512
_DIHEDRAL = ("full", "rot90", "rot180", "rot270", "flip", "flip-rot90", "flip-rot180", "flip-rot270")


@dataclass(frozen=True, slots=True)
class ImageHash:
    """One PDQ hash: of the whole image, a crop, a video frame, or a rotated/mirrored variant."""

    bits: bytes
    """32 bytes, the 256 PDQ bits packed."""
    quality: int
    """PDQ quality 0–100; below 50 the image is too flat for a near match to mean anything."""
    variant: str
    """what was hashed: `full`, `crop 90%`, `corner top-left 85%`, `frame 3 @6.0s`, `flip`, …"""


@dataclass(frozen=True, slots=True)
class AudioFingerprint:
    """32-bit sub-fingerprints, one per 16 ms hop, and which frames had sound."""

    frames: bytes
    """big-endian uint32 per frame."""
    voiced: bytes
    """one bit per frame (numpy packbits): louder than −55 dBFS."""

    @property
    def count(self) -> int:
        return len(self.frames) // 4

    @property
    def seconds(self) -> float:
        return self.count * AUDIO_HOP / SAMPLE_RATE

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        values = np.frombuffer(self.frames, dtype=">u4").astype(np.uint32)
        voiced = np.unpackbits(np.frombuffer(self.voiced, dtype=np.uint8))[: self.count].astype(bool)
        return values, voiced

    def to_bytes(self) -> bytes:
        return self.count.to_bytes(4, "big") + self.frames + self.voiced

    @classmethod
    def from_bytes(cls, blob: bytes) -> AudioFingerprint:
        count = int.from_bytes(blob[:4], "big")
        return cls(bytes(blob[4 : 4 + 4 * count]), bytes(blob[4 + 4 * count :]))


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """ORB keypoints of an image: positions and 256-bit descriptors of small corner patches.

    For crops that are not on the recorded grid, rotations and stills pasted into a larger frame.
    Descriptors are binary comparisons inside 31 px patches: they identify, they cannot be drawn back.
    """

    points: bytes
    """float32 (x, y) per keypoint, in the analysed image's pixels."""
    descriptors: bytes
    """32 bytes per keypoint."""
    width: int
    height: int
    variant: str = "full"

    @property
    def count(self) -> int:
        return len(self.descriptors) // 32

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        points = np.frombuffer(self.points, np.float32).reshape(-1, 2)
        return points, np.frombuffer(self.descriptors, np.uint8).reshape(-1, 32)

    def to_bytes(self) -> bytes:
        header = np.array([self.count, self.width, self.height], ">u4").tobytes()
        return header + self.points + self.descriptors

    @classmethod
    def from_bytes(cls, blob: bytes) -> LocalFeatures:
        count, width, height = (int(v) for v in np.frombuffer(blob[:12], ">u4"))
        points = bytes(blob[12 : 12 + 8 * count])
        return cls(points, bytes(blob[12 + 8 * count : 12 + 40 * count]), width, height)


def image_features(image: Image.Image, *, recorded: bool) -> tuple[LocalFeatures, ...]:
    """ORB features: recorded side of the image; query side of it and of its mirror."""
    variants = [("full", image)] if recorded else [("full", image), ("flip", ImageOps.mirror(image))]
    found = []
    with guarded("local features", "image"):
        for name, picture in variants:
            features = local_features(picture, query=not recorded)
            points = np.ascontiguousarray(features.points, np.float32).tobytes()
            descriptors = np.ascontiguousarray(features.descriptors, np.uint8).tobytes()
            found.append(LocalFeatures(points, descriptors, features.size[0], features.size[1], name))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class OutputFingerprint:
    """Everything recorded (or compared) about one piece of media; never its bytes."""

    kind: OutputKind
    sha256: str
    size: int
    media_type: str
    images: tuple[ImageHash, ...] = ()
    audio: AudioFingerprint | None = None
    features: tuple[LocalFeatures, ...] = ()
    """ORB features of a still image (recorded: the image; query: the image and its mirror)."""


@dataclass(frozen=True, slots=True)
class AudioAlignment:
    """How well a query lines up with a recorded fingerprint at its best offset."""

    ber: float
    """bit error rate over the voiced frames both share: ≈0 for a copy, ≈0.5 for unrelated audio."""
    offset_seconds: float
    """where the query starts in the recorded audio (negative: the query starts earlier)."""
    overlap_seconds: float


# --- images ---------------------------------------------------------------------------------------


def image_hashes(image: Image.Image, *, recorded: bool, prefix: str = "") -> list[ImageHash]:
    """PDQ hashes of one image: recorded side = whole + crops; query side = eight dihedral variants."""
    with guarded("perceptual hash", prefix or "image"):
        if not recorded:
            vectors, quality = dihedral_hashes(image)
            found = [ImageHash(bits, quality, prefix + name) for bits, name in zip(vectors, _DIHEDRAL, strict=True)]
            trimmed = trim_borders(image)
            if trimmed is not None:  # letterboxed, pillarboxed or matted: also hash the picture inside
                vectors, quality = dihedral_hashes(trimmed)
                found += [
                    ImageHash(bits, quality, f"{prefix}inside borders {name}")
                    for bits, name in zip(vectors, _DIHEDRAL, strict=True)
                ]
            return found
        image = _limited(image, _HASH_SIDE)  # once, so the crops below are cheap
        whole = perceptual_hash(image)
        hashes = [ImageHash(whole.bits, whole.quality, prefix + "full")]
        for keep in _CENTRE_CROPS:
            crop = perceptual_hash(_crop(image, keep, keep, 0.5, 0.5))
            hashes.append(ImageHash(crop.bits, crop.quality, f"{prefix}crop {keep:.0%}"))
        for keep in _SIDE_CROPS:
            for name, (x, y) in _ANCHORS.items():
                keep_w = 1.0 if name in ("top", "bottom") else keep
                keep_h = 1.0 if name in ("left", "right") else keep
                crop = perceptual_hash(_crop(image, keep_w, keep_h, x, y))
                hashes.append(ImageHash(crop.bits, crop.quality, f"{prefix}crop {keep:.0%} {name}"))
        return hashes


def trim_borders(image: Image.Image, tolerance: int = 12, min_fraction: float = 0.02) -> Image.Image | None:
    """The picture inside uniform borders (letterbox, pillarbox, mattes), or None when there are none.

    A border is a run of edge rows/columns whose pixels all stay within `tolerance` of the corner colour;
    it counts when it removes at least `min_fraction` of the width or height.
    """
    pixels = np.asarray(_limited(image, _HASH_SIDE).convert("L"), dtype=np.int16)
    height, width = pixels.shape
    if height < 16 or width < 16:
        return None
    flat_rows = np.all(np.abs(pixels - pixels[0, 0]) <= tolerance, axis=1)
    flat_cols = np.all(np.abs(pixels - pixels[0, 0]) <= tolerance, axis=0)
    top = int(np.argmin(flat_rows)) if not flat_rows.all() else 0
    bottom = int(np.argmin(flat_rows[::-1])) if not flat_rows.all() else 0
    left = int(np.argmin(flat_cols)) if not flat_cols.all() else 0
    right = int(np.argmin(flat_cols[::-1])) if not flat_cols.all() else 0
    if top + bottom < min_fraction * height and left + right < min_fraction * width:
        return None
    if height - top - bottom < 16 or width - left - right < 16:
        return None
    sx, sy = image.width / width, image.height / height
    return image.crop((round(left * sx), round(top * sy), round((width - right) * sx), round((height - bottom) * sy)))


def pdq_distance(a: bytes, b: bytes) -> int:
    """Hamming distance between two packed 256-bit PDQ hashes."""
    return int(np.bitwise_count(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def _limited(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR)
    return copy


def _crop(image: Image.Image, keep_w: float, keep_h: float, x: float, y: float) -> Image.Image:
    """The part of `image` keeping `keep_w` × `keep_h` of it, aligned at (x, y) (0.5 = centred)."""
    width, height = image.size
    w, h = max(1, round(width * keep_w)), max(1, round(height * keep_h))
    left, top = round((width - w) * x), round((height - h) * y)
    return image.crop((left, top, left + w, top + h))


# --- audio ----------------------------------------------------------------------------------------


def _band_bins() -> np.ndarray:
    edges = np.geomspace(_LOW_HZ, _HIGH_HZ, _BANDS + 1)
    return np.round(edges * AUDIO_FRAME / SAMPLE_RATE).astype(np.int64)


_BAND_BINS = _band_bins()
_WINDOW = np.hanning(AUDIO_FRAME).astype(np.float32)
_WEIGHTS = (np.uint64(1) << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint64)


class AudioFingerprinter:
    """Streaming Haitsma–Kalker fingerprint: feed mono float32 16 kHz samples in any chunk sizes."""

    def __init__(self) -> None:
        self._carry = np.zeros(0, dtype=np.float32)
        self._previous: np.ndarray | None = None
        self._values: list[np.ndarray] = []
        self._voiced: list[np.ndarray] = []

    def update(self, samples: np.ndarray) -> None:
        buffer = np.concatenate([self._carry, np.asarray(samples, dtype=np.float32).reshape(-1)])
        count = (len(buffer) - AUDIO_FRAME) // AUDIO_HOP + 1 if len(buffer) >= AUDIO_FRAME else 0
        done = 0
        while done < count:
            block = min(_BLOCK_FRAMES, count - done)
            start = done * AUDIO_HOP
            span = buffer[start : start + (block - 1) * AUDIO_HOP + AUDIO_FRAME]
            frames = np.lib.stride_tricks.sliding_window_view(span, AUDIO_FRAME)[::AUDIO_HOP]
            self._frames(frames)
            done += block
        self._carry = buffer[count * AUDIO_HOP :].copy()

    def _frames(self, frames: np.ndarray) -> None:
        rms = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1))
        power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
        cumulative = np.concatenate([np.zeros((len(power), 1)), np.cumsum(power, axis=1)], axis=1)
        energies = cumulative[:, _BAND_BINS[1:]] - cumulative[:, _BAND_BINS[:-1]]
        slopes = energies[:, :-1] - energies[:, 1:]
        previous = slopes[:1] if self._previous is None else self._previous
        history = np.concatenate([previous, slopes[:-1]])
        bits = (slopes - history) > 0
        self._previous = slopes[-1:]
        self._values.append((bits.astype(np.uint64) * _WEIGHTS).sum(axis=1).astype(np.uint32))
        self._voiced.append(rms >= _SILENCE_RMS)

    def finish(self) -> AudioFingerprint:
        values = np.concatenate(self._values) if self._values else np.zeros(0, np.uint32)
        voiced = np.concatenate(self._voiced) if self._voiced else np.zeros(0, bool)
        if len(voiced):
            voiced[0] = False  # its time difference is against itself
        return AudioFingerprint(values.astype(">u4").tobytes(), np.packbits(voiced).tobytes())


def fingerprint_audio(samples: np.ndarray) -> AudioFingerprint:
    """The fingerprint of mono float32 PCM at 16 kHz (as `decode_audio` returns it)."""
    fingerprinter = AudioFingerprinter()
    fingerprinter.update(samples)
    return fingerprinter.finish()


def audio_distance(query: AudioFingerprint, stored: AudioFingerprint) -> AudioAlignment | None:
    """The best alignment of `query` against `stored`, or None when they share too few voiced frames."""
    q, q_voiced = query.arrays()
    s, s_voiced = stored.arrays()
    if not len(q) or not len(s):
        return None
    minimum = min(_MIN_OVERLAP, int(q_voiced.sum()), int(s_voiced.sum()))
    if minimum < _MIN_OVERLAP // 2:
        return None
    candidates = [_near_zero(q, q_voiced, s, s_voiced, minimum)]
    for offset in _voted_offsets(q, q_voiced, s, s_voiced):
        candidates.append(_scored(q, q_voiced, s, s_voiced, offset, minimum))
    found = [c for c in candidates if c is not None]
    if not found:
        return None
    ber, offset, shared = min(found)
    hop = AUDIO_HOP / SAMPLE_RATE
    return AudioAlignment(ber, offset * hop, shared * hop)


def _scored(
    q: np.ndarray, q_voiced: np.ndarray, s: np.ndarray, s_voiced: np.ndarray, offset: int, minimum: int
) -> tuple[float, int, int] | None:
    """(BER, offset, shared voiced frames) with query frame i against stored frame i + offset."""
    q0, s0 = max(0, -offset), max(0, offset)
    length = min(len(q) - q0, len(s) - s0)
    if length <= 0:
        return None
    both = q_voiced[q0 : q0 + length] & s_voiced[s0 : s0 + length]
    shared = int(both.sum())
    if shared < minimum:
        return None
    errors = int(np.bitwise_count(q[q0 : q0 + length][both] ^ s[s0 : s0 + length][both]).sum())
    return errors / (32 * shared), offset, shared


def _near_zero(
    q: np.ndarray, q_voiced: np.ndarray, s: np.ndarray, s_voiced: np.ndarray, minimum: int
) -> tuple[float, int, int] | None:
    """The best of every offset within ±1 s of zero (encoder delay, trimmed starts), in one numpy pass."""
    window = _SEARCH_AROUND_ZERO
    span = min(len(q), len(s) + window)
    padded = np.zeros(span + 2 * window, np.uint32)
    padded_voiced = np.zeros(span + 2 * window, bool)
    usable = min(len(s), span + window)
    padded[window : window + usable] = s[:usable]
    padded_voiced[window : window + usable] = s_voiced[:usable]
    rows = np.lib.stride_tricks.sliding_window_view(padded, span)  # row j: stored frames from j - window
    rows_voiced = np.lib.stride_tricks.sliding_window_view(padded_voiced, span)
    both = rows_voiced & q_voiced[:span]
    shared = both.sum(axis=1)
    errors = np.where(both, np.bitwise_count(rows ^ q[:span]), 0).sum(axis=1)
    valid = shared >= minimum
    if not valid.any():
        return None
    ber = np.where(valid, errors / np.maximum(32 * shared, 1), np.inf)
    best = int(np.argmin(ber))
    return float(ber[best]), best - window, int(shared[best])


def _voted_offsets(q: np.ndarray, q_voiced: np.ndarray, s: np.ndarray, s_voiced: np.ndarray) -> list[int]:
    """Offsets (stored index − query index) where identical 32-bit frames vote: an excerpt anywhere."""
    s_positions = np.flatnonzero(s_voiced)
    order = np.argsort(s[s_positions], kind="stable")
    s_sorted = s[s_positions][order]
    q_positions = np.flatnonzero(q_voiced)
    left = np.searchsorted(s_sorted, q[q_positions], "left")
    hits = np.searchsorted(s_sorted, q[q_positions], "right") - left
    chosen = np.flatnonzero((hits > 0) & (hits <= 8))  # a value seen everywhere votes for nothing
    if not len(chosen):
        return []
    counts = hits[chosen]
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    offsets = s_positions[order[np.repeat(left[chosen], counts) + within]] - np.repeat(q_positions[chosen], counts)
    values, votes = np.unique(offsets, return_counts=True)
    top = values[np.argsort(-votes, kind="stable")[:_VOTED_OFFSETS]]
    return sorted({int(v) + d for v in top for d in (-1, 0, 1) if abs(int(v) + d) > _SEARCH_AROUND_ZERO})


# --- whole items ----------------------------------------------------------------------------------


def fingerprint_output(item: OutputItem, limits: ContentLimits | None = None) -> OutputFingerprint:
    """What the gateway records for one generated item: sha256, PDQ with crops, audio fingerprint.

    CPU-bound (tens of ms per image): run it off the event loop. Raises InspectionError subclasses.
    """
    limits = limits or ContentLimits()
    media = item.as_media_item()
    return _fingerprint(media, item.kind, recorded=True, limits=limits)


def fingerprint_media(
    data: bytes, *, location: str = "file", limits: ContentLimits | None = None, recorded: bool = False
) -> OutputFingerprint | None:
    """The fingerprint of a file's bytes by their magic (None when not image, audio or video).

    Query side by default: dihedral PDQ variants per image or sampled frame, for matching mirrors.
    """
    limits = limits or ContentLimits()
    sniffed = sniff(data)
    if sniffed is None or sniffed.kind not in ("image", "audio", "video"):
        return None
    kind: OutputKind = "image" if sniffed.kind == "image" else media_kind(data, sniffed.kind)
    media = MediaItem(data, kind, sniffed.mime, sniffed.mime, location)
    return _fingerprint(media, kind, recorded=recorded, limits=limits)


_TAIL_BYTES = 18
"""a TGA 2.0 file says what it is in its last 18 bytes."""


def fingerprint_file(path: Path, limits: ContentLimits | None = None) -> OutputFingerprint | None:
    """The query-side fingerprint of a file on disk (None when not image, audio or video).

    Audio and video are decoded as they are read, so long deliverables need no memory for their bytes.
    """
    limits = limits or ContentLimits()
    location = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
            digest = hashlib.sha256(head)
            size = len(head)
            tail = head[-_TAIL_BYTES:]
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                tail = (tail + chunk)[-_TAIL_BYTES:]
    except OSError as exc:
        raise UninspectableError(f"cannot read ({exc.strerror})", location=location) from exc
    sniffed = sniff(head if size <= len(head) else head + tail)  # what sniff reads: the head, and a TGA's footer
    if sniffed is None or sniffed.kind not in ("image", "audio", "video"):
        return None
    if sniffed.kind == "image":
        if size > limits.max_decoded_bytes:
            raise TooLargeError(f"image larger than {limits.max_decoded_bytes} bytes", location=location)
        return fingerprint_media(path.read_bytes(), location=location, limits=limits)
    images: list[ImageHash] = []
    audio: AudioFingerprint | None = None
    kind: OutputKind = "audio"
    if _has_video(path, location):  # by the streams: an Ogg or MP3 can carry video or a cover picture
        kind = "video"
        for number, (seconds, frame) in enumerate(sampled_frames(path, limits, location)):
            images += image_hashes(frame, recorded=False, prefix=f"frame {number} @{seconds:.1f}s ")
    fingerprinter = AudioFingerprinter()
    heard = False
    for samples in stream_audio(path, limits, location):
        fingerprinter.update(samples)
        heard = True
    if heard:
        audio = fingerprinter.finish()
    return OutputFingerprint(kind, digest.hexdigest(), size, sniffed.mime, tuple(images), audio)


def _fingerprint(media: MediaItem, kind: OutputKind, *, recorded: bool, limits: ContentLimits) -> OutputFingerprint:
    digest = hashlib.sha256(media.data).hexdigest()
    images: list[ImageHash] = []
    audio: AudioFingerprint | None = None
    features: tuple[LocalFeatures, ...] = ()
    if kind == "video" and not _has_video(io.BytesIO(media.data), media.location):
        kind = "audio"  # an MP4/QuickTime container holding only sound (M4A with an `isom` brand)
    if kind == "image":
        frames = decode_image_frames(media, limits)
        for number, frame in enumerate(frames[:_MAX_OUTPUT_FRAMES]):
            images += image_hashes(frame, recorded=recorded, prefix="" if len(frames) == 1 else f"frame {number} ")
        features = image_features(frames[0], recorded=recorded)
    elif kind == "audio":
        audio = fingerprint_audio(decode_audio(media, limits))
    else:
        for number, (seconds, frame) in enumerate(sampled_frames(io.BytesIO(media.data), limits, media.location)):
            prefix = f"frame {number} @{seconds:.1f}s "
            if recorded:
                images += image_hashes(frame, recorded=True, prefix=prefix)
            else:
                images += image_hashes(frame, recorded=False, prefix=prefix)
        audio = _video_audio(media, limits)
    return OutputFingerprint(kind, digest, len(media.data), media.sniffed_type, tuple(images), audio, features)


def _has_video(source: io.BytesIO | Path, location: str) -> bool:
    with guarded("video", location), av.open(source if isinstance(source, io.BytesIO) else str(source)) as container:
        return bool(container.streams.video)


def _video_audio(media: MediaItem, limits: ContentLimits) -> AudioFingerprint | None:
    """A video's soundtrack fingerprint, or None when it has no audio stream."""
    with guarded("video audio", media.location), av.open(io.BytesIO(media.data)) as container:
        if not container.streams.audio:
            return None
    return fingerprint_audio(decode_audio(media, limits))


def sampled_frames(
    source: io.BytesIO | Path | str, limits: ContentLimits, location: str
) -> Iterator[tuple[float, Image.Image]]:
    """Video frames `video_sample_seconds` apart, thumbnailed to 512 px as they are decoded.

    Unlike `sample_video_frames` this streams (one frame in memory at a time) and reads from a path,
    so a feature-length deliverable can be scanned; `max_frames` still bounds the work.
    """
    sampled = 0
    next_time = 0.0
    opened = source if isinstance(source, io.BytesIO) else str(source)
    with guarded("video", location), av.open(opened, "r") as container:
        if not container.streams.video:
            raise UninspectableError("no video stream", location=location)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            seconds = float(frame.time or 0.0)
            if seconds + 1e-6 < next_time:
                continue
            if sampled >= limits.max_frames:
                raise TooLargeError(f"more than {limits.max_frames} sampled frames", location=location)
            image = frame.to_image().convert("RGB")
            image.thumbnail((512, 512), Image.Resampling.BILINEAR)
            yield seconds, image
            sampled += 1
            next_time = seconds + limits.video_sample_seconds
    if not sampled:
        raise UninspectableError("video has no decodable frames", location=location)


def stream_audio(source: Path | str, limits: ContentLimits, location: str) -> Iterable[np.ndarray]:
    """A file's first audio stream as mono float32 16 kHz chunks, decoded as it is read."""
    max_samples = int(limits.max_audio_seconds * SAMPLE_RATE)
    total = 0
    with guarded("audio", location), av.open(str(source)) as container:
        if not container.streams.audio:
            return
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(container.streams.audio[0]):
            for resampled in resampler.resample(frame):
                chunk = resampled.to_ndarray().reshape(-1)
                total += len(chunk)
                if total > max_samples:
                    raise TooLargeError(f"audio longer than {limits.max_audio_seconds:g} s", location=location)
                yield chunk
        for resampled in resampler.resample(None):
            yield resampled.to_ndarray().reshape(-1)
