"""Bombs: refused with the right error, in bounded time and memory (measured here, generous bounds).

Memory is the tracemalloc peak of Python allocations (bytes objects, bytearrays: where inflated
data lands); time is wall clock with a bound far above the expected, to catch hangs, not to race.
"""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable

import pytest
from content_samples import multipart_body, png_bomb, zip_of

from gateway.content import ContentLimits, RequestContent, decode_body, extract_inputs
from gateway.errors import InspectionError, TooDeepError, TooLargeError

MIB = 1024 * 1024
TIME_BOUND = 15.0


def measured(action: Callable[[], object], error: type[InspectionError]) -> tuple[float, int]:
    """Run `action`, expecting `error`; return (seconds, peak traced bytes)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(error):
            action()
        return time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def gzip_bomb(inflated: int) -> bytes:
    """`inflated` bytes of zeros as concatenated gzip members (every member is decoded)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = compressor.compress(b"\x00" * (16 * MIB)) + compressor.flush()
    return member * (inflated // (16 * MIB))


def upload(data: bytes) -> RequestContent:
    body, content_type = multipart_body([("file", "x", None, data, {})])
    return RequestContent("POST", "/v1/files", body=body, content_type=content_type)


def zeros_zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("zeros.txt", "w") as member:
        for _ in range(size // MIB):
            member.write(b"\x00" * MIB)
    return buffer.getvalue()


def lying_zip(actual: int, declared: int) -> bytes:
    """A zip whose headers declare `declared` bytes for a member that inflates to `actual`."""
    data = bytearray(zeros_zip(actual))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


def zip_claiming(entries: int) -> bytes:
    """A zip whose end-of-central-directory record claims `entries` members."""
    data = bytearray(zip_of({"a.txt": b"a"}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, entries, entries)
    return bytes(data)


def nested_zips(depth: int) -> bytes:
    data = b"innermost text"
    for level in range(depth):
        data = zip_of({f"level{level}.zip" if level else "note.txt": data})
    return data


def nested_gzip(depth: int) -> bytes:
    data = b"innermost text"
    for _ in range(depth):
        data = zlib.compress(data, 9, wbits=31)
    return data


SMALL = ContentLimits(max_decoded_bytes=64 * MIB, max_archive_bytes=16 * MIB)
DEFAULT = ContentLimits()


def extract(limits: ContentLimits) -> Callable[[RequestContent], object]:
    return lambda request: extract_inputs(request, limits)


def json_body(body: bytes) -> RequestContent:
    return RequestContent("POST", "/", body=body, content_type="application/json")


# (build the input — not measured, run the decoder on it — measured, expected error, memory bound)
BOMBS = [
    pytest.param(lambda: gzip_bomb(512 * MIB), lambda body: decode_body(body, "gzip", 16 * MIB), TooLargeError,
                 32 * MIB, id="gzip-content-encoding-512MiB"),
    pytest.param(lambda: upload(gzip_bomb(256 * MIB)), extract(SMALL), TooLargeError, 32 * MIB,
                 id="gzip-file-upload-256MiB"),
    pytest.param(lambda: upload(zeros_zip(64 * MIB)), extract(SMALL), TooLargeError, 8 * MIB,
                 id="zip-declared-64MiB"),
    pytest.param(lambda: upload(lying_zip(64 * MIB, 1000)), extract(SMALL), InspectionError, 8 * MIB,
                 id="zip-lying-header"),
    pytest.param(lambda: upload(zip_of({f"{i}": b"" for i in range(5000)})), extract(DEFAULT), TooLargeError,
                 32 * MIB, id="zip-5000-members"),
    pytest.param(lambda: upload(zip_claiming(60_000)), extract(DEFAULT), TooLargeError, 8 * MIB,
                 id="zip-end-record-claims-60000"),
    pytest.param(lambda: upload(png_bomb()), extract(DEFAULT), TooLargeError, 8 * MIB, id="png-100000x100000"),
    pytest.param(lambda: upload(png_bomb(10_000, 10_000)), extract(DEFAULT), TooLargeError, 8 * MIB,
                 id="png-10000x10000-over-pixel-limit"),
    pytest.param(lambda: json_body(b"[" * 200_000 + b"]" * 200_000), extract(DEFAULT), TooDeepError, 256 * MIB,
                 id="json-nested-200000"),
    pytest.param(lambda: upload(nested_zips(10)), extract(DEFAULT), TooDeepError, 8 * MIB, id="zip-nested-10"),
    pytest.param(lambda: upload(nested_gzip(10)), extract(DEFAULT), TooDeepError, 8 * MIB, id="gzip-nested-10"),
]


@pytest.mark.parametrize(("build", "decode", "error", "memory_bound"), BOMBS)
def test_bombs_are_refused_in_bounded_time_and_memory(
    build: Callable[[], object], decode: Callable[[object], object], error: type[InspectionError], memory_bound: int
) -> None:
    bomb = build()
    seconds, peak = measured(lambda: decode(bomb), error)
    assert seconds < TIME_BOUND
    assert peak < memory_bound, f"peak {peak / MIB:.1f} MiB"


def test_many_data_url_prefixes_do_not_hang() -> None:
    """A string of 100,000 empty data URLs is work proportional to its size, not more."""
    text = "see data:image/png;base64, " * 100_000
    body = json.dumps({"prompt": text}).encode()
    started = time.perf_counter()
    extract_inputs(RequestContent("POST", "/", body=body, content_type="application/json"), ContentLimits())
    assert time.perf_counter() - started < TIME_BOUND
