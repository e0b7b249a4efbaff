"""Property-based fuzzing of every decoder: it returns Inputs (or frames, or PCM) or raises the
gateway's own InspectionError, never anything else, and never hangs (each example has a deadline).

Errors from our own code surface as UninspectableError marked "internal decoder error": a fuzz
failure, since the public entry points would otherwise hide a bug behind a fail-closed block.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from content_samples import (
    b64,
    docx,
    encoded_audio,
    html_with,
    multipart_body,
    pdf_with_image,
    pdf_with_text,
    png,
    rtf_with,
    svg_with,
    tar_of,
    wav,
    zip_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.content import (
    ContentLimits,
    MediaItem,
    RequestContent,
    decode_audio,
    decode_body,
    decode_image_frames,
    extract_inputs,
    extract_websocket_inputs,
    sample_video_frames,
)
from gateway.content.failure import INTERNAL_ERROR_PREFIX
from gateway.errors import InspectionError

LIMITS = ContentLimits(max_decoded_bytes=8 * 1024 * 1024, max_archive_bytes=4 * 1024 * 1024, max_audio_seconds=30)
FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = [
    png(), wav(0.05), encoded_audio("mp3", 0.1), zip_of({"a.png": png(), "b.txt": b"hello"}), docx("a b", png()),
    pdf_with_text("hello"), pdf_with_image(), svg_with(png(), "t"), html_with(png(), "t"), rtf_with(png(), "t"),
    tar_of({"a.png": png()}),
]
CONTENT_TYPES = [
    "application/json", "multipart/form-data; boundary=b", "application/x-www-form-urlencoded", "text/plain",
    "application/octet-stream", "image/png", "text/html", "application/x-ndjson", "", "multipart/related; boundary=b",
]


def survives(action: Callable[[], object]) -> None:
    """The only acceptable failure is an InspectionError that is not a bug of ours."""
    try:
        action()
    except InspectionError as error:
        assert not str(error).startswith(INTERNAL_ERROR_PREFIX), repr(error.__cause__)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid sample with bytes flipped, cut or spliced: the interesting inputs for parsers."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(max_size=16))
    return bytes(data)


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=40),
    st.sampled_from([f"data:image/png;base64,{b64(png())}", b64(png()), "https://x.test/a.png", "file-abc123",
                     "files/xyz", "data:,plain", "DATA:text/plain;base64,aGk=", "[1, {\"a\": \"b\"}]"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["data", "mimeType", "mime_type", "type", "text", "audio", "format",
                                       "media_type", "x y", "file_data"]) | st.text(max_size=8), children,
                      max_size=4),
    max_leaves=20,
)


@FUZZ
@given(body=st.binary(max_size=2048) | mutated(), content_type=st.sampled_from(CONTENT_TYPES))
def test_extract_inputs_on_any_bytes(body: bytes, content_type: str) -> None:
    survives(lambda: extract_inputs(RequestContent("POST", "/", body=body, content_type=content_type), LIMITS))


@FUZZ
@given(value=JSON_VALUES)
def test_extract_inputs_on_any_json(value: object) -> None:
    body = json.dumps(value).encode()
    survives(lambda: extract_inputs(RequestContent("POST", "/", body=body, content_type="application/json"), LIMITS))


@FUZZ
@given(
    parts=st.lists(
        st.tuples(st.text(max_size=8), st.none() | st.text(max_size=12), st.sampled_from([None, "image/png",
                  "text/plain; charset=latin-1", "application/json"]), st.binary(max_size=64) | mutated(),
                  st.sampled_from([{}, {"Content-Transfer-Encoding": "base64"},
                                   {"Content-Transfer-Encoding": "quoted-printable"}])),
        max_size=4,
    )
)
def test_multipart_on_any_parts(parts: list) -> None:
    safe = [(n.replace('"', ""), f and f.replace('"', ""), c, d, e) for n, f, c, d, e in parts]
    body, content_type = multipart_body(safe, boundary="b")
    survives(lambda: extract_inputs(RequestContent("POST", "/", body=body, content_type=content_type), LIMITS))


@FUZZ
@given(value=JSON_VALUES | st.text(max_size=200), as_bytes=st.booleans())
def test_websocket_on_any_frame(value: object, as_bytes: bool) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    payload: bytes | str = text.encode() if as_bytes else text
    survives(lambda: extract_websocket_inputs(payload, not as_bytes, LIMITS))


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n%:;,"
MAGIC_PREFIXES = ["iVBORw0KGgo", "/9j/", "R0lGODlh", "UklGR", "JVBERi0", "UEsDB", "SUQz", "T2dnU", "H4sI",
                  "AAAAIGZ0eXA", "PHN2Zy", "data:image/png;base64,", "DATA:;BASE64,", "e1xydGY"]


@FUZZ
@given(pieces=st.lists(st.sampled_from(MAGIC_PREFIXES) | st.text(alphabet=B64_ALPHABET, max_size=80), max_size=8))
def test_strings_that_look_like_base64(pieces: list[str]) -> None:
    """Strings built from magic prefixes and base64 noise: the heuristics' hardest inputs."""
    body = json.dumps({"prompt": "".join(pieces)}).encode()
    survives(lambda: extract_inputs(RequestContent("POST", "/", body=body, content_type="application/json"), LIMITS))


@FUZZ
@given(payload=st.binary(max_size=1024) | mutated())
def test_websocket_on_any_binary_frame(payload: bytes) -> None:
    survives(lambda: extract_websocket_inputs(payload, False, LIMITS))


@FUZZ
@given(body=st.binary(max_size=1024), coding=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br", "x"]))
def test_decode_body_on_any_bytes(body: bytes, coding: str) -> None:
    survives(lambda: decode_body(body, coding, 1024 * 1024))


MEDIA_DECODERS = [decode_image_frames, decode_audio, sample_video_frames]


@FUZZ
@given(data=st.binary(max_size=1024) | mutated(), decoder=st.sampled_from(MEDIA_DECODERS),
       sniffed=st.sampled_from(["image/png", "audio/pcm", "audio/mpeg", "video/mp4", "image/svg+xml"]))
def test_media_decoders_on_any_bytes(data: bytes, decoder: Callable, sniffed: str) -> None:
    item = MediaItem(data, "other", sniffed, "audio/pcm;rate=16000", "body")
    survives(lambda: decoder(item, LIMITS))
