"""An "AI-generated, temporary" marker in a returned image's metadata, pixels untouched.

    mark_image(data, event_id=..., tool=..., ts=...) -> MarkResult   the marked bytes (or the same bytes)
    mark_response(content_type, body, provider_format, ...) -> MarkedResponse   every image in a response
    read_marker(data) -> Marker | None                               what a marked file says

PNG gets a `tEXt` chunk (keyword `AI-Generated`, readable by any PNG tool) and an `iTXt` chunk
`XML:com.adobe.xmp` holding an XMP packet; JPEG gets an APP1 XMP segment and a COM comment. Both
are inserted between existing chunks/segments: compressed image data is copied byte for byte,
nothing is decoded or re-encoded. The XMP packet uses the IPTC vocabulary every DAM and Adobe tool
knows — `Iptc4xmpExt:DigitalSourceType` = `trainedAlgorithmicMedia` — plus a `greenroom:` namespace
(`Temporary`, `EventId`, `Tool`, `Generated`). Other formats (WebP, GIF, audio, video) are returned
unchanged with `marked=False`. A file that already carries an XMP packet keeps it (merging XMP is
out of scope); it gets the plain-text marker only. A file that carries a C2PA manifest (PNG `caBX`
chunk, JPEG APP11 JUMBF) is left byte for byte as it is: its manifest's hash binds the file's
bytes, and inserting anything would turn the provider's valid credential into a broken one.

This is a label, not a credential: anyone can strip or forge it. What a signed C2PA manifest adds,
and how to get there, is in docs/outputs.md. Marking changes the bytes, so fingerprint (and
record) the marked bytes the user receives; the perceptual hashes are unaffected.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr, unescape

from gateway.content.embedded import looks_base64
from gateway.content.limits import ContentLimits
from gateway.outputs import OutputItem, extract_outputs

__all__ = [
    "MARKER_KEYWORD",
    "MARKER_TEXT",
    "MarkResult",
    "MarkedResponse",
    "Marker",
    "has_c2pa_manifest",
    "mark_image",
    "mark_response",
    "read_marker",
]

MARKER_KEYWORD = "AI-Generated"
MARKER_TEXT = "AI-generated, temporary: not for final deliverables"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GREENROOM_NS = "urn:greenroom:output:1.0#"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_KEYWORD = b"XML:com.adobe.xmp"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_ATTRIBUTE = re.compile(r'greenroom:(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class MarkResult:
    data: bytes
    marked: bool
    how: tuple[str, ...] = ()
    """what was added: `png tEXt`, `png iTXt XMP`, `jpeg APP1 XMP`, `jpeg COM`."""


@dataclass(frozen=True, slots=True)
class Marker:
    """What a marked image says about itself."""

    text: str
    event_id: str = ""
    tool: str = ""
    generated: str = ""


def mark_image(data: bytes, *, event_id: str, tool: str, ts: float) -> MarkResult:
    """`data` with the marker inserted (PNG, JPEG); other or malformed files come back unchanged."""
    if read_marker(data) is not None:
        return MarkResult(data, False)
    if has_c2pa_manifest(data):
        return MarkResult(data, False, ("c2pa manifest present: left intact",))
    generated = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{MARKER_TEXT} (Greenroom event {event_id}, {tool}, {generated})"
    packet = _xmp_packet(event_id, tool, generated)
    try:
        if data.startswith(_PNG_SIGNATURE):
            return _mark_png(data, text, packet)
        if data.startswith(b"\xff\xd8"):
            return _mark_jpeg(data, text, packet)
    except (ValueError, struct.error):
        return MarkResult(data, False)
    return MarkResult(data, False)


@dataclass(frozen=True, slots=True)
class MarkedResponse:
    body: bytes
    """the body to send (the original bytes when nothing was marked)."""
    items: tuple[OutputItem, ...]
    """every output as the client receives it (marked bytes where marked): fingerprint these."""
    marked: int


_PATH_TOKEN = re.compile(r"\.([^.\[\]@]+)|\[(\d+)\]")


def mark_response(
    content_type: str, body: bytes, provider_format: str, *, event_id: str, tool: str, ts: float,
    limits: ContentLimits | None = None,
) -> MarkedResponse:  # fmt: skip
    """Mark every PNG/JPEG output of a whole (non-streamed) response, where it sits.

    Raw image bodies are replaced whole; base64 in JSON (`b64_json`, `inlineData.data`, `data:` URLs…)
    is re-encoded in place and the JSON re-serialised. Media inside free text is left alone. Streamed
    (SSE) responses are not marked: that would mean holding the stream back.
    """
    items = extract_outputs(content_type, body, provider_format, limits)
    marked = [(item, mark_image(item.data, event_id=event_id, tool=tool, ts=ts)) for item in items]
    if not any(result.marked for _, result in marked):
        return MarkedResponse(body, tuple(items), 0)
    if len(marked) == 1 and marked[0][0].location == "body":
        item, result = marked[0]
        return MarkedResponse(result.data, (_replaced(item, result.data),), 1)
    if not any(result.marked and item.location.startswith(("body.", "body[")) for item, result in marked):
        return MarkedResponse(body, tuple(items), 0)  # streamed events, or media inside free text only
    document = json.loads(body)
    delivered: list[OutputItem] = []
    count = 0
    for item, result in marked:
        if result.marked and _set_base64(document, item.location, result.data):
            delivered.append(_replaced(item, result.data))
            count += 1
        else:
            delivered.append(item)
    if not count:
        return MarkedResponse(body, tuple(items), 0)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return MarkedResponse(text.encode(), tuple(delivered), count)


def _replaced(item: OutputItem, data: bytes) -> OutputItem:
    return OutputItem(data, item.kind, item.media_type, item.location, item.partial)


def _set_base64(document: Any, location: str, data: bytes) -> bool:
    """Replace the base64 string at `location` (keeping a `data:` URL's prefix); False if it cannot."""
    if not location.startswith("body") or "@" in location or "{?}" in location:
        return False
    tokens = [(key, index) for key, index in _PATH_TOKEN.findall(location[len("body") :])]
    if "".join(f".{k}" if k else f"[{i}]" for k, i in tokens) != location[len("body") :] or not tokens:
        return False
    parent = document
    try:
        for key, index in tokens[:-1]:
            parent = parent[key] if key else parent[int(index)]
        last_key, last_index = tokens[-1]
        slot: Any = last_key if last_key else int(last_index)
        old = parent[slot]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(old, str):
        return False
    prefix = old[: old.index(",") + 1] if old[:5].lower() == "data:" and "," in old else ""
    if not looks_base64(old[len(prefix) :]):
        return False  # the media was part of a longer text: leave the text as it is
    parent[slot] = prefix + base64.b64encode(data).decode()
    return True


def read_marker(data: bytes) -> Marker | None:
    """The marker of a PNG or JPEG marked by `mark_image` (or any file with our XMP/text), else None."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            texts = [payload for kind, payload, _, _ in _png_chunks(data) if kind in (b"tEXt", b"iTXt")]
        elif data.startswith(b"\xff\xd8"):
            texts = [payload for marker, payload, _, _ in _jpeg_segments(data) if marker in (0xE1, 0xFE)]
        else:
            return None
    except (ValueError, struct.error):
        return None
    marker_text = ""
    fields: dict[str, str] = {}
    for payload in texts:
        if payload.startswith(MARKER_KEYWORD.encode() + b"\x00"):
            marker_text = payload.split(b"\x00", 1)[1].decode("latin-1")
        elif payload.startswith(MARKER_TEXT.encode()):
            marker_text = marker_text or payload.decode("utf-8", "replace")
        elif GREENROOM_NS.encode() in payload:
            fields = {k: unescape(v) for k, v in _ATTRIBUTE.findall(payload.decode("utf-8", "replace"))}
    if not marker_text and not fields:
        return None
    return Marker(
        marker_text or MARKER_TEXT, fields.get("EventId", ""), fields.get("Tool", ""), fields.get("Generated", "")
    )


def has_c2pa_manifest(data: bytes) -> bool:
    """Whether a PNG or JPEG embeds a C2PA manifest store (PNG `caBX` chunk; JPEG APP11 JUMBF `c2pa`)."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            return any(kind == b"caBX" for kind, _, _, _ in _png_chunks(data))
        if data.startswith(b"\xff\xd8"):
            return any(marker == 0xEB and b"c2pa" in payload for marker, payload, _, _ in _jpeg_segments(data))
    except (ValueError, struct.error):
        return False
    return False


def _xmp_packet(event_id: str, tool: str, generated: str) -> bytes:
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        f"    xmlns:greenroom={quoteattr(GREENROOM_NS)}\n"
        f"    Iptc4xmpExt:DigitalSourceType={quoteattr(DIGITAL_SOURCE_TYPE)}\n"
        '    greenroom:Temporary="True"\n'
        f"    greenroom:EventId={_attribute(event_id)}\n"
        f"    greenroom:Tool={_attribute(tool)}\n"
        f"    greenroom:Generated={_attribute(generated)}>\n"
        "   <dc:description><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{escape(MARKER_TEXT)}</rdf:li></rdf:Alt></dc:description>\n'
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )
    return packet.encode("utf-8")


def _attribute(value: str) -> str:
    """A double-quoted XML attribute (our reader expects double quotes; ids never contain them)."""
    return '"' + escape(value.replace('"', "'"), {"\n": "&#10;"}) + '"'


# --- PNG ------------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, int, int]]:
    """(type, payload, start, end) of every chunk; ValueError when the structure is broken."""
    chunks = []
    position = len(_PNG_SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if len(kind) != 4 or end > len(data):
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, data[position + 8 : position + 8 + length], position, end))
        position = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("PNG without IHDR")
    return chunks


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _mark_png(data: bytes, text: str, packet: bytes) -> MarkResult:
    chunks = _png_chunks(data)
    has_xmp = any(kind == b"iTXt" and payload.startswith(_XMP_KEYWORD + b"\x00") for kind, payload, _, _ in chunks)
    added = [_png_chunk(b"tEXt", MARKER_KEYWORD.encode() + b"\x00" + text.encode("latin-1", "replace"))]
    how = ["png tEXt"]
    if not has_xmp:
        added.append(_png_chunk(b"iTXt", _XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet))
        how.append("png iTXt XMP")
    after_header = chunks[0][3]
    return MarkResult(data[:after_header] + b"".join(added) + data[after_header:], True, tuple(how))


# --- JPEG -----------------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes, int, int]]:
    """(marker, payload, start, end) of the header segments up to the first that is not APPn/COM."""
    segments: list[tuple[int, bytes, int, int]] = []
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError("JPEG segment without a marker")
        marker = data[position + 1]
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            return segments
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG segment")
        segments.append((marker, data[position + 4 : end], position, end))
        position = end
    raise ValueError("JPEG ends inside its header segments")


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("JPEG segment too large")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _mark_jpeg(data: bytes, text: str, packet: bytes) -> MarkResult:
    segments = _jpeg_segments(data)
    has_xmp = any(marker == 0xE1 and payload.startswith(_JPEG_XMP_HEADER) for marker, payload, _, _ in segments)
    insert_at = segments[-1][3] if segments else 2  # after JFIF/Exif/ICC headers, before the tables
    added = []
    how = []
    if not has_xmp:
        added.append(_jpeg_segment(0xE1, _JPEG_XMP_HEADER + packet))
        how.append("jpeg APP1 XMP")
    added.append(_jpeg_segment(0xFE, text.encode("utf-8")))
    how.append("jpeg COM")
    return MarkResult(data[:insert_at] + b"".join(added) + data[insert_at:], True, tuple(how))
