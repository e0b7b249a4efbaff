"""Where audit events go.

`AuditSink` is the seam the durable store plugs into: `record()` is called before a request is
forwarded and must not return until the event is durable (raise to stop the request);
`complete()` adds the outcome. `LogSink` writes the decision log: one structured JSON line per
request, with no content in it, through structlog (under `greenroom serve` that queues the line for
a writer thread: see gateway.logsetup). The log is a view for operators; the audit store is the
record, and a line dropped because stdout was blocked is counted in a `log_lines_dropped` warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog

from gateway.content.inputs import Inputs

from .event import AuditEvent, Outcome

__all__ = ["AuditSink", "LogSink", "MultiSink"]


class AuditSink(Protocol):
    def record(self, event: AuditEvent, inputs: Inputs | None = None) -> None:
        """Persist the decision (and seal the inputs); raise if it cannot be made durable."""

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        """Add how the exchange ended."""

    def close(self) -> None:
        """Flush and release resources."""


class LogSink:
    """The decision log: one JSON line per AI request, when it completes."""

    def __init__(self, logger: structlog.typing.FilteringBoundLogger | None = None) -> None:
        self._log = logger or structlog.get_logger("greenroom.decision")

    def record(self, event: AuditEvent, inputs: Inputs | None = None) -> None:
        return None

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        name = "request_" + {"allow": "allowed", "notify": "notified", "redact": "redacted",
                             "hold": "held", "block": "blocked"}[event.decision.action.value]
        self._log.info(name, **event.as_dict(), outcome=outcome.as_dict())

    def close(self) -> None:
        return None


class MultiSink:
    """Fan out to several sinks in order; the first failure propagates (fail closed)."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = tuple(sinks)

    def record(self, event: AuditEvent, inputs: Inputs | None = None) -> None:
        for sink in self._sinks:
            sink.record(event, inputs)

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        for sink in self._sinks:
            sink.complete(event, outcome)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()
