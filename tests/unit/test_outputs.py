"""gateway.outputs: generated media found in every provider's response shape, and in SSE streams split anywhere."""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import sys
import wave
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard
from PIL import Image

from gateway.content.limits import ContentLimits
from gateway.errors import TooLargeError, UninspectableError
from gateway.outputs import OutputSSEScanner, extract_output_urls, extract_outputs

sys.path.insert(0, str(Path(__file__).resolve().parent / "content"))
from content_samples import muxed


def _png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "blue").save(buffer, "JPEG")
    return buffer.getvalue()


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"".join(int(8000 * math.sin(i / 5)).to_bytes(2, "little", signed=True) for i in range(800)))
    return buffer.getvalue()


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
PNG, JPEG, WAV = _png(), _jpeg(), _wav()
WEBM_VOICE = muxed("webm", audio="libopus", rate=48_000)
OGG_VIDEO = muxed("ogg", video="libvpx")
PCM = bytes(range(256)) * 8


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# (case, content type, body, provider format) → [(location, kind, media type)]
CASES = [
    (
        "openai images b64_json",
        "application/json",
        body({"created": 1, "data": [{"b64_json": b64(PNG), "revised_prompt": "a cat"}, {"b64_json": b64(JPEG)}]}),
        "openai",
        [("body.data[0].b64_json", "image", "image/png"), ("body.data[1].b64_json", "image", "image/jpeg")],
    ),
    (
        "openai images data URL",
        "application/json",
        body({"data": [{"url": "data:image/png;base64," + b64(PNG)}]}),
        "openai",
        [("body.data[0].url", "image", "image/png")],
    ),
    (
        "openai responses image_generation_call",
        "application/json",
        body({"output": [
            {"type": "message", "content": [{"type": "output_text", "text": "Here it is."}]},
            {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": b64(PNG)},
        ]}),
        "openai",
        [("body.output[1].result", "image", "image/png")],
    ),
    (
        "openai chat audio (raw pcm)",
        "application/json",
        body({"choices": [{"message": {"audio": {"id": "a1", "data": b64(PCM), "transcript": "hi"}}}]}),
        "openai",
        [("body.choices[0].message.audio.data", "audio", "audio/pcm")],
    ),
    (
        "gemini inlineData (camelCase)",
        "application/json",
        body({"candidates": [{"content": {"parts": [
            {"text": "Here you go"},
            {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}},
        ]}}]}),
        "gemini",
        [("body.candidates[0].content.parts[1].inlineData.data", "image", "image/png")],
    ),
    (
        "gemini inline_data (snake_case), audio by declared type",
        "application/json",
        body({"candidates": [{"content": {"parts": [
            {"inline_data": {"mime_type": "audio/L16;codec=pcm;rate=24000", "data": b64(PCM)}},
        ]}}]}),
        "gemini",
        [("body.candidates[0].content.parts[0].inline_data.data", "audio", "audio/l16;codec=pcm;rate=24000")],
    ),
    (
        "gemini streamed JSON array",
        "application/json",
        body([{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": b64(PNG)}}]}}]}]),
        "gemini",
        [("body[0].candidates[0].content.parts[0].inlineData.data", "image", "image/png")],
    ),
    (
        "imagen predictions",
        "application/json",
        body({"predictions": [
            {"bytesBase64Encoded": b64(PNG), "mimeType": "image/png"},
            {"bytesBase64Encoded": b64(JPEG)},
        ]}),
        "gemini",
        [("body.predictions[0].bytesBase64Encoded", "image", "image/png"),
         ("body.predictions[1].bytesBase64Encoded", "image", "image/jpeg")],
    ),
    (
        "elevenlabs with-timestamps audio_base64 (mp3)",
        "application/json",
        body({"audio_base64": b64(MP3), "alignment": {"characters": ["h", "i"]}}),
        "elevenlabs",
        [("body.audio_base64", "audio", "audio/mpeg")],
    ),
    (
        "elevenlabs audio_base64 (pcm_16000)",
        "application/json",
        body({"audio_base64": b64(PCM), "alignment": None}),
        "elevenlabs",
        [("body.audio_base64", "audio", "audio/pcm")],
    ),
    ("elevenlabs raw mp3 body", "audio/mpeg", MP3, "elevenlabs", [("body", "audio", "audio/mpeg")]),
    ("elevenlabs raw pcm body", "audio/pcm", PCM, "elevenlabs", [("body", "audio", "audio/pcm")]),
    ("raw wav body", "application/octet-stream", WAV, "generic", [("body", "audio", "audio/wav")]),
    ("raw webm voice (opus, no picture): audio", "audio/webm", WEBM_VOICE, "generic",
     [("body", "audio", "video/webm")]),
    ("raw ogg carrying vp8 video: video", "audio/ogg", OGG_VIDEO, "generic", [("body", "video", "audio/ogg")]),
    ("webm voice as base64 under an audio key", "application/json", body({"audio": {"data": b64(WEBM_VOICE)}}),
     "openai", [("body.audio.data", "audio", "video/webm")]),
    ("stability raw png body", "image/png", PNG, "stability", [("body", "image", "image/png")]),
    (
        "stability json image",
        "application/json",
        body({"image": b64(PNG), "finish_reason": "SUCCESS", "seed": 42}),
        "stability",
        [("body.image", "image", "image/png")],
    ),
    (
        "stability v1 artifacts",
        "application/json",
        body({"artifacts": [{"base64": b64(PNG), "seed": 1, "finishReason": "SUCCESS"}]}),
        "stability",
        [("body.artifacts[0].base64", "image", "image/png")],
    ),
    (
        "generic base64 run inside text",
        "application/json",
        body({"choices": [{"message": {"content": "see attached: " + b64(PNG) + " enjoy"}}]}),
        "mistral",
        [("body.choices[0].message.content@14", "image", "image/png")],
    ),
    (
        "no media: a chat answer",
        "application/json",
        body({"choices": [{"message": {"content": "A short answer, nothing generated."}}], "result": "ok-not-b64!"}),
        "openai",
        [],
    ),
    (
        "a base64-looking non-media string under a media key",
        "application/json",
        body({"result": "abcdefghijklmnopq", "image": "VGhpcyBpcyBqdXN0IHRleHQsIG5vdCBhbiBpbWFnZS4="}),
        "openai",
        [],
    ),
    ("plain text body", "text/plain", b"hello " * 10, "generic", []),
]


@pytest.mark.parametrize(("case", "content_type", "data", "provider", "expected"), CASES, ids=[c[0] for c in CASES])
def test_extracts_every_generated_item_with_its_location(
    case: str, content_type: str, data: bytes, provider: str, expected: list[tuple[str, str, str]]
) -> None:
    items = extract_outputs(content_type, data, provider)
    assert [(i.location, i.kind, i.media_type) for i in items] == expected


def test_items_carry_the_decoded_bytes_and_convert_to_media_items() -> None:
    [item] = extract_outputs("application/json", body({"data": [{"b64_json": b64(PNG)}]}), "openai")
    assert item.data == PNG and item.size == len(PNG) and not item.partial
    media = item.as_media_item()
    assert (media.data, media.kind, media.sniffed_type, media.location) == (PNG, "image", "image/png", item.location)
    assert b64(PNG)[:20] not in repr(item)


def test_media_returned_as_links_is_listed_separately() -> None:
    """dall-e-2 `url` outputs and async job results are references to log (or fetch), not bytes."""
    data = body({"data": [{"url": "https://oaidalleapiprodscus.blob.core.windows.net/private/img.png?sig=x"}],
                 "output": ["https://replicate.delivery/xyz/out-0.webp"], "text": "see https://example.com/x"})
    urls = extract_output_urls("application/json", data, "openai")
    assert [(u.location, u.url.split("?")[0]) for u in urls] == [
        ("body.data[0].url", "https://oaidalleapiprodscus.blob.core.windows.net/private/img.png"),
        ("body.output[0]", "https://replicate.delivery/xyz/out-0.webp"),
    ]
    assert extract_outputs("application/json", data, "openai") == []


def test_malformed_json_fails_closed() -> None:
    with pytest.raises(UninspectableError):
        extract_outputs("application/json", b'{"data": [', "openai")


def test_base64_past_the_limit_is_too_large() -> None:
    limits = ContentLimits(max_base64_bytes=64)
    with pytest.raises(TooLargeError):
        extract_outputs("application/json", body({"data": [{"b64_json": b64(PNG)}]}), "openai", limits)


# --- SSE ------------------------------------------------------------------------------------------


def _event(name: str | None, value: object) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(value).encode() + b"\n\n"


IMAGE_STREAM = b"".join([
    b": keep-alive\n\n",
    _event("image_generation.partial_image", {"type": "image_generation.partial_image", "b64_json": b64(JPEG),
                                              "partial_image_index": 0}),
    _event("image_generation.completed", {"type": "image_generation.completed", "b64_json": b64(PNG)}),
])
RESPONSES_STREAM = b"".join([
    _event("response.created", {"type": "response.created", "response": {"id": "r1"}}),
    _event("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Drawing"}),
    _event("response.image_generation_call.partial_image",
           {"type": "response.image_generation_call.partial_image", "partial_image_b64": b64(JPEG)}),
    _event("response.output_item.done",
           {"type": "response.output_item.done", "item": {"type": "image_generation_call", "result": b64(PNG)}}),
    _event("response.completed", {"type": "response.completed"}),
])
GEMINI_STREAM = b"".join([
    _event(None, {"candidates": [{"content": {"parts": [{"text": "Here"}]}}]}),
    _event(None, {"candidates": [{"content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}},
    ]}}]}),
])
CHAT_STREAM = b"".join(
    [_event(None, {"choices": [{"delta": {"content": f"word {i} "}}]}) for i in range(50)] + [b"data: [DONE]\n\n"]
)

STREAMS = [
    ("openai images stream", IMAGE_STREAM, [("image/jpeg", True), ("image/png", False)]),
    ("responses stream", RESPONSES_STREAM, [("image/jpeg", True), ("image/png", False)]),
    ("gemini alt=sse", GEMINI_STREAM, [("image/png", False)]),
    ("chat text stream", CHAT_STREAM, []),
]


@pytest.mark.parametrize("line_ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("chunk_size", [1, 7, 100, 1 << 20], ids=["1", "7", "100", "whole"])
@pytest.mark.parametrize(("case", "stream", "expected"), STREAMS, ids=[s[0] for s in STREAMS])
def test_sse_scanner_finds_images_whatever_the_chunking(
    case: str, stream: bytes, expected: list[tuple[str, bool]], chunk_size: int, line_ending: bytes
) -> None:
    """Events split anywhere (inside a CRLF too) give the same items, complete images and partial previews."""
    data = stream.replace(b"\n", line_ending)
    scanner = OutputSSEScanner("openai")
    found = []
    for start in range(0, len(data), chunk_size):
        found += scanner.feed(data[start : start + chunk_size])
    found += scanner.close()
    assert [(i.media_type, i.partial) for i in found] == expected
    assert all(i.location.startswith("sse[") for i in found)


def test_sse_scanner_reports_an_image_as_soon_as_its_event_ends() -> None:
    scanner = OutputSSEScanner("openai")
    completed = _event("image_generation.completed", {"type": "image_generation.completed", "b64_json": b64(PNG)})
    assert scanner.feed(completed[:-1]) == []
    [item] = scanner.feed(completed[-1:])
    assert item.data == PNG and item.location == "sse[0].data.b64_json"


def test_sse_scanner_dispatches_a_last_event_without_its_blank_line() -> None:
    scanner = OutputSSEScanner("openai")
    event = _event("image_generation.completed", {"b64_json": b64(PNG)}).rstrip(b"\n")
    assert scanner.feed(event) == []
    assert [i.media_type for i in scanner.close()] == ["image/png"]


def test_sse_scanner_does_not_copy_the_chunks_it_is_fed() -> None:
    """The caller forwards its own bytes: feeding must not alter them."""
    chunk = bytearray(IMAGE_STREAM)
    OutputSSEScanner("openai").feed(bytes(chunk))
    assert bytes(chunk) == IMAGE_STREAM


def test_sse_scanner_refuses_an_endless_event() -> None:
    scanner = OutputSSEScanner("openai", ContentLimits(max_base64_bytes=1024))
    with pytest.raises(TooLargeError):
        for _ in range(100):
            scanner.feed(b"data: " + b"A" * 1000 + b"\n")


def test_whole_sse_bodies_go_through_the_scanner() -> None:
    items = extract_outputs("text/event-stream; charset=utf-8", IMAGE_STREAM, "openai")
    assert [i.media_type for i in items] == ["image/jpeg", "image/png"]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_sse_scanner_decompresses_its_copy_of_a_compressed_stream(coding: str) -> None:
    """mitmproxy's stream callable sees wire bytes; with the Content-Encoding the scanner still finds images."""
    compressors = {
        "gzip": lambda data: gzip.compress(data),
        "deflate": lambda data: zlib.compress(data),
        "br": lambda data: brotli.compress(data),
        "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    }
    wire = compressors[coding](IMAGE_STREAM)
    scanner = OutputSSEScanner("openai", content_encoding=coding)
    found = []
    for start in range(0, len(wire), 97):
        found += scanner.feed(wire[start : start + 97])
    found += scanner.close()
    assert [i.media_type for i in found] == ["image/jpeg", "image/png"]


def test_sse_scanner_refuses_a_corrupt_compressed_stream() -> None:
    with pytest.raises(UninspectableError):
        OutputSSEScanner("openai", content_encoding="gzip").feed(b"not gzip at all")
    with pytest.raises(UninspectableError):
        OutputSSEScanner("openai", content_encoding="compress")
