"""Content-Encoding decoding with hard output caps.

mitmproxy's `get_content()` inflates without a limit (a 1 MB gzip body became 1 GB and stalled
every connection for 8.6 s) and its lenient mode returns the compressed bytes. We decode
ourselves: every coding in the header, in reverse order, each capped at `max_output` bytes.
Unknown codings, corrupt data and output past the cap raise the gateway's inspection errors.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import zstandard

from gateway.errors import TooLargeError, UninspectableError

__all__ = ["SUPPORTED_CODINGS", "decode_body", "parse_codings"]

_CHUNK = 64 * 1024
_STEP = 1024 * 1024


def parse_codings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding header, in the order they were applied."""
    if not header:
        return []
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


def decode_body(body: bytes, content_encoding: str | None, max_output: int) -> bytes:
    """Undo every Content-Encoding (last applied first); never produce more than max_output bytes."""
    codings = parse_codings(content_encoding)
    if len(codings) > 4:
        raise UninspectableError(f"{len(codings)} stacked content codings; at most 4 are accepted")
    data = body
    for coding in reversed(codings):
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise UninspectableError(f"unsupported Content-Encoding {coding!r}", location="header.content-encoding")
        data = decoder(data, max_output)
    return data


def _gzip(data: bytes, cap: int) -> bytes:
    """Every gzip member, not only the first (RFC 1952 allows concatenated members)."""
    out = bytearray()
    rest = data
    members = 0
    while rest:
        members += 1
        if members > 64:
            raise UninspectableError("more than 64 gzip members")
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        _drain(d, rest, out, cap, "gzip")
        if not d.eof:
            raise UninspectableError("truncated gzip data", location="body")
        rest = d.unused_data
        if rest and not rest.lstrip(b"\0"):
            break  # trailing zero padding, as some writers emit
    if not out and not data:
        return b""
    return bytes(out)


def _deflate(data: bytes, cap: int) -> bytes:
    """HTTP 'deflate' is zlib-wrapped per RFC 9110, but raw deflate is common in the wild: accept both."""
    try:
        d = zlib.decompressobj(zlib.MAX_WBITS)
        out = bytearray()
        _drain(d, data, out, cap, "deflate")
    except UninspectableError:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        out = bytearray()
        _drain(d, data, out, cap, "deflate")
    if not d.eof or d.unused_data:
        raise UninspectableError("truncated or trailing deflate data", location="body")
    return bytes(out)


def _drain(d: zlib._Decompress, data: bytes, out: bytearray, cap: int, name: str) -> None:
    """Inflate in 1 MiB steps straight into `out`, so memory stays near `cap`, never twice it."""
    try:
        out += d.decompress(data, min(_STEP, cap - len(out) + 1))
        while not d.eof and len(out) <= cap:
            chunk = d.decompress(d.unconsumed_tail, min(_STEP, cap - len(out) + 1))
            if not chunk and not d.unconsumed_tail:
                break
            out += chunk
    except zlib.error as exc:
        raise UninspectableError(f"corrupt {name} data: {exc}", location="body") from exc
    if len(out) > cap:
        raise TooLargeError(f"{name} body inflates past {cap} bytes", location="body")


def _brotli(data: bytes, cap: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray()
    try:
        chunk = d.process(data, output_buffer_limit=_CHUNK)
        out += chunk
        while chunk and len(out) <= cap and not d.is_finished():
            chunk = d.process(b"", output_buffer_limit=_CHUNK)
            out += chunk
    except brotli.error as exc:
        raise UninspectableError(f"corrupt br data: {exc}", location="body") from exc
    if len(out) > cap:
        raise TooLargeError(f"br body inflates past {cap} bytes", location="body")
    if not d.is_finished():
        raise UninspectableError("truncated br data", location="body")
    return bytes(out)


def _zstd(data: bytes, cap: int) -> bytes:
    d = zstandard.ZstdDecompressor(max_window_size=1 << 27)
    out = bytearray()
    try:
        reader = d.stream_reader(data, read_across_frames=True)
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                raise TooLargeError(f"zstd body inflates past {cap} bytes", location="body")
    except zstandard.ZstdError as exc:
        raise UninspectableError(f"corrupt zstd data: {exc}", location="body") from exc
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}
SUPPORTED_CODINGS = frozenset(_DECODERS)
