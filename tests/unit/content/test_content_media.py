"""Decoding for detectors: every image frame upright and opaque, audio as 16 kHz PCM, video samples."""

from __future__ import annotations

import io

import numpy as np
import pytest
from content_samples import animated, encoded_audio, image, jpeg_rotated, mp4, muxed, pcm16, png, wav
from PIL import Image, ImageOps

from gateway.content import (
    ContentLimits,
    MediaItem,
    RequestContent,
    decode_audio,
    decode_image_frames,
    extract_inputs,
    sample_video_frames,
)
from gateway.errors import TooLargeError, UninspectableError

LIMITS = ContentLimits()


def item_of(data: bytes, declared: str = "") -> MediaItem:
    inputs = extract_inputs(RequestContent("POST", "/", body=data, content_type="application/octet-stream"), LIMITS)
    (item,) = inputs.media
    return item


def tiff_pages(pages: int) -> bytes:
    pictures = [Image.new("RGB", (8, 8), (i * 50, 0, 0)) for i in range(pages)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "TIFF", save_all=True, append_images=pictures[1:])
    return buffer.getvalue()


IMAGES = [
    pytest.param(png(), "image/png", 1, id="png"),
    pytest.param(image("JPEG"), "image/jpeg", 1, id="jpeg"),
    pytest.param(image("WEBP"), "image/webp", 1, id="webp"),
    pytest.param(image("BMP"), "image/bmp", 1, id="bmp"),
    pytest.param(image("AVIF"), "image/avif", 1, id="avif"),
    pytest.param(image("HEIF"), "image/heic", 1, id="heic"),
    pytest.param(animated("GIF", 3), "image/gif", 3, id="gif-every-frame"),
    pytest.param(animated("PNG", 3), "image/png", 3, id="apng-every-frame"),
    pytest.param(animated("WEBP", 3), "image/webp", 3, id="webp-every-frame"),
    pytest.param(tiff_pages(4), "image/tiff", 4, id="tiff-every-page"),
    pytest.param(image("ICO", (32, 32)), "image/vnd.microsoft.icon", 1, id="ico"),
    pytest.param(image("PPM"), "image/x-portable-anymap", 1, id="ppm"),
    pytest.param(image("TGA"), "image/x-tga", 1, id="tga-2.0"),
    pytest.param(image("QOI"), "image/qoi", 1, id="qoi"),
    pytest.param(image("DDS"), "image/vnd.ms-dds", 1, id="dds"),
    pytest.param(image("PCX"), "image/vnd.zbrush.pcx", 1, id="pcx"),
]


@pytest.mark.parametrize(("data", "sniffed", "frames"), IMAGES)
def test_every_frame_of_every_image_format(data: bytes, sniffed: str, frames: int) -> None:
    item = item_of(data)
    assert item.sniffed_type == sniffed
    decoded = decode_image_frames(item, LIMITS)
    assert len(decoded) == frames
    assert {frame.mode for frame in decoded} == {"RGB"}


CONTAINERS = [
    # (container, video codec, audio codec, audio rate) -> the kind its streams make it, the sniffed type
    pytest.param(("webm", None, "libopus", 48_000), "audio", "video/webm", id="webm voice clip (MediaRecorder)"),
    pytest.param(("matroska", None, "flac", 16_000), "audio", "video/webm", id="matroska audio only"),
    pytest.param(("webm", "libvpx", None, 0), "video", "video/webm", id="webm video"),
    pytest.param(("ogg", "libvpx", None, 0), "video", "audio/ogg", id="ogg carrying vp8 video"),
    pytest.param(("ogg", None, "libopus", 48_000), "audio", "audio/ogg", id="ogg opus"),
    pytest.param(("flv", "flv", None, 0), "video", "video/x-flv", id="flv"),
    pytest.param(("mpegts", "mpeg2video", "mp2", 48_000), "video", "video/mp2t", id="mpeg transport stream"),
    pytest.param(("vob", "mpeg2video", None, 0), "video", "video/mpeg", id="mpeg program stream"),
    pytest.param(("asf", "wmv2", None, 0), "video", "video/x-ms-asf", id="asf/wmv"),
    pytest.param(("au", None, "pcm_s16be", 16_000), "audio", "audio/basic", id="sun au"),
    pytest.param(("caf", None, "pcm_s16le", 16_000), "audio", "audio/x-caf", id="core audio format"),
    pytest.param(("avi", "mpeg4", "pcm_s16le", 16_000), "video", "video/x-msvideo", id="avi with sound"),
]


@pytest.mark.parametrize(("spec", "kind", "sniffed"), CONTAINERS)
def test_audio_or_video_is_decided_by_the_streams(spec: tuple, kind: str, sniffed: str) -> None:
    """The signature cannot tell a voice clip in WebM from a video, or video in Ogg from audio: the
    streams decide. Audio is decoded for the voice check; video frames are sampled for the face and
    image checks (and a video's sound for the voice check)."""
    container, video, audio, rate = spec
    item = item_of(muxed(container, video, audio, rate=rate or 16_000))
    assert (item.kind, item.sniffed_type) == (kind, sniffed)
    if video is not None:
        assert len(sample_video_frames(item, LIMITS)) >= 1
    if audio is not None:
        assert len(decode_audio(item, LIMITS)) > 0


@pytest.mark.parametrize(
    ("data", "media"),
    [
        pytest.param(b"P3\n# two pixels\n2 1\n255\n255 0 0 0 255 0\n", ["image/x-portable-anymap"], id="plain ppm"),
        pytest.param(b"P1 2 2\n0 1\n1 0\n", ["image/x-portable-anymap"], id="plain pbm"),
        pytest.param(b"P1 12 15 notes for the scene", [], id="text starting like a pbm header"),
        pytest.param(b"P3 100 200 is the plan\n", [], id="text starting like a ppm header"),
    ],
)
def test_plain_netpbm_is_an_image_and_look_alike_text_stays_text(data: bytes, media: list[str]) -> None:
    inputs = extract_inputs(RequestContent("POST", "/", body=data, content_type="application/octet-stream"), LIMITS)
    assert [item.sniffed_type for item in inputs.media] == media
    assert len(inputs.texts) == (0 if media else 1)


def test_exif_orientation_is_applied() -> None:
    """A 20×10 JPEG tagged 'rotate 90°' is seen upright, 10×20, as a viewer would show it."""
    (frame,) = decode_image_frames(item_of(jpeg_rotated()), LIMITS)
    assert frame.size == (10, 20)


def test_alpha_is_composited_onto_white() -> None:
    """A fully transparent pixel is white, not the black (or hidden colour) under it."""
    (frame,) = decode_image_frames(item_of(png(color=(0, 0, 0, 0))), LIMITS)
    assert frame.getpixel((0, 0)) == (255, 255, 255)


def test_too_many_frames_is_too_large() -> None:
    item = item_of(animated("GIF", 5))
    with pytest.raises(TooLargeError):
        decode_image_frames(item, ContentLimits(max_frames=4))


@pytest.mark.parametrize("kind", ["mp3", "ogg", "flac", "m4a"])
def test_compressed_audio_decodes_to_16k_mono_pcm(kind: str) -> None:
    samples = decode_audio(item_of(encoded_audio(kind, seconds=1.0)), LIMITS)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 15_000 <= len(samples) <= 17_500
    assert 0.1 < float(np.abs(samples).max()) <= 1.0


def test_wav_decodes_exactly() -> None:
    samples = decode_audio(item_of(wav(seconds=0.5)), LIMITS)
    assert len(samples) == 8_000


def test_raw_pcm_uses_the_protocol_rate() -> None:
    """Raw PCM16 at 24 kHz (OpenAI Realtime) is resampled to 16 kHz."""
    item = MediaItem(pcm16(1.0, 24_000), "audio", "audio/pcm", "audio/pcm;rate=24000", "ws.audio")
    assert 15_500 <= len(decode_audio(item, LIMITS)) <= 16_500


def test_audio_longer_than_the_limit_is_too_large() -> None:
    with pytest.raises(TooLargeError):
        decode_audio(item_of(wav(seconds=2.0)), ContentLimits(max_audio_seconds=1.0))


def test_video_frames_are_sampled_in_time() -> None:
    frames = sample_video_frames(item_of(mp4(seconds=3.0, fps=10)), ContentLimits(video_sample_seconds=1.0))
    assert len(frames) == 3
    assert {frame.size for frame in frames} == {(64, 48)}


def test_long_video_widens_the_interval_instead_of_failing() -> None:
    frames = sample_video_frames(item_of(mp4(seconds=3.0, fps=10)), ContentLimits(max_frames=2))
    assert 1 <= len(frames) <= 2


@pytest.mark.parametrize(
    ("decoder", "data"),
    [
        pytest.param(decode_image_frames, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, id="png-header-only"),
        pytest.param(decode_audio, b"RIFF\x00\x00\x00\x00WAVEjunk", id="wav-header-only"),
        pytest.param(sample_video_frames, wav(0.1), id="video-without-video-stream"),
    ],
)
def test_undecodable_media_is_uninspectable(decoder, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UninspectableError):
        decoder(MediaItem(data, "other", "application/octet-stream", "", "body"), LIMITS)


def _composited_reference(frame: Image.Image) -> Image.Image:
    """The plain definition of a flattened frame: upright, every mode composited onto white."""
    upright = ImageOps.exif_transpose(frame.copy())
    if upright.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        upright = upright.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    rgba = upright.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def _frames_in_every_mode() -> dict[str, Image.Image]:
    rng = np.random.default_rng(7)
    base = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    transparent = base.convert("P")
    transparent.info["transparency"] = 5
    turned = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    base.save(turned, "JPEG", exif=exif)
    return {
        "RGB": base, "L": base.convert("L"), "1": base.convert("1"), "P": base.convert("P"),
        "P with transparency": transparent, "RGBA": base.convert("RGBA"), "LA": base.convert("LA"),
        "CMYK": base.convert("CMYK"), "I;16": Image.fromarray(rng.integers(0, 65535, (20, 30), dtype=np.uint16)),
        "JPEG turned by EXIF": Image.open(io.BytesIO(turned.getvalue())),
    }  # fmt: skip


@pytest.mark.parametrize(("mode", "frame"), list(_frames_in_every_mode().items()))
def test_flattening_skips_the_composite_only_where_it_changes_nothing(mode: str, frame: Image.Image) -> None:
    """Opaque frames skip the RGBA composite (a decode-time saving); the pixels are exactly the composite's."""
    from gateway.content.image import _flattened

    expected = _composited_reference(frame)
    got = _flattened(frame)
    assert got.mode == "RGB" and got.size == expected.size
    assert got.tobytes() == expected.tobytes()
