"""Media and references hiding inside strings: data URLs, base64 runs, URLs, provider file ids.

`find_blobs(text)` returns the spans of a string that carry binary content: `data:` URLs (any
letter case, any parameters) and base64 in every variant (standard, URL-safe, unpadded,
line-wrapped, with whitespace) recognised by magic bytes. `find_references(text)` returns the
remote URLs the provider would fetch and the provider file ids it would look up.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_to_bytes

import pybase64

from gateway.errors import TooLargeError, UninspectableError

from .sniff import sniff

__all__ = ["Blob", "decode_base64", "find_blobs", "find_references", "looks_base64", "parse_data_url"]


@dataclass(frozen=True, slots=True)
class Blob:
    """Binary content found in a string: where it sat, its bytes, and the type the string claimed."""

    start: int
    end: int
    data: bytes
    declared_type: str


_B64_CHARS = "A-Za-z0-9+/_\\-"
_DATA_URL = re.compile(
    r"(?<![a-z0-9])data:([a-z0-9!#$&^_.+\-]+/[a-z0-9!#$&^_.+\-]+)?((?:;[^;,\s\"'<>()]*)*),", re.I
)
_DATA_PAYLOAD = re.compile(rf"[{_B64_CHARS}%]+(?:[ \t]*\r?\n[ \t]*[{_B64_CHARS}%]+)*=*(?:%3D)*", re.I)
_B64_RUN = re.compile(
    rf"(?<![{_B64_CHARS}])[{_B64_CHARS}]{{24,}}(?:[ \t]*\r?\n[ \t]*[{_B64_CHARS}]+)*={{0,2}}"
)
_B64_WHOLE = re.compile(rf"[{_B64_CHARS}\s]+=*\s*")
_WHITESPACE = re.compile(r"\s+")
_URLSAFE = str.maketrans("-_", "+/")
_MIN_BLOB_CHARS = 24
_HEAD_CHARS = 128
"""base64 characters decoded to look for a signature: 96 bytes, 54 after three layers of base64."""
_MAX_LAYERS = 3
_MIN_HEX_CHARS = 160
"""a hex run shorter than this (80 bytes; a SHA-512 digest is 128 characters) is never a file."""
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+")
_HEX_KINDS = frozenset({"image", "audio", "video", "document"})

# Base64 spellings of strong signatures, to find a blob that starts inside a longer run.
_B64_MAGIC = re.compile(
    r"iVBORw0KGgo|/9j/|R0lGOD[dl]h|UklGR|JVBERi0|UEsDB|SUQz|T2dnU|ZkxhQ|SUkqA|TU0AK|GkXfo|H4sI"
    r"|N3q8ryc|UmFyIRo|0M8R4KGx|e1xydGY|AAAA[A-Za-z0-9+/]GZ0eXA|PHN2Zy|PD94bWwg"
)

_URL = re.compile(r"\b(?:https?|gs)://[^\s\"'<>\\^`{|}]+", re.I)
_FILE_IDS = (
    re.compile(r"(?<![A-Za-z0-9])file[-_](?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{6,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])files/[A-Za-z0-9][A-Za-z0-9_\-]*"),
    re.compile(r"runway://[^\s\"'<>]+", re.I),
)


def looks_base64(text: str) -> bool:
    """True when the whole string (whitespace aside) is in the base64 alphabet, padding allowed."""
    return bool(text) and _B64_WHOLE.fullmatch(text) is not None


def decode_base64(text: str, max_bytes: int, location: str, *, lenient: bool = False) -> bytes:
    """Decode any base64 variant: standard, URL-safe, unpadded, line-wrapped, with whitespace.

    `lenient` drops a trailing partial quantum (for runs cut out of text); otherwise it is an error.
    """
    compact = "".join(text.split())  # the whitespace `\s` matches, ~20x faster than a regex
    if "-" in compact or "_" in compact:  # URL-safe alphabet (a scan is ~30x cheaper than translate)
        compact = compact.translate(_URLSAFE)
    compact = compact.rstrip("=")
    if len(compact) * 3 // 4 > max_bytes:
        raise TooLargeError(f"base64 item decodes past {max_bytes} bytes", location=location)
    remainder = len(compact) % 4
    if remainder == 1:
        if not lenient:
            raise UninspectableError("malformed base64 (length)", location=location)
        compact = compact[:-1]
    padded = compact + "=" * (-len(compact) % 4)
    try:
        return pybase64.b64decode(padded, validate=True)  # SIMD: 0.2 ms instead of 8 ms per 1.6 MB
    except (binascii.Error, ValueError) as exc:
        raise UninspectableError("malformed base64", location=location) from exc


def parse_data_url(text: str, max_bytes: int, location: str) -> Blob | None:
    """The content of a string that is one whole `data:` URL, or None when it is not one."""
    stripped = text.strip()
    match = _DATA_URL.match(stripped)
    if not match:
        return None
    declared, params = _data_url_type(match)
    payload = stripped[match.end() :]
    if ";base64" in params:
        data = decode_base64(_percent_decoded(payload), max_bytes, location)
    else:
        if len(payload) > max_bytes * 3:
            raise TooLargeError(f"data URL decodes past {max_bytes} bytes", location=location)
        data = unquote_to_bytes(payload)
    return Blob(0, len(text), data, declared)


def find_blobs(text: str, max_bytes: int, location: str) -> list[Blob]:
    """Every base64 `data:` URL and every magic-recognised base64 run inside `text`."""
    blobs: list[Blob] = []
    taken = 0
    data_urls = _DATA_URL.finditer(text) if "data:" in text.lower() else ()
    for match in data_urls:
        if match.start() < taken:
            continue
        declared, params = _data_url_type(match)
        if ";base64" not in params:
            continue
        payload = _DATA_PAYLOAD.match(text, match.end())
        end = payload.end() if payload else match.end()
        raw = payload.group(0) if payload else ""
        data = decode_base64(_percent_decoded(raw), max_bytes, location, lenient=True)
        blobs.append(Blob(match.start(), end, data, declared))
        taken = end
    blobs.extend(_find_base64_runs(text, blobs, max_bytes, location))
    blobs.sort(key=lambda blob: blob.start)
    return blobs


def find_references(text: str) -> list[tuple[Literal["url", "file_id"], str]]:
    """Remote URLs (http, https, gs) and provider file ids (`file-…`, `file_…`, `files/…`, `runway://…`).

    A URL is a reference only when it is the whole string (`image_url.url`, `source.url`, `fileUri`):
    that is what providers fetch. A URL mentioned in prose stays text. File ids count anywhere.
    """
    found: list[tuple[Literal["url", "file_id"], str]] = []
    stripped = text.strip()
    if "://" in stripped and (url := _URL.fullmatch(stripped)):
        found.append(("url", url.group(0)))
    if "file" in text or "runway" in text.lower():
        for pattern in _FILE_IDS:
            found.extend(("file_id", match.group(0)) for match in pattern.finditer(text))
    return found


def _data_url_type(match: re.Match[str]) -> tuple[str, str]:
    declared = (match.group(1) or "").lower()
    params = (match.group(2) or "").lower().replace(" ", "")
    return declared, params


def _percent_decoded(payload: str) -> str:
    if "%" not in payload:
        return payload
    return unquote_to_bytes(payload).decode("ascii", "replace")


def _find_base64_runs(text: str, taken: list[Blob], max_bytes: int, location: str) -> list[Blob]:
    stripped = text.strip()
    if len(stripped) >= _MIN_BLOB_CHARS and not taken and looks_base64(stripped):
        blob = _recognised_blob(stripped, 0, len(text), max_bytes, location)
        if blob is not None:
            return [blob]
    blobs: list[Blob] = []
    if not _has_long_token(text):
        return blobs
    for match in _B64_RUN.finditer(text):
        if any(b.start <= match.start() < b.end for b in taken):
            continue
        blob = _blob_in_run(match.group(0), match.start(), max_bytes, location)
        if blob is not None:
            blobs.append(blob)
    return blobs


def _has_long_token(text: str) -> bool:
    """A base64 run has no whitespace, so it lies inside one long token (a fast pre-check)."""
    return max(map(len, text.split()), default=0) >= _MIN_BLOB_CHARS


def _blob_in_run(run: str, offset: int, max_bytes: int, location: str) -> Blob | None:
    blob = _recognised_blob(run, offset, offset + len(run), max_bytes, location)
    if blob is not None:
        return blob
    inner = _B64_MAGIC.search(run, 1)
    if inner is None or len(run) - inner.start() < _MIN_BLOB_CHARS:
        return None
    start = offset + inner.start()
    return _recognised_blob(run[inner.start() :], start, offset + len(run), max_bytes, location)


def _recognised_blob(run: str, start: int, end: int, max_bytes: int, location: str) -> Blob | None:
    """Decode `run` only when its first bytes carry a strong signature (cheap to reject).

    The run may also be hex (`89504e47...`), or base64 of base64 up to `_MAX_LAYERS` deep (a way to
    slip a file past a check that decodes once): the head is decoded layer by layer while it stays
    base64 text, and the whole run only once a layer starts with a strong signature.
    """
    head = _WHITESPACE.sub("", run[:_HEAD_CHARS])
    if len(run) >= _MIN_HEX_CHARS and _HEX_RUN.fullmatch(head):
        blob = _hex_blob(run, start, end, max_bytes, location)
        if blob is not None:
            return blob
    for layers in range(1, _MAX_LAYERS + 1):
        head_bytes = decode_base64(head[: len(head) // 4 * 4], max_bytes, location, lenient=True)
        sniffed = sniff(head_bytes)
        if sniffed is not None and sniffed.strong:
            return Blob(start, end, _decoded_layers(run, layers, max_bytes, location), "")
        head = head_bytes.decode("ascii", "replace")
        if sniffed is not None or len(head) < _MIN_BLOB_CHARS or not _B64_WHOLE.fullmatch(head):
            return None
    return None


def _decoded_layers(run: str, layers: int, max_bytes: int, location: str) -> bytes:
    data = decode_base64(run, max_bytes, location, lenient=True)
    for _ in range(layers - 1):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise UninspectableError("nested base64 is not base64 throughout", location=location) from exc
        data = decode_base64(text, max_bytes, location, lenient=True)
    return data


def _hex_blob(run: str, start: int, end: int, max_bytes: int, location: str) -> Blob | None:
    """A long hex run whose first bytes carry a strong signature of media or a document (not of a
    bare compressed stream: `1f8b` opens one hex digest in 65,536, an image never does)."""
    compact = "".join(run.split())
    sniffed = sniff(bytes.fromhex(compact[:_HEAD_CHARS // 2 * 2]))
    if sniffed is None or not sniffed.strong or sniffed.kind not in _HEX_KINDS:
        return None
    if len(compact) // 2 > max_bytes:
        raise TooLargeError(f"hex item decodes past {max_bytes} bytes", location=location)
    if not _HEX_RUN.fullmatch(compact):
        return None
    return Blob(start, end, bytes.fromhex(compact[: len(compact) // 2 * 2]), "")  # a stray last digit, as base64's


