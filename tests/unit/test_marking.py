"""gateway.marking: an "AI-generated, temporary" marker inserted into PNG/JPEG metadata, pixels untouched."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gateway.marking import (
    DIGITAL_SOURCE_TYPE,
    MARKER_KEYWORD,
    MARKER_TEXT,
    has_c2pa_manifest,
    mark_image,
    mark_response,
    read_marker,
)

TS = 1_790_000_000.0


def _picture(fmt: str, **options: object) -> bytes:
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


CASES = [
    ("png", _picture("PNG"), ("png tEXt", "png iTXt XMP")),
    ("jpeg (JFIF)", _picture("JPEG", quality=80), ("jpeg APP1 XMP", "jpeg COM")),
    ("jpeg with Exif", _picture("JPEG", quality=80, exif=Image.Exif()), ("jpeg APP1 XMP", "jpeg COM")),
]


@pytest.mark.parametrize(("name", "data", "how"), CASES, ids=[c[0] for c in CASES])
def test_marked_images_keep_their_pixels_and_say_what_they_are(name: str, data: bytes, how: tuple[str, ...]) -> None:
    """The marker is added as metadata; the decoded pixels are identical and the compressed data is copied."""
    result = mark_image(data, event_id="evt_123", tool="openai-api", ts=TS)
    assert result.marked and result.how == how
    assert len(result.data) > len(data)
    assert np.array_equal(_pixels(result.data), _pixels(data))
    marker = read_marker(result.data)
    assert marker is not None
    assert (marker.event_id, marker.tool, marker.generated) == ("evt_123", "openai-api", "2026-09-21T14:13:20Z")
    assert MARKER_TEXT in marker.text
    assert read_marker(data) is None


def test_png_marker_is_visible_to_ordinary_tools() -> None:
    """Pillow (like exiftool) reads the tEXt keyword and the XMP packet with the IPTC digital source type."""
    result = mark_image(_picture("PNG"), event_id="evt_1", tool="gemini-api", ts=TS)
    with Image.open(io.BytesIO(result.data)) as image:
        image.load()
        assert MARKER_TEXT in image.text[MARKER_KEYWORD]
        assert DIGITAL_SOURCE_TYPE in image.info["XML:com.adobe.xmp"]


def test_jpeg_xmp_is_visible_to_ordinary_tools() -> None:
    result = mark_image(_picture("JPEG"), event_id="evt_1", tool="stability-api", ts=TS)
    with Image.open(io.BytesIO(result.data)) as image:
        assert DIGITAL_SOURCE_TYPE.encode() in image.info["xmp"]
        assert MARKER_TEXT.encode() in image.info["comment"]


def test_marking_is_idempotent() -> None:
    once = mark_image(_picture("PNG"), event_id="evt_1", tool="t", ts=TS).data
    again = mark_image(once, event_id="evt_2", tool="t", ts=TS)
    assert not again.marked and again.data == once


def test_an_existing_xmp_packet_is_kept() -> None:
    """A provider's own XMP is not replaced (two packets are invalid); the text marker is still added."""
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG", pnginfo=info)
    result = mark_image(buffer.getvalue(), event_id="evt_1", tool="t", ts=TS)
    assert result.how == ("png tEXt",)
    assert read_marker(result.data) is not None


@pytest.mark.parametrize(
    "data",
    [
        _picture("WEBP"),
        _picture("GIF"),
        b"ID3\x04" + b"\x00" * 64,
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"\xff\xd8\xff\xe0\x00",
    ],
    ids=["webp", "gif", "mp3", "truncated png", "truncated jpeg"],
)
def test_other_or_broken_files_come_back_unchanged(data: bytes) -> None:
    result = mark_image(data, event_id="evt_1", tool="t", ts=TS)
    assert not result.marked and result.data == data


def test_values_are_escaped_in_the_xmp() -> None:
    """An odd tool name cannot break out of its XML attribute."""
    result = mark_image(_picture("PNG"), event_id="evt_1", tool='a"b<c>&d', ts=TS)
    marker = read_marker(result.data)
    assert marker is not None and marker.tool == "a'b<c>&d"


def _with_png_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:33] + chunk + data[33:]  # after the signature (8) and IHDR (25)


def _with_jpeg_app11(data: bytes, payload: bytes) -> bytes:
    return data[:2] + b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


@pytest.mark.parametrize(
    "data",
    [
        _with_png_chunk(_picture("PNG"), b"caBX", b"\x00\x00\x00\x10jumb\x00\x00\x00\x08jumdc2pa"),
        _with_jpeg_app11(_picture("JPEG"), b"JP\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10jumbjumdc2pa"),
    ],
    ids=["png caBX", "jpeg APP11"],
)
def test_a_provider_c2pa_manifest_is_never_broken(data: bytes) -> None:
    """Content credentials bind the file's bytes: a file carrying one is returned untouched."""
    assert has_c2pa_manifest(data)
    result = mark_image(data, event_id="evt_1", tool="openai-api", ts=TS)
    assert not result.marked and result.data == data and "c2pa" in result.how[0]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_mark_response_marks_each_image_where_it_sits() -> None:
    """OpenAI b64_json and data: URLs are re-encoded in place; the items returned are what the client gets."""
    png, jpeg = _picture("PNG"), _picture("JPEG")
    body = json.dumps({"created": 1, "data": [
        {"b64_json": _b64(png), "revised_prompt": "a cat"},
        {"url": "data:image/jpeg;base64," + _b64(jpeg)},
    ]}).encode()  # fmt: skip
    result = mark_response("application/json", body, "openai", event_id="evt_9", tool="openai-api", ts=TS)
    assert result.marked == 2
    document = json.loads(result.body)
    assert document["data"][0]["revised_prompt"] == "a cat"
    assert document["data"][1]["url"].startswith("data:image/jpeg;base64,")
    first = base64.b64decode(document["data"][0]["b64_json"])
    second = base64.b64decode(document["data"][1]["url"].split(",", 1)[1])
    assert [item.data for item in result.items] == [first, second]
    assert all(read_marker(data).event_id == "evt_9" for data in (first, second))  # type: ignore[union-attr]
    assert np.array_equal(_pixels(first), _pixels(png))


def test_mark_response_gemini_inline_data_and_raw_bodies() -> None:
    png = _picture("PNG")
    body = json.dumps({"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png",
                                                                             "data": _b64(png)}}]}}]}).encode()
    result = mark_response("application/json", body, "gemini", event_id="evt_1", tool="gemini-api", ts=TS)
    inline = json.loads(result.body)["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert inline["mimeType"] == "image/png" and read_marker(base64.b64decode(inline["data"])) is not None
    raw = mark_response("image/png", png, "stability", event_id="evt_2", tool="stability-api", ts=TS)
    assert raw.marked == 1 and raw.body == raw.items[0].data and read_marker(raw.body) is not None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"data": [{"b64_json": _b64(_picture("WEBP"))}]}).encode()),
        ("text/event-stream", b"data: " + json.dumps({"b64_json": _b64(_picture("PNG"))}).encode() + b"\n\n"),
        ("application/json", json.dumps({"text": "inline " + _b64(_picture("PNG"))}).encode()),
        ("application/json", json.dumps({"text": _b64(_picture("PNG")) + " and some words"}).encode()),
        ("application/json", b'{"choices": []}'),
    ],
    ids=["webp", "sse stream", "base64 inside text", "base64 starting a text", "no media"],
)
def test_mark_response_leaves_what_it_cannot_mark_byte_for_byte(content_type: str, body: bytes) -> None:
    result = mark_response(content_type, body, "openai", event_id="evt_1", tool="t", ts=TS)
    assert result.marked == 0 and result.body == body
