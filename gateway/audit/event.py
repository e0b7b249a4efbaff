"""The audit event: one per AI request, metadata only.

An `AuditEvent` is written before the request is forwarded (the decision), and an `Outcome` is
added when the exchange completes (status, bytes, timing). Neither ever holds content: prompts,
file bytes, passwords and talent names are not fields of these types. Captured inputs travel
separately, encrypted (the vault).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from gateway.decision import Decision, RewriteRecord

__all__ = ["AuditEvent", "Outcome", "new_event_id"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_event_id(now_ms: int | None = None) -> str:
    """A time-ordered, unguessable id: `evt_` + 48-bit ms timestamp + 80 random bits (Crockford base32)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "evt_" + "".join(reversed(chars))


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What was asked, by whom, and what Greenroom decided."""

    id: str
    ts: float
    user: str
    production: str
    tool: str
    endpoint: str
    capability: str
    method: str
    host: str
    path: str
    """the request path without its query string (queries can carry keys and content)."""
    mode: str
    """`proxy` (explicit proxy) or `reverse` (base_url mode)."""
    client: str
    decision: Decision
    rewrites: tuple[RewriteRecord, ...] = ()
    request_bytes: int = 0
    inspect_ms: float = 0.0
    approval_id: str = ""
    input_digests: tuple[str, ...] = field(default_factory=tuple)
    """sha256 of each captured input (for approval binding and review); never the input itself."""

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ts": self.ts,
            "user": self.user,
            "production": self.production,
            "tool": self.tool,
            "endpoint": self.endpoint,
            "capability": self.capability,
            "method": self.method,
            "host": self.host,
            "path": self.path,
            "mode": self.mode,
            "client": self.client,
            "decision": self.decision.action.value,
            "reasons": [r.as_dict() for r in self.decision.reasons],
            "rewrites": [r.as_dict() for r in self.rewrites],
            "request_bytes": self.request_bytes,
            "inspect_ms": round(self.inspect_ms, 3),
            "approval_id": self.approval_id,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the exchange ended."""

    status: int | None
    duration_ms: float
    response_bytes: int
    streamed: bool
    error: str = ""
    """a short, content-free description (`client disconnected`, `upstream unreachable`)."""
    input_tokens: int | None = None
    """token counts, where the provider reports them."""
    output_tokens: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "response_bytes": self.response_bytes,
            "streamed": self.streamed,
            "error": self.error,
        }
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            out["output_tokens"] = self.output_tokens
        return out
