"""Form bodies: multipart/form-data (and multipart/related, mixed) and x-www-form-urlencoded.

Multipart is parsed by `multipart` (defnull): a small, strict, pure-Python, sans-IO parser with
limits on header size, header count, segment count and segment size, used by Bottle. On top of
it we decode `Content-Transfer-Encoding: base64` and quoted-printable parts and RFC 2231/5987
(`filename*=UTF-8''…`) and RFC 2047 (`=?utf-8?b?…?=`) filenames, which it leaves alone.
"""

from __future__ import annotations

import quopri
import re
from collections import Counter
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

import multipart

from gateway.errors import TooLargeError, UninspectableError

from .embedded import decode_base64
from .location import field_label

if TYPE_CHECKING:
    from .collector import Collector

__all__ = ["add_multipart", "add_urlencoded", "multipart_boundary"]

_FILENAME_STAR = re.compile(r";\s*filename\*\s*=\s*([^;]+)", re.I)
_MAX_PART_HEADERS = 16


@dataclass(slots=True)
class _Part:
    """One multipart part as it is read (mutable while its chunks arrive)."""

    name: str
    filename: str | None
    content_type: str
    transfer_encoding: str
    charset: str
    chunks: list[bytes] = field(default_factory=list)


class _AnyMultipartParser(multipart.PushMultipartParser):
    """multipart/related and /mixed parts may lack Content-Disposition: accept them, nameless."""

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> multipart.MultipartSegment:
        segment = multipart.MultipartSegment(headerlist)
        segment.name = segment.name or ""
        return segment


def multipart_boundary(content_type: str) -> str:
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary", "")
    if not boundary:
        raise UninspectableError("multipart body without a boundary", location="header.content-type")
    return boundary


def add_multipart(sink: Collector, body: bytes, content_type: str, location: str, depth: int) -> None:
    """Every part of a multipart body: text fields as strings, files as blobs (sniffed)."""
    form_data = content_type.lower().startswith("multipart/form-data")
    parts = _parse_multipart(body, multipart_boundary(content_type), sink.limits.max_items, form_data)
    names = Counter(part.name for part in parts)
    seen: Counter[str] = Counter()
    for index, part in enumerate(parts):
        label = field_label(part.name, index) if part.name else f"#{index}"
        repeated = bool(part.name) and names[part.name] > 1
        where = f"{location}.{label}" + (f"[{seen[part.name]}]" if repeated else "")
        seen[part.name] += 1
        _add_part(sink, part, where, depth)


def add_urlencoded(sink: Collector, body: bytes, location: str, depth: int) -> None:
    """Every field of an x-www-form-urlencoded body (Gemini web's `f.req` holds JSON in JSON)."""
    text = body.decode("utf-8", "replace") if _is_utf8(body) else body.decode("latin-1")
    try:
        fields = parse_qsl(
            text, keep_blank_values=True, max_num_fields=sink.limits.max_items, errors="replace"
        )
    except ValueError as exc:
        raise TooLargeError(f"more than {sink.limits.max_items} form fields", location=location) from exc
    for index, (name, value) in enumerate(fields):
        sink.add_string(value, f"{location}.{field_label(name, index)}", depth, request_level=True)


def _parse_multipart(body: bytes, boundary: str, max_parts: int, form_data: bool) -> list[_Part]:
    parser_type = multipart.PushMultipartParser if form_data else _AnyMultipartParser
    parts: list[_Part] = []
    try:
        with parser_type(
            boundary,
            content_length=len(body),
            max_header_count=_MAX_PART_HEADERS,
            max_segment_count=max_parts,
        ) as parser:
            for event in parser.parse(body):
                if isinstance(event, multipart.MultipartSegment):
                    parts.append(_new_part(event))
                elif event:
                    parts[-1].chunks.append(event)
    except multipart.ParserLimitReached as exc:
        raise TooLargeError("multipart body exceeds the parser's limits", location="body") from exc
    except multipart.MultipartError as exc:
        raise UninspectableError("malformed multipart body", location="body") from exc
    return parts


def _new_part(segment: multipart.MultipartSegment) -> _Part:
    headers = {name.lower(): value for name, value in segment.headerlist}
    return _Part(
        name=segment.name or "",
        filename=_filename(headers.get("content-disposition", ""), segment.filename),
        content_type=segment.content_type or "",
        transfer_encoding=headers.get("content-transfer-encoding", "").strip().lower(),
        charset=(segment.charset or "utf-8").strip().lower(),
    )


def _filename(disposition: str, plain: str | None) -> str | None:
    """The part's filename, preferring RFC 2231/5987 `filename*` and decoding RFC 2047 words."""
    star = _FILENAME_STAR.search(disposition)
    if star:
        charset, _, rest = star.group(1).strip().strip('"').partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return unquote(encoded, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            return unquote(encoded, errors="replace")
    if plain and plain.startswith("=?"):
        try:
            return str(make_header(decode_header(plain)))
        except (ValueError, LookupError, UnicodeDecodeError):
            return plain
    return plain


def _add_part(sink: Collector, part: _Part, location: str, depth: int) -> None:
    """A text field becomes a string (walked like a JSON leaf); anything else is a blob, sniffed."""
    data = _transfer_decoded(b"".join(part.chunks), part.transfer_encoding, sink, location)
    if part.filename is None and _is_textual(part.content_type):
        text = _decoded_text(data, part.charset)
        if text is not None:
            sink.add_string(text, location, depth, request_level=True)
            return
    sink.add_blob(data, location, depth, declared_type=part.content_type, name=part.filename or "")


def _is_textual(content_type: str) -> bool:
    return not content_type or content_type.startswith("text/") or content_type.endswith(("/json", "+json"))


def _transfer_decoded(data: bytes, encoding: str, sink: Collector, location: str) -> bytes:
    if encoding in ("", "7bit", "8bit", "binary"):
        return data
    if encoding == "base64":
        return decode_base64(data.decode("ascii", "replace"), sink.limits.max_base64_bytes, location)
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    raise UninspectableError("unknown Content-Transfer-Encoding", location=location)


def _decoded_text(data: bytes, charset: str) -> str | None:
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return data.decode("latin-1") if b"\x00" not in data else None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
