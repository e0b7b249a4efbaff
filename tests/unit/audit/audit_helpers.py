"""Shared helpers for the audit tests."""

from __future__ import annotations

import time
from typing import Any

from gateway.audit import AuditEvent, new_event_id
from gateway.config.models import Action
from gateway.decision import Decision, Reason

__all__ = ["make_event"]


def make_event(n: int = 0, production: str = "northern-lights", user: str = "alice", **fields: Any) -> AuditEvent:
    """A plausible event; `n` varies the path so events differ."""
    values: dict[str, Any] = dict(
        id=new_event_id(),
        ts=time.time(),
        user=user,
        production=production,
        tool="openai-api",
        endpoint="chat.completions",
        capability="chat",
        method="POST",
        host="api.openai.com",
        path=f"/v1/chat/completions/{n}",
        mode="proxy",
        client="10.0.0.7",
        decision=Decision.of([Reason("pii.email", Action.NOTIFY, entity="email", location="body.messages[0]")]),
        request_bytes=100 + n,
    )
    values.update(fields)
    return AuditEvent(**values)
