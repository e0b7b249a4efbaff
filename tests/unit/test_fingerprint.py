"""gateway.fingerprint: SHA-256, PDQ with crops and dihedral variants, an audio fingerprint surviving re-encoding.

The media is generated here (seeded), so the tables below are the measured robustness, not a sample of it:
docs/outputs.md quotes the same transformations over more seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from gateway.content.limits import ContentLimits
from gateway.fingerprint import (
    AudioFingerprint,
    AudioFingerprinter,
    audio_distance,
    fingerprint_audio,
    fingerprint_file,
    fingerprint_media,
    fingerprint_output,
    pdq_distance,
    trim_borders,
)
from gateway.outputs import OutputItem

sys.path.insert(0, str(Path(__file__).resolve().parent / "content"))
from content_samples import muxed

from gateway.provenance import AUDIO_THRESHOLD, PDQ_THRESHOLD

# --- generated media (shared with test_provenance) -------------------------------------------------


def make_image(seed: int, size: tuple[int, int] = (768, 512)) -> Image.Image:
    """A picture with structure at every scale: smooth colour waves under random shapes."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.5, 6, 2)
            base[..., channel] += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    base = (base - base.min()) / (base.max() - base.min()) * 255
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(20, width // 3)), y0 + int(rng.integers(20, height // 3))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return image


def encode_image(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def make_audio(seed: int, seconds: float = 8.0, rate: int = 44_100) -> np.ndarray:
    """Notes with harmonics and decays, some with breath noise: music-like, different for every seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    position = 0.0
    while position < seconds:
        duration = rng.uniform(0.12, 0.5)
        f0 = rng.uniform(110, 660)
        mask = (t >= position) & (t < position + duration)
        local = t[mask] - position
        envelope = np.minimum(1, local / 0.02) * np.exp(-local * rng.uniform(2, 8))
        out[mask] += envelope * sum((0.6**k) * np.sin(2 * np.pi * f0 * (k + 1) * local) for k in range(5))
        if rng.random() < 0.3:
            out[mask] += 0.2 * envelope * rng.standard_normal(int(mask.sum()))
        position += duration * rng.uniform(0.6, 1.1)
    return (out / np.abs(out).max() * 0.6).astype(np.float32)


def encode_audio(
    samples: np.ndarray, fmt: str, codec: str, *, rate: int = 44_100, out_rate: int | None = None,
    bitrate: int | None = None,
) -> bytes:  # fmt: skip
    """Encode mono float PCM with PyAV (mp3 via libmp3lame, aac, wav…), resampling to `out_rate`."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate or rate)
        stream.layout = "mono"
        if bitrate:
            stream.bit_rate = bitrate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate or rate)
        pcm = samples.reshape(1, -1)
        frames = [pcm[:, i : i + 1024] for i in range(0, pcm.shape[1], 1024)] + [None]
        for chunk in frames:
            frame = None
            if chunk is not None:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
                frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                container.mux(stream.encode(resampled))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def encode_video(images: list[Image.Image], fps: int = 2, audio: np.ndarray | None = None) -> bytes:
    """An MP4 (MPEG-4 part 2) showing each image for one frame, optionally with an AAC soundtrack."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 2_000_000
        sound = container.add_stream("aac", rate=44_100) if audio is not None else None
        if sound is not None:
            sound.layout = "mono"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode(None))
        if sound is not None and audio is not None:
            resampler = av.AudioResampler(format=sound.format.name, layout="mono", rate=44_100)
            pcm = audio.reshape(1, -1)
            for i in [*range(0, pcm.shape[1], 1024), None]:
                frame = None
                if i is not None:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i : i + 1024]), "flt", "mono")
                    frame.sample_rate = 44_100
                for resampled in resampler.resample(frame):
                    container.mux(sound.encode(resampled))
            container.mux(sound.encode(None))
    return buffer.getvalue()


def hue_shift(image: Image.Image, degrees: float) -> Image.Image:
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda value: (value + int(degrees * 256 / 360)) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def colour_grade(image: Image.Image) -> Image.Image:
    """A typical grade: +10 % brightness, −10 % contrast, hue +10°."""
    return hue_shift(ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.1)).enhance(0.9), 10)


def crop(image: Image.Image, fraction: float, side: str = "centre") -> Image.Image:
    """Cut `fraction` of the width and height: evenly around (centre), or from the left / top-left."""
    width, height = image.size
    dx, dy = round(width * fraction), round(height * fraction)
    if side == "left":
        return image.crop((dx, 0, width, height))
    if side == "top-left":
        return image.crop((dx, dy, width, height))
    return image.crop((dx // 2, dy // 2, width - (dx - dx // 2), height - (dy - dy // 2)))


# --- images ---------------------------------------------------------------------------------------

TRANSFORMS: list[tuple[str, Callable[[Image.Image], Image.Image]]] = [
    ("jpeg q70", lambda i: i),
    ("resize 50%", lambda i: i.resize((i.width // 2, i.height // 2))),
    ("crop 10% centre", lambda i: crop(i, 0.10)),
    ("crop 20% centre", lambda i: crop(i, 0.20)),
    ("crop 10% left", lambda i: crop(i, 0.10, "left")),
    ("crop 10% top-left", lambda i: crop(i, 0.10, "top-left")),
    ("brightness, contrast, hue", colour_grade),
    ("mirror", ImageOps.mirror),
    ("rotate 180", lambda i: i.rotate(180)),
    ("mirror + crop 10% + grade + resize", lambda i: colour_grade(crop(ImageOps.mirror(i), 0.10)).resize((480, 320))),
    ("pillarboxed in 1920x1080", lambda i: boxed(i, (1920, 1080))),
    ("letterboxed in 1024x1024", lambda i: boxed(i, (1024, 1024))),
]


def boxed(image: Image.Image, frame: tuple[int, int]) -> Image.Image:
    """The image scaled to fit `frame`, centred on black bars (letterbox or pillarbox)."""
    scale = min(frame[0] / image.width, frame[1] / image.height)
    inner = image.resize((round(image.width * scale), round(image.height * scale)))
    canvas = Image.new("RGB", frame, (0, 0, 0))
    canvas.paste(inner, ((frame[0] - inner.width) // 2, (frame[1] - inner.height) // 2))
    return canvas


def _best(query: bytes, recorded: bytes) -> int:
    q = fingerprint_media(query)
    r = fingerprint_media(recorded, recorded=True)
    assert q is not None and r is not None
    return min(pdq_distance(a.bits, b.bits) for a in q.images for b in r.images)


@pytest.mark.parametrize(("name", "transform"), TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_transformed_copy_stays_within_the_pdq_radius(name: str, transform: Callable, seed: int) -> None:
    """Saved as JPEG q70 after the transformation, the copy's dihedral hashes meet one of the recorded hashes."""
    original = make_image(seed)
    copy = encode_image(transform(original), "JPEG", quality=70)
    assert _best(copy, encode_image(original)) <= PDQ_THRESHOLD


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unrelated_images_are_far_apart(seed: int) -> None:
    """The closest distinct picture measured was 88 bits; a margin of ≥ 2× the radius is required here."""
    for other in range(10, 16):
        unrelated = encode_image(make_image(other), "JPEG", quality=70)
        assert _best(unrelated, encode_image(make_image(seed))) > 2 * PDQ_THRESHOLD


def test_recorded_and_query_sides() -> None:
    """Recorded: whole + 4 centre crops + 16 edge/corner crops; query: the 8 dihedral variants."""
    data = encode_image(make_image(1))
    recorded = fingerprint_media(data, recorded=True)
    query = fingerprint_media(data)
    assert recorded is not None and query is not None
    assert [h.variant for h in recorded.images][:5] == ["full", "crop 90%", "crop 80%", "crop 70%", "crop 60%"]
    assert len(recorded.images) == 21 and len(query.images) == 8
    assert [f.variant for f in recorded.features] == ["full"]
    assert [f.variant for f in query.features] == ["full", "flip"]
    assert all(f.count > 100 for f in recorded.features + query.features)
    assert {h.variant for h in query.images} >= {"full", "flip", "rot180"}
    assert all(len(h.bits) == 32 and h.quality >= 50 for h in recorded.images + query.images)


def test_output_fingerprint_holds_hashes_not_bytes() -> None:
    data = encode_image(make_image(4))
    item = OutputItem(data, "image", "image/png", "body.data[0].b64_json")
    fingerprint = fingerprint_output(item)
    assert fingerprint.kind == "image" and fingerprint.size == len(data) and fingerprint.media_type == "image/png"
    assert fingerprint.sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        fingerprint.sha256 = "0" * 64  # type: ignore[misc]
    stored = b"".join(h.bits for h in fingerprint.images)
    assert len(stored) == 21 * 32 and data[100:132] not in stored


# --- audio ----------------------------------------------------------------------------------------

REENCODES = [
    ("mp3 128k", dict(fmt="mp3", codec="libmp3lame", bitrate=128_000)),
    ("mp3 64k", dict(fmt="mp3", codec="libmp3lame", bitrate=64_000)),
    ("aac 96k adts", dict(fmt="adts", codec="aac", bitrate=96_000)),
    ("aac 48k m4a", dict(fmt="mp4", codec="aac", bitrate=48_000)),
    ("resampled to 22.05 kHz, aac", dict(fmt="mp4", codec="aac", out_rate=22_050, bitrate=64_000)),
    ("resampled to 8 kHz, wav", dict(fmt="wav", codec="pcm_s16le", out_rate=8_000)),
]


@pytest.fixture(scope="module")
def recorded_audio() -> dict[int, AudioFingerprint]:
    out = {}
    for seed in (1, 2):
        fingerprint = fingerprint_media(encode_audio(make_audio(seed), "wav", "pcm_s16le"), recorded=True)
        assert fingerprint is not None and fingerprint.audio is not None and fingerprint.kind == "audio"
        out[seed] = fingerprint.audio
    return out


@pytest.mark.parametrize(("name", "options"), REENCODES, ids=[r[0] for r in REENCODES])
@pytest.mark.parametrize("seed", [1, 2])
def test_reencoded_audio_keeps_a_low_bit_error_rate(
    name: str, options: dict, seed: int, recorded_audio: dict[int, AudioFingerprint]
) -> None:
    query = fingerprint_media(encode_audio(make_audio(seed), **options))
    assert query is not None and query.audio is not None
    alignment = audio_distance(query.audio, recorded_audio[seed])
    assert alignment is not None and alignment.ber <= AUDIO_THRESHOLD * 2 / 3
    assert abs(alignment.offset_seconds) < 0.2


def test_an_excerpt_is_found_at_its_offset(recorded_audio: dict[int, AudioFingerprint]) -> None:
    samples = make_audio(1)
    excerpt = encode_audio(samples[int(3.3 * 44_100) : int(7.3 * 44_100)], "mp3", "libmp3lame", bitrate=64_000)
    query = fingerprint_media(excerpt)
    assert query is not None and query.audio is not None
    alignment = audio_distance(query.audio, recorded_audio[1])
    assert alignment is not None and alignment.ber <= AUDIO_THRESHOLD * 2 / 3
    assert alignment.offset_seconds == pytest.approx(3.3, abs=0.1)


def test_unrelated_audio_is_near_half_the_bits(recorded_audio: dict[int, AudioFingerprint]) -> None:
    for other in range(10, 16):
        query = fingerprint_media(encode_audio(make_audio(other), "mp3", "libmp3lame", bitrate=64_000))
        assert query is not None and query.audio is not None
        for stored in recorded_audio.values():
            alignment = audio_distance(query.audio, stored)
            assert alignment is None or alignment.ber > AUDIO_THRESHOLD + 0.05


def test_silence_matches_nothing() -> None:
    silence = fingerprint_audio(np.zeros(16_000 * 5, np.float32))
    assert audio_distance(silence, silence) is None


def test_streaming_equals_one_shot_and_round_trips() -> None:
    samples = np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 0.1
    streaming = AudioFingerprinter()
    for start in range(0, len(samples), 1000):
        streaming.update(samples[start : start + 1000])
    whole = fingerprint_audio(samples)
    assert streaming.finish() == whole
    assert AudioFingerprint.from_bytes(whole.to_bytes()) == whole
    assert whole.count == (len(samples) - 4096) // 256 + 1


# --- video ----------------------------------------------------------------------------------------


def test_video_frames_and_soundtrack_are_fingerprinted() -> None:
    """Frames sampled by time (PDQ each), the soundtrack by the audio fingerprint; a re-encode still meets both."""
    images = [make_image(seed, (320, 240)) for seed in (1, 2, 3, 4)]
    sound = make_audio(5, seconds=2.0)
    video = encode_video(images, fps=2, audio=sound)
    limits = ContentLimits(video_sample_seconds=0.5)
    recorded = fingerprint_output(OutputItem(video, "video", "video/mp4", "body"), limits)
    assert recorded.kind == "video" and recorded.audio is not None
    wholes = [h for h in recorded.images if h.variant.endswith(" full")]
    assert [h.variant for h in wholes] == [f"frame {n} @{n / 2:.1f}s full" for n in range(4)]
    assert len(recorded.images) == 4 * 21  # each sampled frame with its crop grid
    query = fingerprint_media(encode_video([colour_grade(i) for i in reversed(images)], fps=2), limits=limits)
    assert query is not None and query.kind == "video" and query.audio is None
    for frame in range(4):
        own = [h for h in query.images if h.variant.startswith(f"frame {3 - frame} ")]
        assert min(pdq_distance(a.bits, wholes[frame].bits) for a in own) <= PDQ_THRESHOLD


@pytest.mark.parametrize(
    ("spec", "kind", "frames"),
    [
        pytest.param(("webm", None, "libopus", 48_000), "audio", 0, id="webm voice clip: audio"),
        pytest.param(("ogg", "libvpx", None, 0), "video", 2, id="ogg carrying vp8: video"),
        pytest.param(("ogg", None, "libopus", 48_000), "audio", 0, id="ogg opus: audio"),
    ],
)
def test_audio_or_video_by_the_streams_in_bytes_and_files(tmp_path, spec: tuple, kind: str, frames: int) -> None:
    """`provenance scan` fingerprints what a file holds, whatever its magic says (WebM is video by its
    magic, Ogg audio)."""
    container, video, audio, rate = spec
    data = muxed(container, video, audio, rate=rate or 16_000, seconds=1.0, size=(320, 240))
    path = tmp_path / "clip"
    path.write_bytes(data)
    limits = ContentLimits(video_sample_seconds=0.5)
    for found in (fingerprint_media(data, limits=limits), fingerprint_file(path, limits)):
        assert found is not None and found.kind == kind
        assert len({h.variant.split(" @")[0] for h in found.images}) == frames
        assert (found.audio is not None) == (audio is not None)


def test_borders_are_trimmed_only_when_there_are_borders() -> None:
    picture = make_image(3, (400, 300))
    assert trim_borders(picture) is None
    inside = trim_borders(boxed(picture, (800, 800)))
    assert inside is not None and abs(inside.width / inside.height - 400 / 300) < 0.02


def test_non_media_is_not_fingerprinted() -> None:
    assert fingerprint_media(b"%PDF-1.7 ...") is None
    assert fingerprint_media(b"plain text, not media at all") is None


def test_a_tga_file_is_recognised_by_its_footer_however_large(tmp_path: Path) -> None:
    """TGA 2.0 names itself in its last 18 bytes: a file scan reads them, not only the first 4 KB."""
    picture = make_image(7, (400, 300))
    buffer = io.BytesIO()
    picture.save(buffer, "TGA")
    path = tmp_path / "frame.tga"
    path.write_bytes(buffer.getvalue())
    assert len(buffer.getvalue()) > 4096
    found = fingerprint_file(path)
    assert found is not None and found.kind == "image" and found.media_type == "image/x-tga"
