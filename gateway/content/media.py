"""Audio and video through PyAV (FFmpeg bundled in its wheels): probing, PCM, sampled frames.

`probe_media` runs while Inputs are gathered: it opens the container and checks its streams and
declared duration, so an undecodable or over-long file fails early, and it decides whether the item
is audio or video by its streams (the signature cannot tell: see there). `decode_audio` gives mono
float32 PCM at 16 kHz for voice checks; `sample_video_frames` gives RGB frames spaced in time for
face and IP checks. Raw PCM (OpenAI Realtime, Gemini Live) has no container: its rate comes from
the protocol (`audio/pcm;rate=24000`), as the sniffed type cannot tell.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Literal

import av
import numpy as np
from PIL import Image

from gateway.errors import TooLargeError, UninspectableError

from .failure import translated
from .inputs import MediaItem, MediaKind
from .limits import ContentLimits

__all__ = ["SAMPLE_RATE", "decode_audio", "media_kind", "probe_media", "sample_video_frames"]

SAMPLE_RATE = 16_000
_RAW_RATE = re.compile(r"rate=(\d{3,6})")
_DEFAULT_RAW_RATE = 24_000


def probe_media(data: bytes, limits: ContentLimits, location: str) -> MediaKind:
    """Open an audio or video container, check its streams against the limits, and say what it holds.

    The kind comes from the streams, not the signature: WebM and Matroska are video by their magic
    but a browser's voice recording (MediaRecorder, `audio/webm;codecs=opus`) has no picture, and an
    Ogg, MP3 or M4A file (audio by its magic) can carry Theora/VP8 video or a cover photo. Any
    video stream, cover art included, makes it "video" (its frames go to the face and image checks,
    its audio to the voice check); audio only makes it "audio".
    """
    with translated("audio/video container", location), _open(data) as container:
        if not container.streams.audio and not container.streams.video:
            raise UninspectableError("container has no audio or video stream", location=location)
        if container.duration is not None and container.duration / av.time_base > limits.max_audio_seconds:
            raise TooLargeError(f"media longer than {limits.max_audio_seconds} s", location=location)
        for stream in container.streams.video:
            _check_video_size(stream, limits, location)
        return "video" if container.streams.video else "audio"


def media_kind(data: bytes, sniffed: MediaKind) -> Literal["audio", "video"]:
    """`probe_media`'s kind for a container that opens; else "video" when the signature said so and
    "audio" otherwise (for generated media and files: one that does not open is refused as
    uninspectable by the decoders, which open it again)."""
    fallback: Literal["audio", "video"] = "video" if sniffed == "video" else "audio"
    try:
        with _open(data) as container:
            if container.streams.video:
                return "video"
            return "audio" if container.streams.audio else fallback
    except (av.FFmpegError, ValueError, OSError):
        return fallback


def decode_audio(item: MediaItem, limits: ContentLimits) -> np.ndarray:
    """The item's first audio stream as mono float32 PCM at 16 kHz, within `max_audio_seconds`."""
    max_samples = int(limits.max_audio_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    with translated("audio", item.location):
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in _audio_frames(item):
            for resampled in resampler.resample(frame):
                total += _append(chunks, resampled, total, max_samples, item.location)
        for resampled in resampler.resample(None):
            total += _append(chunks, resampled, total, max_samples, item.location)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def sample_video_frames(item: MediaItem, limits: ContentLimits) -> list[Image.Image]:
    """RGB frames at least `video_sample_seconds` apart (wider for long videos), at most `max_frames`."""
    samples: list[Image.Image] = []
    with translated("video", item.location), _open(item.data) as container:
        if not container.streams.video:
            raise UninspectableError("no video stream", location=item.location)
        stream = container.streams.video[0]
        _check_video_size(stream, limits, item.location)
        interval = _sample_interval(container, limits)
        next_time = 0.0
        for frame in container.decode(stream):
            seconds = float(frame.time or 0.0)
            if seconds > limits.max_audio_seconds:
                raise TooLargeError(f"video longer than {limits.max_audio_seconds} s", location=item.location)
            if seconds + 1e-6 < next_time:
                continue
            if len(samples) >= limits.max_frames:
                raise TooLargeError(f"more than {limits.max_frames} sampled frames", location=item.location)
            samples.append(frame.to_image().convert("RGB"))
            next_time = seconds + interval
    if not samples:
        raise UninspectableError("video has no decodable frames", location=item.location)
    return samples


def _open(data: bytes) -> av.container.InputContainer:
    return av.open(io.BytesIO(data), mode="r")


def _audio_frames(item: MediaItem) -> Iterator[av.AudioFrame]:
    if item.sniffed_type == "audio/pcm":
        yield _raw_pcm_frame(item)
        return
    with _open(item.data) as container:
        if not container.streams.audio:
            raise UninspectableError("no audio stream", location=item.location)
        yield from container.decode(container.streams.audio[0])


def _raw_pcm_frame(item: MediaItem) -> av.AudioFrame:
    """Raw 16-bit little-endian mono PCM at the rate the protocol declared."""
    match = _RAW_RATE.search(item.declared_type)
    rate = int(match.group(1)) if match else _DEFAULT_RAW_RATE
    samples = np.frombuffer(item.data[: len(item.data) // 2 * 2], dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


def _append(
    chunks: list[np.ndarray], frame: av.AudioFrame, total: int, max_samples: int, location: str
) -> int:
    samples = frame.to_ndarray().reshape(-1)
    if total + len(samples) > max_samples:
        raise TooLargeError(f"audio longer than {max_samples // SAMPLE_RATE} s", location=location)
    chunks.append(samples)
    return len(samples)


def _check_video_size(stream: av.video.stream.VideoStream, limits: ContentLimits, location: str) -> None:
    width = stream.codec_context.width or 0
    height = stream.codec_context.height or 0
    if width * height > limits.max_image_pixels:
        raise TooLargeError(f"video frames exceed {limits.max_image_pixels} pixels", location=location)


def _sample_interval(container: av.container.InputContainer, limits: ContentLimits) -> float:
    interval = limits.video_sample_seconds
    if container.duration:
        seconds = container.duration / av.time_base
        interval = max(interval, seconds / max(limits.max_frames, 1))
    return interval
