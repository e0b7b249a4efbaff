"""Canonical records: the exact bytes that are stored and hashed for each audit entry.

An entry is either an `event` (written before the request is forwarded) or an `outcome` (written
when the exchange ends). Its body is canonical JSON (sorted keys, no whitespace, UTF-8, floats as
Python's shortest round-trip repr), stored verbatim, so verification rehashes the very bytes that
were written. The hash of entry n covers a domain tag, the replica id, n, the kind, the previous
entry's hash and the body:

    hash(n) = sha256("greenroom.audit.v1\\n" ‖ json([replica, n, kind, hash(n-1)]) ‖ "\\n" ‖ body(n))
    hash(0) = sha256("greenroom.audit.genesis\\n" ‖ replica)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config.models import Action
from gateway.decision import Decision, Reason, RewriteRecord

from .event import AuditEvent, Outcome

__all__ = [
    "canonical_bytes",
    "chain_hash",
    "event_body",
    "event_from_body",
    "genesis_hash",
    "outcome_body",
    "outcome_from_body",
]


def canonical_bytes(value: object) -> bytes:
    """Deterministic JSON bytes for hashing and storage."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def genesis_hash(replica: str) -> str:
    """The `previous hash` of a replica's first entry."""
    return hashlib.sha256(b"greenroom.audit.genesis\n" + replica.encode()).hexdigest()


def chain_hash(replica: str, seq: int, kind: str, prev_hash: str, body: bytes) -> str:
    """The hash of one entry: covers its position, kind, predecessor and canonical body."""
    header = json.dumps([replica, seq, kind, prev_hash], separators=(",", ":")).encode()
    return hashlib.sha256(b"greenroom.audit.v1\n" + header + b"\n" + body).hexdigest()


def event_body(event: AuditEvent, captures: Sequence[Mapping[str, object]] = ()) -> bytes:
    """The canonical body of an event entry: every field, full precision, plus capture descriptors."""
    return canonical_bytes(
        {
            "type": "event",
            "id": event.id,
            "ts": event.ts,
            "user": event.user,
            "production": event.production,
            "tool": event.tool,
            "endpoint": event.endpoint,
            "capability": event.capability,
            "method": event.method,
            "host": event.host,
            "path": event.path,
            "mode": event.mode,
            "client": event.client,
            "decision": event.decision.action.value,
            "reasons": [_reason_dict(r) for r in event.decision.reasons],
            "rewrites": [r.as_dict() for r in event.rewrites],
            "request_bytes": event.request_bytes,
            "inspect_ms": event.inspect_ms,
            "approval_id": event.approval_id,
            "input_digests": list(event.input_digests),
            "captures": [dict(c) for c in captures],
        }
    )


def outcome_body(event: AuditEvent, outcome: Outcome, ts: float) -> bytes:
    """The canonical body of an outcome entry, written when the exchange ends at `ts`."""
    return canonical_bytes(
        {
            "type": "outcome",
            "event_id": event.id,
            "production": event.production,
            "ts": ts,
            "status": outcome.status,
            "duration_ms": outcome.duration_ms,
            "response_bytes": outcome.response_bytes,
            "streamed": outcome.streamed,
            "error": outcome.error,
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
        }
    )


def event_from_body(body: Mapping[str, Any]) -> AuditEvent:
    """Rebuild the event from a stored body."""
    reasons = tuple(
        Reason(
            rule=r["rule"],
            action=Action(r["action"]),
            message=r.get("message", ""),
            entity=r.get("entity", ""),
            location=r.get("location", ""),
            score=r.get("score"),
            detector=r.get("detector", ""),
        )
        for r in body["reasons"]
    )
    return AuditEvent(
        id=body["id"],
        ts=body["ts"],
        user=body["user"],
        production=body["production"],
        tool=body["tool"],
        endpoint=body["endpoint"],
        capability=body["capability"],
        method=body["method"],
        host=body["host"],
        path=body["path"],
        mode=body["mode"],
        client=body["client"],
        decision=Decision(Action(body["decision"]), reasons),
        rewrites=tuple(RewriteRecord(**r) for r in body["rewrites"]),
        request_bytes=body["request_bytes"],
        inspect_ms=body["inspect_ms"],
        approval_id=body["approval_id"],
        input_digests=tuple(body["input_digests"]),
    )


def outcome_from_body(body: Mapping[str, Any]) -> Outcome:
    """Rebuild an outcome from a stored body."""
    return Outcome(
        status=body["status"],
        duration_ms=body["duration_ms"],
        response_bytes=body["response_bytes"],
        streamed=body["streamed"],
        error=body["error"],
        input_tokens=body.get("input_tokens"),
        output_tokens=body.get("output_tokens"),
    )


def _reason_dict(reason: Reason) -> dict[str, object]:
    out: dict[str, object] = {
        "rule": reason.rule,
        "action": reason.action.value,
        "message": reason.message,
        "entity": reason.entity,
        "location": reason.location,
        "detector": reason.detector,
    }
    if reason.score is not None:
        out["score"] = reason.score
    return out
