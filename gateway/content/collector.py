"""The Collector: one request's Inputs, gathered while the decoders walk it, within limits.

Every decoder feeds the same Collector, so every byte and every item is charged to one budget:

    add_json    a parsed JSON document: every string leaf, shadowed duplicate, inline media part
    add_string  one string: nested JSON, data URLs, base64 runs, URLs and file ids, then the text
    add_blob    bytes: sniffed, recorded as media (or text), then expanded if it is a container

Containers (archives, documents, SVG) are expanded by the expander registered for their sniffed
type; images and audio/video are probed so that a bomb or an undecodable file fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from gateway.errors import TooDeepError, TooLargeError, UninspectableError

from . import archive, document, image, media
from .embedded import Blob, decode_base64, find_blobs, find_references, looks_base64, parse_data_url
from .inputs import Inputs, MediaItem, Reference, TextItem
from .jsonbody import ParsedJson, parse_json
from .limits import ContentLimits
from .location import key_label
from .sniff import Sniffed, decode_text, sniff
from .unescape import UNESCAPED, unescaped

__all__ = ["Collector"]

Expander = Callable[["Collector", bytes, str, int], None]

_CREDENTIAL_KEY = re.compile(
    r"(?:x[-_]?)?(?:xi[-_]?)?(?:goog[-_]?)?(?:api[-_]?key|authorization|access[-_]?token|refresh[-_]?token"
    r"|client[-_]?secret|password|secret|bearer|token)",
    re.I,
)
_MIME_KEYS = ("mimeType", "mime_type", "media_type", "mediaType", "content_type", "contentType", "format")
_DATA_KEYS = ("data", "bytesBase64Encoded", "bytes_base64_encoded", "b64_json", "file_data", "audio", "image")
_AUDIO_FORMATS = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
    "pcm16": "audio/pcm;rate=24000",
    "pcm": "audio/pcm;rate=24000",
    "g711_ulaw": "audio/pcmu",
    "g711_alaw": "audio/pcma",
}
_RAW_AUDIO = ("audio/pcm", "audio/l16", "audio/pcmu", "audio/pcma", "audio/raw", "audio/x-raw")
_TEXT_DOCUMENTS = frozenset({"text/html", "application/xml", "text/rtf"})


class Collector:
    """Accumulates one request's Inputs, charging every decoded byte and every item to the limits."""

    def __init__(self, limits: ContentLimits) -> None:
        self.limits = limits
        self.decoded_bytes = 0
        self._texts: list[TextItem] = []
        self._media: list[MediaItem] = []
        self._references: list[Reference] = []
        self._seen_references: set[tuple[str, str, str]] = set()

    def inputs(self) -> Inputs:
        return Inputs(tuple(self._texts), tuple(self._media), tuple(self._references))

    # -- accounting ------------------------------------------------------------------------------

    def charge(self, size: int, location: str) -> None:
        """Count `size` decoded bytes against the request's total."""
        self.decoded_bytes += size
        if self.decoded_bytes > self.limits.max_decoded_bytes:
            raise TooLargeError(
                f"decoded content exceeds {self.limits.max_decoded_bytes} bytes", location=location
            )

    def check_depth(self, depth: int, location: str) -> None:
        if depth > self.limits.max_archive_depth:
            raise TooDeepError(
                f"containers nested deeper than {self.limits.max_archive_depth} levels", location=location
            )

    def _admit(self, location: str) -> None:
        count = len(self._texts) + len(self._media) + len(self._references)
        if count >= self.limits.max_items:
            raise TooLargeError(f"more than {self.limits.max_items} inputs in one request", location=location)

    # -- leaves ----------------------------------------------------------------------------------

    def add_text(self, text: str, location: str) -> None:
        """A text, and beside it (at `location#unescaped`) the same text with its percent-escapes,
        HTML character references and `\\uXXXX` escapes decoded, when it has any: a model reads
        `Eileen%20Collins` or `&#69;ileen` as the name, so the detectors must too."""
        if text.strip():
            self._admit(location)
            self._texts.append(TextItem(text, location))
            decoded = unescaped(text)
            if decoded is not None and decoded.strip():
                self._admit(location)
                self._texts.append(TextItem(decoded, location + UNESCAPED))

    def add_reference(self, kind: Literal["url", "file_id"], value: str, location: str) -> None:
        key = (kind, value, location)
        if key not in self._seen_references:
            self._admit(location)
            self._seen_references.add(key)
            self._references.append(Reference(kind, value, location))

    def add_media(self, data: bytes, sniffed: Sniffed, declared_type: str, location: str, name: str) -> None:
        self._admit(location)
        self._media.append(MediaItem(data, sniffed.kind, sniffed.mime, declared_type, location, name))

    # -- JSON ------------------------------------------------------------------------------------

    def add_json(self, parsed: ParsedJson, location: str, depth: int, *, request_level: bool) -> None:
        """Every value of a JSON document, including the ones shadowed by duplicate keys."""
        self._walk(parsed.value, location, depth, 1, request_level)
        for index, value in enumerate(parsed.shadowed):
            self._walk(value, f"{location}.$shadowed[{index}]", depth, 1, request_level)

    def _walk(self, node: Any, path: str, depth: int, level: int, request_level: bool) -> None:
        if isinstance(node, str):
            self.add_string(node, path, depth, request_level=request_level)
            return
        if not isinstance(node, (dict, list)):
            return
        if level > self.limits.max_json_depth:
            raise TooDeepError(f"JSON nesting deeper than {self.limits.max_json_depth} levels", location=path)
        if isinstance(node, list):
            for index, child in enumerate(node):
                self._walk(child, f"{path}[{index}]", depth, level + 1, request_level)
            return
        carried = _inline_data_key(node)
        if carried is not None:
            self._add_inline_data(node, carried, path, depth)
        for index, (key, child) in enumerate(node.items()):
            if key == carried or _is_credential(key, child):
                continue
            label = key_label(key, index)
            if label is None:
                child_path = f"{path}{{{index}}}"
                self.add_string(key, f"{child_path}#key", depth, request_level=request_level)
            else:
                child_path = f"{path}.{label}"
            self._walk(child, child_path, depth, level + 1, request_level)

    def _add_inline_data(self, node: dict[str, Any], key: str, path: str, depth: int) -> None:
        """An inline media part: Gemini inlineData, Anthropic base64 source, OpenAI input_audio..."""
        value: str = node[key]
        location = f"{path}.{key}"
        declared = _declared_type(node)
        media_declared = not declared.startswith(("text/", "application/json"))
        if not looks_base64(value):
            if media_declared:
                raise UninspectableError("inline media data is not base64", location=location)
            self.add_string(value, location, depth, request_level=False)
            return
        try:
            data = decode_base64(value, self.limits.max_base64_bytes, location)
        except UninspectableError:
            if media_declared:
                raise
            self.add_string(value, location, depth, request_level=False)
            return
        raw_audio = declared.startswith(_RAW_AUDIO) or (not declared and node.get("type") == "input_audio")
        if raw_audio and not declared:
            declared = "audio/pcm"
        self.add_blob(data, location, depth + 1, declared_type=declared, raw_audio=raw_audio)

    # -- strings ---------------------------------------------------------------------------------

    def add_string(self, text: str, location: str, depth: int, *, request_level: bool) -> None:
        """A string: nested JSON is walked, embedded media decoded, references noted, the rest is text."""
        if not text.strip():
            return
        if self._add_nested_json(text, location, depth, request_level):
            return
        whole = parse_data_url(text, self.limits.max_base64_bytes, location)
        if whole is not None:
            self.add_blob(whole.data, location, depth + 1, declared_type=whole.declared_type)
            return
        blobs = find_blobs(text, self.limits.max_base64_bytes, location) if len(text) >= 24 else []
        for blob in blobs:
            whole_string = blob.start == 0 and blob.end >= len(text.rstrip())
            where = location if whole_string else f"{location}@{blob.start}"
            self.add_blob(blob.data, where, depth + 1, declared_type=blob.declared_type)
        remaining = _without(text, blobs)
        self.add_text(remaining, location)
        if request_level:
            for kind, value in find_references(remaining):
                self.add_reference(kind, value, location)

    def _add_nested_json(self, text: str, location: str, depth: int, request_level: bool) -> bool:
        stripped = text.strip()
        if len(stripped) < 2 or (stripped[0], stripped[-1]) not in (("{", "}"), ("[", "]")):
            return False
        try:
            parsed = parse_json(stripped, self.limits.max_json_depth)
        except UninspectableError:
            return False
        self.check_depth(depth + 1, location)
        self.add_json(parsed, f"{location}.$json", depth + 1, request_level=request_level)
        return True

    # -- bytes -----------------------------------------------------------------------------------

    def add_blob(
        self,
        data: bytes,
        location: str,
        depth: int,
        *,
        declared_type: str = "",
        name: str = "",
        raw_audio: bool = False,
    ) -> None:
        """Bytes: sniffed (never trusting `declared_type`), recorded, and expanded if a container."""
        if not data:
            return
        self.check_depth(depth, location)
        self.charge(len(data), location)
        sniffed = sniff(data)
        if raw_audio and not _audio_container(sniffed):
            # the protocol says raw PCM, and the provider hears these bytes as PCM: a weak signature
            # (`\xff\xff\x00\x00` is MPEG sync, samples 0, 1 an icon header) or another format's
            # magic at the start of a chunk is chance, not a file
            self.add_media(data, Sniffed("audio/pcm", "audio"), declared_type, location, name)
            return
        if sniffed is None:
            self._add_unrecognised(data, location, depth, declared_type, name)
            return
        if sniffed.mime == "application/zip":
            sniffed = archive.refine_zip_type(self, data, location)
        if sniffed.kind in _AV_KINDS:
            kind = media.probe_media(data, self.limits, location)
            self.add_media(data, sniffed if kind == sniffed.kind else replace(sniffed, kind=kind), declared_type,
                           location, name)
            return
        if sniffed.mime not in _TEXT_DOCUMENTS:
            self.add_media(data, sniffed, declared_type, location, name)
        expander = _EXPANDERS.get(sniffed.mime) or _KIND_EXPANDERS.get(sniffed.kind)
        if expander is not None:
            expander(self, data, location, depth)

    def _add_unrecognised(self, data: bytes, location: str, depth: int, declared_type: str, name: str) -> None:
        text = decode_text(data)
        if text is None:
            raise UninspectableError(f"unrecognised binary content ({len(data)} bytes)", location=location)
        self.add_string(text, location, depth, request_level=False)


def _audio_container(sniffed: Sniffed | None) -> bool:
    """A strong audio or video signature (WAV, Ogg, FLAC, WebM, MP4...): a container even where raw PCM was said."""
    return sniffed is not None and sniffed.strong and sniffed.kind in _AV_KINDS


def _is_credential(key: str, value: Any) -> bool:
    """A token-shaped value under a credential key: never captured (prose under any key still is)."""
    return (
        isinstance(value, str)
        and _CREDENTIAL_KEY.fullmatch(key) is not None
        and not any(ch.isspace() for ch in value.strip())
    )


def _inline_data_key(node: dict[str, Any]) -> str | None:
    """The key holding base64 media when `node` is an inline media part, else None."""
    if node.keys().isdisjoint(_DATA_KEYS):
        return None
    kind = node.get("type")
    if kind == "text":
        return None
    declared = _declared_type(node)
    for key in _DATA_KEYS:
        value = node.get(key)
        if not isinstance(value, str) or not value or value.lstrip()[:5].lower() == "data:":
            continue
        if "/" in declared or kind == "base64" or (key == "audio" and kind == "input_audio"):
            return key
    return None


def _declared_type(node: dict[str, Any]) -> str:
    for key in _MIME_KEYS:
        value = node.get(key)
        if isinstance(value, str) and value:
            lowered = value.strip().lower()
            return _AUDIO_FORMATS.get(lowered, lowered)
    return ""


def _without(text: str, blobs: list[Blob]) -> str:
    if not blobs:
        return text
    pieces: list[str] = []
    cursor = 0
    for blob in blobs:
        pieces.append(text[cursor : blob.start])
        cursor = max(cursor, blob.end)
    pieces.append(text[cursor:])
    return " ".join(piece for piece in pieces if piece.strip())


def _unsupported(collector: Collector, data: bytes, location: str, depth: int) -> None:
    raise UninspectableError("unsupported container format", location=location)


_EXPANDERS: dict[str, Expander] = {
    **{mime: archive.expand_zip for mime in archive.ZIP_TYPES},
    "application/x-tar": archive.expand_tar,
    "application/gzip": archive.expand_compressed,
    "application/x-bzip2": archive.expand_compressed,
    "application/x-xz": archive.expand_compressed,
    "application/zstd": archive.expand_compressed,
    "application/pdf": document.expand_pdf,
    "image/svg+xml": document.expand_svg,
    "text/html": document.expand_html,
    "application/xml": document.expand_xml,
    "text/rtf": document.expand_rtf,
    "application/x-7z-compressed": _unsupported,
    "application/vnd.rar": _unsupported,
    "application/x-ole-storage": _unsupported,
}
_KIND_EXPANDERS: dict[str, Expander] = {"image": image.probe_image}
_AV_KINDS = frozenset({"audio", "video"})
"""probed by `media.probe_media`, which also decides between the two by the container's streams."""
