"""Content-Encoding: every gzip member, both deflate spellings, br, zstd, stacked codings, caps."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from gateway.content import decode_body
from gateway.errors import TooLargeError, UninspectableError

TEXT = b'{"prompt": "Night Harbor draft scene 12"}' * 50


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


ENCODED = [
    pytest.param(gzip.compress(TEXT), "gzip", TEXT, id="gzip"),
    pytest.param(gzip.compress(TEXT) + gzip.compress(b"second member"), "gzip", TEXT + b"second member",
                 id="gzip-every-member"),
    pytest.param(zlib.compress(TEXT), "deflate", TEXT, id="deflate-zlib"),
    pytest.param(raw_deflate(TEXT), "deflate", TEXT, id="deflate-raw"),
    pytest.param(brotli.compress(TEXT), "br", TEXT, id="br"),
    pytest.param(zstandard.ZstdCompressor().compress(TEXT), "zstd", TEXT, id="zstd"),
    pytest.param(brotli.compress(gzip.compress(TEXT)), "gzip, br", TEXT, id="stacked-gzip-then-br"),
    pytest.param(TEXT, "identity", TEXT, id="identity"),
]


@pytest.mark.parametrize(("body", "coding", "expected"), ENCODED)
def test_every_coding_is_undone(body: bytes, coding: str, expected: bytes) -> None:
    assert decode_body(body, coding, 1024 * 1024) == expected


@pytest.mark.parametrize(
    ("body", "coding", "error"),
    [
        pytest.param(gzip.compress(TEXT), "gzip", TooLargeError, id="gzip-past-cap"),
        pytest.param(brotli.compress(TEXT), "br", TooLargeError, id="br-past-cap"),
        pytest.param(zstandard.ZstdCompressor().compress(TEXT), "zstd", TooLargeError, id="zstd-past-cap"),
        pytest.param(gzip.compress(b"x" * 50)[:-8], "gzip", UninspectableError, id="truncated-gzip"),
        pytest.param(TEXT, "compress", UninspectableError, id="unknown-coding"),
        pytest.param(TEXT, "gzip", UninspectableError, id="not-gzip"),
    ],
)
def test_bad_or_oversized_bodies_fail_closed(body: bytes, coding: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_body(body, coding, 100)
