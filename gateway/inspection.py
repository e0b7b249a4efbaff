"""Inspect one request body and work out what may be forwarded: the gateway's pure core.

    request bytes ─► decode Content-Encoding (capped) ─► parse JSON (duplicates seen, depth bound)
                 ─► retention/training rewrites + tenant pin ─► extract inputs ─► decide

The result says what to forward (a new body only when something changed, or when duplicate keys
made the original ambiguous) and why. Any inspection error becomes a blocking reason here; the
adapter turns anything unexpected into a `gateway.error` block.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from gateway.config.models import Action, JsonRemove, JsonSet, Limits, Production, Rewrite
from gateway.content import ContentLimits, RequestContent, extract_inputs, extract_websocket_inputs
from gateway.content.encoding import decode_body
from gateway.content.inputs import Inputs
from gateway.content.jsonbody import ParsedJson, dump_json, parse_json, with_members_appended
from gateway.decision import Decision, Reason, RewriteRecord
from gateway.errors import InspectionError, TooLargeError
from gateway.policy import decide
from gateway.redact import Redaction, RedactionError, apply_to_json, plan_redaction
from gateway.tools.catalog import Classification
from gateway.tools.rewrite import RewriteResult, apply_rewrites, pin_tenant

__all__ = [
    "FindingsHook",
    "HttpRequest",
    "Inspection",
    "MessageInspection",
    "ReferenceHook",
    "content_limits",
    "inspect_message",
    "inspect_request",
    "split_target",
]

Pairs = tuple[tuple[str, str], ...]
FindingsHook = Callable[[Inputs], list[Reason]]
"""Turns a request's Inputs into reasons (detectors and the production's policy plug in here)."""
ReferenceHook = Callable[[Inputs], tuple[list[Reason], Inputs]]
"""Checks a request's references: reasons, plus what fetched references carry (inspected like uploads)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request the core needs, independent of any proxy library."""

    method: str
    host: str
    target: str
    """path with query string, as sent."""
    headers: Pairs
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Inspection:
    """What was decided about a request body and what to forward."""

    decision: Decision
    rewrites: tuple[RewriteRecord, ...] = ()
    body: bytes | None = field(default=None, repr=False)
    """the body to forward, already decoded (drop Content-Encoding); None = forward the original."""
    headers: Pairs | None = None
    """the headers to forward; None = unchanged."""
    target: str | None = None
    """the path and query to forward; None = unchanged."""
    inputs: Inputs = field(default_factory=Inputs, repr=False)
    decoded_bytes: int = 0
    elapsed_ms: float = 0.0
    redaction: Redaction | None = field(default=None, repr=False)
    """placeholders that replaced personal data and secrets (the mapping never leaves memory in clear)."""


_JSON_TYPES = ("application/json", "text/json")


def split_target(target: str) -> tuple[str, Pairs]:
    path, _, query = target.partition("?")
    return path, tuple(parse_qsl(query, keep_blank_values=True))


def inspect_request(
    request: HttpRequest,
    classification: Classification,
    production: Production,
    access: list[Reason],
    limits: Limits,
    findings: FindingsHook | None = None,
    references: ReferenceHook | None = None,
) -> Inspection:
    """Inspect, rewrite and decide; never raises for bad input (it becomes a blocking reason)."""
    started = time.perf_counter()
    try:
        result = _inspect(request, classification, production, access, limits, findings, references)
    except InspectionError as exc:
        reason = Reason(exc.rule, Action.BLOCK, str(exc), location=exc.location)
        result = Inspection(decide(access, [reason]))
    elapsed = (time.perf_counter() - started) * 1000
    return replace(result, elapsed_ms=elapsed)


def _inspect(
    request: HttpRequest,
    classification: Classification,
    production: Production,
    access: list[Reason],
    limits: Limits,
    findings_hook: FindingsHook | None,
    reference_hook: ReferenceHook | None,
) -> Inspection:
    if len(request.body) > limits.max_body_bytes:
        raise _too_large(len(request.body), limits.max_body_bytes)
    encoding = request.header("content-encoding")
    body = decode_body(request.body, encoding, limits.max_decoded_bytes) if encoding else request.body
    tool, endpoint = classification.tool, classification.endpoint
    rewrites = [*tool.rewrites, *(endpoint.rewrites if endpoint else [])]
    json_rewrites = any(isinstance(r, (JsonSet, JsonRemove)) for r in rewrites)
    parsed = _parse_if_json(request, body, limits, json_rewrites)
    findings: list[Reason] = []
    if parsed is None and body.strip() and json_rewrites:
        findings.append(Reason("retention.unenforceable", Action.BLOCK,
                               "the endpoint's retention settings can only be enforced on a JSON body",
                               location="body"))
    value = parsed.value if parsed else None
    path, query = split_target(request.target)
    result = apply_rewrites(rewrites, value, query, request.headers)
    records = list(result.records)
    headers = result.headers
    grant = production.tools.get(tool.id)
    headers_changed = result.headers_changed
    if tool.tenant is not None and grant is not None and grant.tenant:
        headers, record = pin_tenant(headers, tool.tenant.header, grant.tenant)
        if record is not None:
            records.append(record)
            headers_changed = True
    content = RequestContent(request.method, path, query, request.headers, body, request.header("content-type") or "",
                             parsed)
    inputs = extract_inputs(content, content_limits(limits))
    if reference_hook is not None and inputs.references:
        reference_reasons, fetched = reference_hook(inputs)
        findings.extend(reference_reasons)
        inputs = inputs.merged(fetched)
    if findings_hook is not None:
        findings.extend(findings_hook(inputs))
    decision = decide(access, findings)
    redaction = None
    if decision.action == Action.REDACT:
        redaction = _plan_redaction(decision, inputs, parsed)
        assert parsed is not None
        records.extend(RewriteRecord(f"redact.{category.lower()}", "body", f"redacted x{count}")
                       for category, count in sorted(redaction.counts().items()))
        new_body: bytes | None = dump_json(apply_to_json(parsed.value, redaction))
    else:
        new_body = _forward_body(body, parsed, result, encoding, records)
    return Inspection(
        decision=decision,
        rewrites=tuple(records),
        body=new_body,
        headers=headers if headers_changed else None,
        target=(path + ("?" + urlencode(result.query) if result.query else "")) if result.query_changed else None,
        inputs=inputs,
        decoded_bytes=len(body),
        redaction=redaction,
    )


@dataclass(frozen=True, slots=True)
class MessageInspection:
    """What was decided about one client WebSocket message and what to forward."""

    decision: Decision
    rewrites: tuple[RewriteRecord, ...] = ()
    payload: bytes | None = field(default=None, repr=False)
    """the message to forward instead (rewritten or de-duplicated JSON); None = unchanged."""
    inputs: Inputs = field(default_factory=Inputs, repr=False)
    elapsed_ms: float = 0.0


def inspect_message(
    payload: bytes,
    is_text: bool,
    classification: Classification,
    limits: Limits,
    findings: FindingsHook | None = None,
) -> MessageInspection:
    """Inspect one client WebSocket message; bad input becomes a blocking reason, never an exception."""
    started = time.perf_counter()
    try:
        result = _inspect_message(payload, is_text, classification, limits, findings)
    except InspectionError as exc:
        result = MessageInspection(decide([], [Reason(exc.rule, Action.BLOCK, str(exc), location=exc.location)]))
    return MessageInspection(result.decision, result.rewrites, result.payload, result.inputs,
                             (time.perf_counter() - started) * 1000)


def _inspect_message(
    payload: bytes, is_text: bool, classification: Classification, limits: Limits, findings_hook: FindingsHook | None
) -> MessageInspection:
    if len(payload) > limits.max_body_bytes:
        raise _too_large(len(payload), limits.max_body_bytes)
    inputs = extract_websocket_inputs(payload, is_text, content_limits(limits))
    reasons = findings_hook(inputs) if findings_hook is not None else []
    if decide([], reasons).action == Action.REDACT:
        raise RedactionError("personal data and secrets cannot be redacted on a live WebSocket session",
                             location="ws")
    rewrites = classification.endpoint.message_rewrites if classification.endpoint else []
    new_payload, records = _rewrite_message(payload, is_text, rewrites, limits)
    return MessageInspection(decide([], reasons), tuple(records), new_payload, inputs)


def _rewrite_message(
    payload: bytes, is_text: bool, rewrites: Sequence[Rewrite], limits: Limits
) -> tuple[bytes | None, list[RewriteRecord]]:
    if not is_text or payload.lstrip()[:1] not in (b"{", b"["):
        return None, []
    parsed = parse_json(payload, limits.max_json_depth)
    result = apply_rewrites(list(rewrites), parsed.value, (), ())
    records = list(result.records)
    if parsed.has_duplicates:
        records.extend(RewriteRecord("content.duplicate_keys", "message." + key, "deduplicated")
                       for key in sorted(set(parsed.duplicate_keys)))
    if result.body_changed or parsed.has_duplicates:
        return dump_json(parsed.value), records
    return None, records


def content_limits(limits: Limits) -> ContentLimits:
    """The decoders' limits from the configuration's."""
    return ContentLimits(
        max_decoded_bytes=limits.max_decoded_bytes,
        max_json_depth=limits.max_json_depth,
        max_archive_members=limits.max_archive_members,
        max_archive_depth=limits.max_archive_depth,
        max_archive_bytes=limits.max_archive_bytes,
        max_image_pixels=limits.max_image_pixels,
        max_frames=limits.max_frames,
        max_audio_seconds=limits.max_audio_seconds,
        max_base64_bytes=limits.max_base64_bytes,
        max_items=limits.max_items,
    )


def _parse_if_json(request: HttpRequest, body: bytes, limits: Limits, json_rewrites: bool) -> ParsedJson | None:
    """The body as JSON when it is declared JSON, or looks like JSON where the provider would read it so."""
    content_type = request.content_type
    if not body.strip():
        return None
    if content_type in _JSON_TYPES or content_type.endswith("+json"):
        return parse_json(body, limits.max_json_depth)
    if body.lstrip()[:1] not in (b"{", b"["):
        return None
    if not content_type:
        return parse_json(body, limits.max_json_depth)
    if json_rewrites:  # e.g. text/plain carrying JSON to an endpoint whose retention flags we force
        try:
            return parse_json(body, limits.max_json_depth)
        except InspectionError:
            return None
    return None


def _forward_body(
    body: bytes,
    parsed: ParsedJson | None,
    rewritten: RewriteResult,
    encoding: str | None,
    records: list[RewriteRecord],
) -> bytes | None:
    if parsed is not None and parsed.has_duplicates:
        records.extend(RewriteRecord("content.duplicate_keys", "body." + key, "deduplicated")
                       for key in sorted(set(parsed.duplicate_keys)))
        return dump_json(parsed.value)
    if rewritten.body_changed and parsed is not None:
        return _appended_in_place(body, parsed.value, rewritten.records) or dump_json(parsed.value)
    if encoding:
        return body  # forward what we inspected: decoded bytes, Content-Encoding dropped
    return None


def _appended_in_place(body: bytes, value: Any, records: Sequence[RewriteRecord]) -> bytes | None:
    """When the rewrites only added top-level keys (the usual `"store": false`), the client's own bytes
    with those members appended: no re-serialisation of a large body, and byte-for-byte fidelity for
    everything the client sent. None when anything else changed in the body."""
    changes = [r for r in records if r.target.startswith("body.")]
    keys = [r.target.removeprefix("body.") for r in changes]
    if not isinstance(value, dict) or any(r.change != "added" or "." in k or k not in value
                                          for r, k in zip(changes, keys, strict=True)):
        return None
    return with_members_appended(body, [(key, value[key]) for key in keys], empty=len(value) == len(keys))


def _plan_redaction(decision: Decision, inputs: Inputs, parsed: ParsedJson | None) -> Redaction:
    """Placeholders for every text finding the policy chose to redact; anything else cannot be sent."""
    if parsed is None:
        raise RedactionError("only JSON request bodies can be redacted", location="body")
    findings = [r.finding for r in decision.reasons if r.action == Action.REDACT and r.finding is not None]
    missing = [r for r in decision.reasons if r.action == Action.REDACT and r.finding is None]
    if missing or not findings:
        raise RedactionError("a redaction was decided without a text finding to redact", location="body")
    return plan_redaction(inputs.texts, findings)


def _too_large(size: int, limit: int) -> InspectionError:
    return TooLargeError(f"request body of {size} bytes exceeds the {limit}-byte limit", location="body")
