"""Shared helpers for the audit tests."""

from __future__ import annotations

import os
import time
from typing import Any

from gateway.audit import AuditEvent, new_event_id
from gateway.config.models import Action
from gateway.decision import Decision, Reason

__all__ = ["PG_BASE", "make_event", "pg_dsn"]

PG_BASE = os.environ.get("GREENROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
"""the local PostgreSQL (user postgres, trust auth, database test); each test uses its own schema."""


def pg_dsn(schema: str) -> str:
    """A DSN whose tables live in `schema`."""
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


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
