"""Audit: the event model, sinks, the durable store (SQLite, PostgreSQL), integrity chain and checkpoints."""

from .event import AuditEvent, Outcome, new_event_id
from .integrity import Problem, VerifyReport
from .sink import AuditSink, LogSink, MultiSink
from .store import AuditStore, StoredEvent, default_replica_id, open_store

__all__ = [
    "AuditEvent",
    "AuditSink",
    "AuditStore",
    "LogSink",
    "MultiSink",
    "Outcome",
    "Problem",
    "StoredEvent",
    "VerifyReport",
    "default_replica_id",
    "new_event_id",
    "open_store",
]
