"""Logging: structlog JSON lines on stdout; the standard library's (mitmproxy's) warnings on stderr.

Log ids, rule ids, sizes and hashes; never content. `redact_secrets` replaces the values of keys
that could hold credentials or content should a caller pass them by mistake (a deny-list of key
names, not a proof that a line holds no content).

`greenroom serve` writes through a `QueuedWriter` per stream (see `queued_output`): structlog or
logging renders a line on the caller's thread and `write()` only queues it; one daemon thread per
stream writes what is queued and flushes, in 10 ms batches while lines keep coming. A stream that
blocks (a stuck journald, a full pipe) then cannot stall the proxy's event loop. The queue is
bounded: when it is full a line is dropped and counted instead of waited for, and once the writer
catches up it writes one `log_lines_dropped` warning with the count (under sustained overload, when
it never catches up, at least every 10 s). Leaving `queued_output` drains
the queue (for a bounded time). The short-lived CLI commands log to stderr directly, in order with
what they print.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

__all__ = ["LOG_QUEUE_LINES", "QueuedWriter", "TextStream", "configure_logging", "queued_output", "redact_secrets"]

_SECRET_KEYS = frozenset({"password", "proxyauth", "authorization", "proxy-authorization", "token", "api_key",
                          "x-api-key", "cookie", "prompt", "content", "body"})

LOG_QUEUE_LINES = 10_000
"""Rendered lines that may wait for a slow stream (about 10 MB of decision lines) before lines are dropped."""

_GATHER_SECONDS = 0.01
"""The writer's batching interval. Idle, it blocks until a line wakes it; then, for as long as lines keep
coming, it sleeps this long, writes everything queued with one flush and looks again, so a busy gateway
never wakes it (a `put` finds no waiting thread). A wake-up per line made the event loop switch to the
writer thread while holding the GIL: in a py-spy --gil profile, `Condition.notify` of the log queue
was 4.6 % of the gateway's GIL time at c=8."""

_REPORT_AFTER_SECONDS = 10.0
"""Losses are reported when the writer catches up (nothing queued), or once they are this old even if it never
does: a stream that stays too slow under sustained load still gets a warning at least this often."""

_CLOSE_TIMEOUT_SECONDS = 5.0
"""How long shutdown waits for queued lines to reach a stream that is not taking them."""


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


class TextStream(Protocol):
    """What the log writes to: sys.stdout, a file, a test's StringIO."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time (tests swap it; a captured stream may be closed)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Drained:
    """Queued behind the lines to wait for: set once the writer thread reaches it."""

    def __init__(self) -> None:
        self.reached = threading.Event()


class _Stop:
    """Queued last by close(): the writer thread ends when it reaches it."""


class QueuedWriter:
    """A text stream whose `write()` never blocks: one daemon thread writes the queued lines out.

    Each `write()` is one whole line (structlog's WriteLogger writes a line and its newline in one
    call). `flush()` returns at once (the thread flushes after every batch); `drain()` waits until
    what was queued has been written, `close()` drains and stops the thread, after which a write
    goes straight to the stream. A stream that raises (BrokenPipeError, a closed file) loses that
    line, counted like a dropped one, and the thread goes on with the next.
    """

    def __init__(
        self, stream: TextStream, capacity: int = LOG_QUEUE_LINES, pause: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._capacity = capacity
        self._pause = pause
        """how the writer thread waits between batches (a test makes its pauses observable)."""
        self._clock = clock
        self._losses_since = 0.0
        """when the oldest unreported loss happened (clock time)."""
        self._queue: queue.Queue[str | _Drained | _Stop] = queue.Queue(capacity)
        self._lock = threading.Lock()
        self._dropped = 0
        self._failed = 0
        self._error = ""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="greenroom-log-writer", daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        if self._closed:
            return self._stream.write(text)
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            with self._lock:
                self._note_loss()
                self._dropped += 1
        return len(text)

    def flush(self) -> None:
        """Nothing to do on the caller's thread: the writer thread flushes after every batch."""

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every line queued so far is written and any losses reported; False on timeout."""
        if self._closed:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        marker = _Drained()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.reached.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = _CLOSE_TIMEOUT_SECONDS) -> bool:
        """Drain, then stop the thread. False if the stream took longer than `timeout`: then the
        thread keeps the queue (and writes stay non-blocking) for as long as the process lives."""
        if self._closed:
            return True
        if not self.drain(timeout):
            return False
        self._closed = True
        try:
            self._queue.put(_Stop(), timeout=timeout)
        except queue.Full:  # lines queued since the drain filled it: the thread writes them as it can
            return True
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._write_leftovers()
        return True

    def _run(self) -> None:
        while True:
            first = self._queue.get()  # idle: the first line (or a drain/stop marker) wakes this thread
            if isinstance(first, str):
                self._pause(_GATHER_SECONDS)  # let the lines of the next few milliseconds join this one
            batch = [first, *self._queued()]
            while batch:
                if not self._handle(batch):
                    return
                self._pause(_GATHER_SECONDS)  # busy: the clock collects the next lines; no writer wakes us
                batch = self._queued()

    def _queued(self) -> list[str | _Drained | _Stop]:
        """Everything queued right now (the writer thread is the only reader)."""
        items: list[str | _Drained | _Stop] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def _handle(self, items: list[str | _Drained | _Stop]) -> bool:
        """Write a batch in order with one flush; False when it held the stop marker.

        Losses are reported at a drain marker, and after a batch whose last line got through when
        nothing else is queued (the warning follows the lines that were kept) or when the oldest loss
        is `_REPORT_AFTER_SECONDS` old (a writer that never catches up still reports)."""
        unflushed, running, last_ok = 0, True, False
        for item in items:
            if isinstance(item, str):
                error = self._write_line(item)
                last_ok = error is None
                unflushed += last_ok
                if error is not None:
                    self._count_failure(error)
                continue
            unflushed = self._flush(unflushed)
            if isinstance(item, _Stop):
                running = False
            else:
                self._report_losses()
                item.reached.set()
        self._flush(unflushed)
        if last_ok and (self._queue.empty() or self._losses_overdue()):
            self._report_losses()
        return running

    def _note_loss(self) -> None:
        """Called under the lock before a loss is counted."""
        if not self._dropped and not self._failed:
            self._losses_since = self._clock()

    def _losses_overdue(self) -> bool:
        with self._lock:
            pending = self._dropped or self._failed
            return bool(pending) and self._clock() - self._losses_since >= _REPORT_AFTER_SECONDS

    def _write_line(self, line: str) -> str | None:
        """Write one line (unflushed); the name of the error if the stream raised."""
        try:
            self._stream.write(line)
        except Exception as exc:  # noqa: BLE001 - the log's own thread: a broken stream loses lines, not the process
            return type(exc).__name__
        return None

    def _flush(self, lines: int) -> int:
        """Flush what was written; if the stream raises, those `lines` count as lost. Returns 0."""
        if not lines:
            return 0
        try:
            self._stream.flush()
        except Exception as exc:  # noqa: BLE001 - as in _write_line
            with self._lock:
                self._note_loss()
                self._failed += lines
                self._error = type(exc).__name__
        return 0

    def _write(self, line: str) -> str | None:
        """Write and flush one line; the name of the error if the stream raised."""
        try:
            self._stream.write(line)
            self._stream.flush()
        except Exception as exc:  # noqa: BLE001 - as in _write_line
            return type(exc).__name__
        return None

    def _count_failure(self, error: str) -> None:
        with self._lock:
            self._note_loss()
            self._failed += 1
            self._error = error

    def _report_losses(self) -> None:
        with self._lock:
            dropped, failed, error = self._dropped, self._failed, self._error
            self._dropped, self._failed, self._error = 0, 0, ""
        if not dropped and not failed:
            return
        if self._write(_losses_line(dropped, failed, error, self._capacity)) is not None:
            with self._lock:  # still not writable: the next line that gets through reports them
                self._note_loss()
                self._dropped += dropped
                self._failed += failed
                self._error = self._error or error

    def _write_leftovers(self) -> None:
        """Lines a writer queued while close() was stopping the thread."""
        for item in self._queued():  # the thread has ended: this is the only reader left
            if isinstance(item, str):
                self._stream.write(item)


def _losses_line(dropped: int, failed: int, error: str, capacity: int) -> str:
    """The warning, rendered like the other lines (not through structlog: it would queue behind itself)."""
    entry: dict[str, object] = {
        "event": "log_lines_dropped",
        "level": "warning",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "queue_full": dropped,
        "write_failed": failed,
        "queue_lines": capacity,
    }
    if error:
        entry["error"] = error
    return json.dumps(entry) + "\n"


@contextmanager
def queued_output(stream: TextStream | None = None, capacity: int = LOG_QUEUE_LINES) -> Iterator[QueuedWriter]:
    """A QueuedWriter on `stream` (stdout by default), drained and closed when the block exits."""
    writer = QueuedWriter(stream or sys.stdout, capacity)
    try:
        yield writer
    finally:
        writer.close()


def configure_logging(
    level: str = "info", stream: Any = None, *, cache: bool = True, errors: TextStream | None = None
) -> None:
    """JSON lines on `stream` (stdout by default); the standard library's warnings (mitmproxy's) on
    `errors` (stderr by default). `cache=False` for short-lived commands and tests."""
    out = stream or sys.stdout
    if out is sys.stderr:
        out = _CurrentStderr()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(out),  # one write() per line: whole lines to queue
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(errors or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
