"""Audit: the event model, sinks, and (later) durable stores and integrity checks."""

from .event import AuditEvent, Outcome, new_event_id
from .sink import AuditSink, LogSink, MultiSink

__all__ = ["AuditEvent", "AuditSink", "LogSink", "MultiSink", "Outcome", "new_event_id"]
