"""extract_inputs: one HTTP request's Inputs, from its method, path, query, headers and body.

The body arrives already Content-Encoding-decoded (see `decode_body`). It is dispatched by its
declared Content-Type only to choose a parser; every binary item is then sniffed, never trusted.
A body the declared parser cannot read is uninspectable (fail closed), never passed as opaque.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import TooLargeError

from .collector import Collector
from .failure import translated_unexpected
from .form import add_multipart, add_urlencoded
from .inputs import Inputs
from .jsonbody import ParsedJson, parse_json
from .limits import ContentLimits
from .location import field_label
from .sniff import decode_text

__all__ = ["RequestContent", "extract_inputs"]

_SKIPPED_HEADERS = frozenset(
    {
        "host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection",
        "keep-alive", "proxy-connection", "upgrade", "te", "trailer", "expect", "accept", "accept-encoding",
        "accept-language", "accept-charset", "user-agent", "cookie", "cache-control", "pragma", "priority",
        "dnt", "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "origin",
        "authorization", "proxy-authorization", "x-api-key", "api-key", "xi-api-key", "x-goog-api-key",
        "x-key", "openai-organization", "openai-project", "anthropic-version", "anthropic-beta",
        "x-runway-version", "traceparent", "tracestate", "baggage", "sentry-trace", "x-request-id",
        "x-csrf-token", "x-xsrf-token", "x-goog-upload-protocol", "x-goog-upload-command",
        "x-goog-upload-offset", "x-goog-upload-header-content-length", "sec-websocket-key",
        "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
    }
)
_SKIPPED_HEADER_PREFIXES = ("sec-ch-", "sec-fetch-", "x-stainless-", "x-forwarded-", "cf-", "x-amz-")
_CREDENTIAL_NAME = re.compile(r"sess|token|auth|key|sid|csrf|xsrf|secret|jwt|^__secure-|^__host-|^cf_", re.I)
_JSON_TYPES = ("application/json", "text/json")
_NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/ndjson")
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "text/tab-separated-values", "text/x-markdown")


@dataclass(frozen=True, slots=True)
class RequestContent:
    """What the decoders need from one HTTP request; `body` is already Content-Encoding-decoded."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = ""
    parsed_json: ParsedJson | None = None
    """the body as already parsed by the caller, or None to parse it here when it is JSON."""


def extract_inputs(request: RequestContent, limits: ContentLimits) -> Inputs:
    """Every text, media item and reference the request carries, with where each sat.

    Raises TooLargeError / TooDeepError past a limit and UninspectableError when something cannot
    be decoded; never any other exception.
    """
    with translated_unexpected("body"):
        sink = Collector(limits)
        if len(request.body) > limits.max_decoded_bytes:
            raise TooLargeError(f"body exceeds {limits.max_decoded_bytes} bytes", location="body")
        _add_query(sink, request.query)
        _add_headers(sink, request.headers)
        _add_body(sink, request)
        return sink.inputs()


def _add_query(sink: Collector, query: tuple[tuple[str, str], ...]) -> None:
    for index, (name, value) in enumerate(query):
        sink.add_string(value, f"query.{field_label(name, index)}", 0, request_level=True)


def _add_headers(sink: Collector, headers: tuple[tuple[str, str], ...]) -> None:
    """Headers that can carry text (not credentials, not transport), and non-credential cookies."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":
            _add_cookies(sink, value)
        elif lowered not in _SKIPPED_HEADERS and not lowered.startswith(_SKIPPED_HEADER_PREFIXES):
            sink.add_string(value, f"header.{field_label(lowered, 0)}", 0, request_level=True)


def _add_cookies(sink: Collector, header: str) -> None:
    for index, pair in enumerate(header.split(";")):
        name, _, value = pair.strip().partition("=")
        if value and not _CREDENTIAL_NAME.search(name):
            sink.add_string(value, f"cookie.{field_label(name, index)}", 0, request_level=True)


def _add_body(sink: Collector, request: RequestContent) -> None:
    body = request.body
    media_type = request.content_type.split(";", 1)[0].strip().lower()
    if request.parsed_json is not None:
        sink.charge(len(body), "body")
        sink.add_json(request.parsed_json, "body", 0, request_level=True)
    elif not body:
        return
    elif _is_json_type(media_type) or (not media_type and body.lstrip()[:1] in (b"{", b"[")):
        sink.charge(len(body), "body")
        sink.add_json(parse_json(body, sink.limits.max_json_depth), "body", 0, request_level=True)
    elif media_type in _NDJSON_TYPES:
        sink.charge(len(body), "body")
        _add_json_lines(sink, body)
    elif media_type.startswith("multipart/"):
        add_multipart(sink, body, request.content_type, "form", 0)
    elif media_type == "application/x-www-form-urlencoded":
        sink.charge(len(body), "body")
        add_urlencoded(sink, body, "form", 0)
    elif media_type in _TEXT_TYPES and (text := decode_text(body)) is not None:
        sink.charge(len(body), "body")
        sink.add_string(text, "body", 0, request_level=True)
    else:
        sink.add_blob(body, "body", 0, declared_type=media_type, name=_upload_name(request.headers))


def _add_json_lines(sink: Collector, body: bytes) -> None:
    for number, line in enumerate(body.splitlines()):
        if line.strip():
            parsed = parse_json(line, sink.limits.max_json_depth)
            sink.add_json(parsed, f"body.line[{number}]", 0, request_level=True)


def _is_json_type(media_type: str) -> bool:
    return media_type in _JSON_TYPES or media_type.endswith("+json")


def _upload_name(headers: tuple[tuple[str, str], ...]) -> str:
    """The file name a raw upload declares (Content-Disposition, or Gemini's upload header)."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "x-goog-upload-file-name":
            return value
        if lowered == "content-disposition":
            match = re.search(r'filename="?([^";]+)', value)
            if match:
                return match.group(1)
    return ""
