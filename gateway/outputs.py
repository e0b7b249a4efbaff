"""Generated media in provider responses: every image, audio and video item, with where it sat.

    extract_outputs(content_type, body, provider_format) -> list[OutputItem]      a whole response body
    extract_output_urls(content_type, body, provider_format) -> list[OutputReference]   media as links
    OutputSSEScanner(provider_format).feed(chunk) -> list[OutputItem]             a streamed response

What is found (providers.md §7), whatever the provider, plus a generic net:

    OpenAI Images         data[].b64_json; data[].url (a link, or a data: URL)
    OpenAI Responses      output[] items of type image_generation_call: result (base64)
    OpenAI image streams  image_generation.partial_image / .completed, image_edit.*: b64_json;
                          response.image_generation_call.partial_image: partial_image_b64
    Gemini                candidates[].content.parts[].inlineData / inline_data {mimeType, data}
    Imagen                predictions[].bytesBase64Encoded
    ElevenLabs            raw audio bodies; JSON audio_base64 (with-timestamps), WS frames' audio
    Stability             raw image bodies; JSON image; v1 artifacts[].base64
    anything else         a data: URL or a base64 run anywhere in a JSON string, recognised by magic
                          bytes; a raw body whose magic bytes say image, audio or video

Items carry their bytes only for as long as the caller holds them: nothing here writes, logs or
caches content. Locations are paths in the style of gateway.content (`body.data[0].b64_json`,
`sse[3].data.b64_json`), never content. Limits come from ContentLimits (base64 size, JSON depth);
past them the functions raise the gateway's InspectionError subclasses, so the caller can fail
closed (withhold) rather than pass unexamined media.

The SSE scanner never holds the stream up: the caller forwards each chunk unchanged and hands the
scanner a reference to it; the scanner copies only the bytes of the event in progress, and parses
an event only when it could carry media (a known key, or enough bytes to hold a base64 file).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import brotli
import zstandard

from gateway.content.embedded import decode_base64, find_blobs, find_references, looks_base64, parse_data_url
from gateway.content.inputs import MediaItem
from gateway.content.jsonbody import parse_json
from gateway.content.limits import ContentLimits
from gateway.content.location import key_label
from gateway.content.media import media_kind
from gateway.content.sniff import Sniffed, sniff
from gateway.errors import TooLargeError, UninspectableError

__all__ = [
    "OutputItem",
    "OutputKind",
    "OutputReference",
    "OutputSSEScanner",
    "extract_output_urls",
    "extract_outputs",
]

OutputKind = Literal["image", "audio", "video"]
_OUTPUT_KINDS = frozenset({"image", "audio", "video"})

# Keys whose string value is base64 media by the provider's documentation (sniffed or not).
_BASE64_KEYS = frozenset(
    {"b64_json", "result", "partial_image_b64", "bytesBase64Encoded", "audio_base64", "image", "base64", "audio"}
)
_URL_KEYS = frozenset({"url", "uri", "fileUri", "file_uri", "video", "sample", "image_url", "audio_url", "video_url"})
# Declared types for base64 the magic bytes cannot name (raw PCM from ElevenLabs/OpenAI audio).
_RAW_AUDIO_KEYS = frozenset({"audio_base64", "audio"})
_JSON_TYPES = re.compile(r"^(application|text)/([a-z0-9.+\-]*\+)?(json|x-ndjson|jsonl?)\b", re.I)
_SSE_TYPE = re.compile(r"^text/event-stream\b", re.I)
_MIN_MEDIA_BYTES = 16


@dataclass(frozen=True, slots=True)
class OutputItem:
    """One generated image, audio or video item in a response: its bytes and where it sat."""

    data: bytes = field(repr=False)
    kind: OutputKind
    media_type: str
    """the sniffed type (`image/png`), else the type the response declared (`audio/pcm;rate=24000`)."""
    location: str
    partial: bool = False
    """a streamed preview (`partial_image`), superseded by a later complete item."""

    @property
    def size(self) -> int:
        return len(self.data)

    def as_media_item(self) -> MediaItem:
        """The item as gateway.content sees inputs, for decode_image_frames / decode_audio / detectors."""
        return MediaItem(self.data, self.kind, self.media_type, self.media_type, self.location)


@dataclass(frozen=True, slots=True)
class OutputReference:
    """Generated media returned as a link (dall-e-2 `url`, Veo file URIs, async job results)."""

    url: str
    location: str


def extract_outputs(
    content_type: str, body: bytes, provider_format: str, limits: ContentLimits | None = None
) -> list[OutputItem]:
    """Every generated image, audio and video item in a whole (non-streamed) response body.

    `provider_format` is the tool's wire format (`openai`, `gemini`, `elevenlabs`, `stability`, …);
    it only decides what un-sniffable base64 audio is (raw PCM). SSE bodies read whole are scanned too.
    """
    limits = limits or ContentLimits()
    if not body:
        return []
    media_type = content_type.split(";", 1)[0].strip().lower()
    if _SSE_TYPE.match(media_type):
        scanner = OutputSSEScanner(provider_format, limits)
        return scanner.feed(body) + scanner.close()
    raw = _raw_item(body, media_type, "body", limits)
    if raw is not None:
        return [raw]
    if _JSON_TYPES.match(media_type) or body.lstrip()[:1] in (b"{", b"["):
        value = parse_json(body, limits.max_json_depth).value
        return list(_walk(value, "body", provider_format, limits))
    return []


def extract_output_urls(content_type: str, body: bytes, provider_format: str) -> list[OutputReference]:
    """Remote URLs a response returns as generated media (to log, or to fetch and fingerprint)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body or not (_JSON_TYPES.match(media_type) or body.lstrip()[:1] in (b"{", b"[")):
        return []
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return []
    return list(_walk_urls(value, "body"))


class OutputSSEScanner:
    """Finds generated media in a Server-Sent Events stream, fed chunk by chunk as it is forwarded.

    `feed(chunk)` returns the items completed by this chunk; `close()` those of a final event with
    no blank line after it. Events may be split anywhere, lines may end in CR, LF or CRLF.
    An event larger than `max_event_bytes` (default: the base64 limit, as text) raises TooLargeError.
    Give `content_encoding` (the response's Content-Encoding) when the chunks are the raw wire bytes
    of a compressed stream (mitmproxy's stream callable sees them so): the scanner decompresses its copy.
    """

    def __init__(
        self, provider_format: str, limits: ContentLimits | None = None, content_encoding: str | None = None
    ) -> None:
        self.provider_format = provider_format
        self.limits = limits or ContentLimits()
        self._decoder = _stream_decoder(content_encoding)
        self.max_event_bytes = self.limits.max_base64_bytes * 4 // 3 + 65_536
        self._buffer = bytearray()
        self._scanned = 0
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_name = ""
        self._index = 0

    @property
    def events(self) -> int:
        """Events dispatched so far."""
        return self._index

    def feed(self, chunk: bytes) -> list[OutputItem]:
        """Take a copy of what is needed from `chunk`; return the media items of completed events."""
        if self._decoder is None:
            self._buffer += chunk
        else:
            try:
                self._buffer += self._decoder(chunk)
            except Exception as exc:  # zlib.error, brotli.error, ZstdError: the boundary to the decoders
                problem = f"cannot decode the streamed body ({type(exc).__name__})"
                raise UninspectableError(problem, location="sse") from exc
        found: list[OutputItem] = []
        for line in self._lines(final=False):
            found += self._line(line)
        return found

    def close(self) -> list[OutputItem]:
        """End of stream: dispatch a last event left without its blank line."""
        found: list[OutputItem] = []
        for line in self._lines(final=True):
            found += self._line(line)
        if self._buffer:
            found += self._line(bytes(self._buffer))
            self._buffer.clear()
        found += self._dispatch()
        return found

    def _lines(self, final: bool) -> Iterator[bytes]:
        buffer = self._buffer
        start = 0
        position = self._scanned
        while True:
            cr = buffer.find(b"\r", position)
            lf = buffer.find(b"\n", position)
            if cr < 0 and lf < 0:
                break
            end = lf if cr < 0 else cr if lf < 0 else min(cr, lf)
            if buffer[end] == 0x0D and end + 1 == len(buffer) and not final:
                break  # a CR at the end of the chunk: wait to see whether an LF follows
            line = bytes(buffer[start:end])
            step = 2 if buffer[end : end + 2] == b"\r\n" else 1
            start = position = end + step
            yield line
        del buffer[:start]
        self._scanned = len(buffer) - (1 if buffer.endswith(b"\r") else 0)
        if len(buffer) + self._data_size > self.max_event_bytes:
            raise TooLargeError(
                f"streamed event larger than {self.max_event_bytes} bytes", location=f"sse[{self._index}]"
            )

    def _line(self, line: bytes) -> list[OutputItem]:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return []
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self.max_event_bytes:
                raise TooLargeError(
                    f"streamed event larger than {self.max_event_bytes} bytes", location=f"sse[{self._index}]"
                )
        elif name == b"event":
            self._event_name = value.decode("utf-8", "replace")
        return []

    def _dispatch(self) -> list[OutputItem]:
        if not self._data:
            self._event_name = ""
            return []
        data = b"\n".join(self._data)
        name = self._event_name
        index = self._index
        self._index += 1
        self._data = []
        self._data_size = 0
        self._event_name = ""
        if not _may_carry_media(data):
            return []
        location = f"sse[{index}].data"
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            return [item for item in _strings(data.decode("utf-8", "replace"), location, self.limits)]
        partial = "partial_image" in name or (isinstance(value, dict) and "partial_image" in str(value.get("type", "")))
        items = list(_walk(value, location, self.provider_format, self.limits))
        if partial:
            items = [OutputItem(i.data, i.kind, i.media_type, i.location, partial=True) for i in items]
        return items


def _stream_decoder(content_encoding: str | None) -> Callable[[bytes], bytes] | None:
    """An incremental decoder for one Content-Encoding (gzip, deflate, br, zstd), or None for identity."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if coding == "deflate":
        return zlib.decompressobj().decompress  # zlib-wrapped, as servers send it
    if coding == "br":
        return brotli.Decompressor().process
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    raise UninspectableError(f"unsupported streamed content encoding {coding!r}", location="sse")


_MEDIA_MARKERS = (b"b64_json", b"partial_image_b64", b"inlineData", b"inline_data", b"bytesBase64Encoded",
                  b"audio_base64", b'"result"', b'"audio"', b'"image"', b"base64", b"data:")  # fmt: skip
_BARE_BASE64_MIN = 1024


def _may_carry_media(data: bytes) -> bool:
    """Cheap pre-filter for streamed events: text deltas are small and name none of the media keys."""
    return len(data) >= _BARE_BASE64_MIN or any(marker in data for marker in _MEDIA_MARKERS)


def _kind(data: bytes, sniffed: Sniffed) -> OutputKind:
    """Images by their magic; audio or video by the container's streams (see `media_kind`)."""
    return "image" if sniffed.kind == "image" else media_kind(data, sniffed.kind)


def _raw_item(body: bytes, media_type: str, location: str, limits: ContentLimits) -> OutputItem | None:
    """A body that is itself media (ElevenLabs audio, Stability images, downloads)."""
    sniffed = sniff(body)
    if sniffed is not None and sniffed.kind in _OUTPUT_KINDS:
        return OutputItem(body, _kind(body, sniffed), sniffed.mime, location)
    if media_type.startswith("audio/") and ("pcm" in media_type or "l16" in media_type or "basic" in media_type):
        return OutputItem(body, "audio", media_type, location)
    return None


def _walk(value: Any, location: str, provider_format: str, limits: ContentLimits) -> Iterator[OutputItem]:
    """Depth-first over a parsed JSON value, yielding the media items its strings carry."""
    stack: list[tuple[Any, str, str, dict[str, Any] | None]] = [(value, location, "", None)]
    while stack:
        node, where, key, parent = stack.pop()
        if isinstance(node, dict):
            for child_key, child in reversed(list(node.items())):
                stack.append((child, f"{where}.{_label(child_key)}", child_key, node))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                stack.append((node[index], f"{where}[{index}]", key, parent))
        elif isinstance(node, str) and len(node) >= _MIN_MEDIA_BYTES:
            yield from _string_value(node, where, key, parent, provider_format, limits)


def _string_value(
    text: str, where: str, key: str, parent: dict[str, Any] | None, provider_format: str, limits: ContentLimits
) -> Iterator[OutputItem]:
    declared = _declared_type(parent)
    if key == "data" and declared and looks_base64(text):  # Gemini inlineData.data (mimeType beside it)
        item = _decoded(text, where, declared, limits)
        if item is not None:
            yield item
            return
    raw_audio = key in _RAW_AUDIO_KEYS or (key == "data" and parent is not None and "transcript" in parent)
    if (key in _BASE64_KEYS or raw_audio) and looks_base64(text):
        fallback = "audio/pcm" if raw_audio and provider_format in ("elevenlabs", "openai") else ""
        item = _decoded(text, where, declared or fallback, limits)
        if item is not None:
            yield item
            return
    if text[:5].lower() == "data:":
        blob = parse_data_url(text, limits.max_base64_bytes, where)
        if blob is not None:
            item = _classified(blob.data, where, blob.declared_type)
            if item is not None:
                yield item
            return
    yield from _strings(text, where, limits)


def _strings(text: str, where: str, limits: ContentLimits) -> Iterator[OutputItem]:
    """The generic net: data URLs and magic-recognised base64 runs anywhere inside a string."""
    for blob in find_blobs(text, limits.max_base64_bytes, where):
        item = _classified(blob.data, f"{where}@{blob.start}" if blob.start else where, blob.declared_type)
        if item is not None:
            yield item


def _decoded(text: str, where: str, declared: str, limits: ContentLimits) -> OutputItem | None:
    """Base64 under a media key; a string that only looks like base64 (`"result": "ok…"`) is None."""
    try:
        data = decode_base64(text, limits.max_base64_bytes, where)
    except UninspectableError:
        return None
    return _classified(data, where, declared)


def _classified(data: bytes, where: str, declared: str) -> OutputItem | None:
    """An item when the bytes are media by their magic, or by a declared media type."""
    if len(data) < _MIN_MEDIA_BYTES:
        return None
    sniffed = sniff(data)
    if sniffed is not None:
        if sniffed.kind in _OUTPUT_KINDS:
            return OutputItem(data, _kind(data, sniffed), sniffed.mime, where)
        return None
    major = declared.split("/", 1)[0]
    if major in _OUTPUT_KINDS:
        return OutputItem(data, major, declared, where)  # type: ignore[arg-type]
    return None


def _declared_type(parent: dict[str, Any] | None) -> str:
    if not parent:
        return ""
    for key in ("mimeType", "mime_type", "media_type", "content_type", "output_format"):
        value = parent.get(key)
        if isinstance(value, str) and "/" in value:
            return value.lower()
    return ""


def _walk_urls(value: Any, location: str) -> Iterator[OutputReference]:
    stack: list[tuple[Any, str, str]] = [(value, location, "")]
    while stack:
        node, where, key = stack.pop()
        if isinstance(node, dict):
            for child_key, child in reversed(list(node.items())):
                stack.append((child, f"{where}.{_label(child_key)}", child_key))
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                stack.append((node[index], f"{where}[{index}]", key))
        elif isinstance(node, str) and (key in _URL_KEYS or key == "output"):
            for kind, found in find_references(node):
                if kind == "url":
                    yield OutputReference(found, where)


def _label(key: str) -> str:
    return key_label(key, 0) or "{?}"
