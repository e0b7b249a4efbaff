"""gateway/logsetup.py: the queued log writer `greenroom serve` logs through, and its structlog setup.

The writer must never block the caller (the proxy's event loop), keep lines in order, bound its
memory (drop and count, then say so once), survive a broken stream, and write everything queued
when drained or closed. Blocked streams are gated on events, never on sleeps.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from gateway.logsetup import QueuedWriter, configure_logging, queued_output

_HANG_GUARD_SECONDS = 30.0  # only reached if the code under test blocks: turns a hang into a failure


class GatedStream:
    """A stream whose write() waits until the test opens the gate (a stuck journald, a full pipe)."""

    def __init__(self) -> None:
        self.text = io.StringIO()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.forced_open = False
        self.flushes = 0

    def write(self, text: str) -> int:
        self.entered.set()
        if not self.gate.wait(_HANG_GUARD_SECONDS):
            self.forced_open = True
        return self.text.write(text)

    def flush(self) -> None:
        self.flushes += 1

    def lines(self) -> list[str]:
        return self.text.getvalue().splitlines()


class FailingStream:
    """A stream whose first `failures` writes raise (then, with failures=-1, every write does)."""

    def __init__(self, failures: int, error: type[OSError] = BrokenPipeError) -> None:
        self.failures = failures
        self.error = error
        self.attempts = 0
        self.text = io.StringIO()

    def write(self, text: str) -> int:
        self.attempts += 1
        if self.failures < 0 or self.attempts <= self.failures:
            raise self.error("the reader went away")
        return self.text.write(text)

    def flush(self) -> None:
        return None

    def lines(self) -> list[str]:
        return self.text.getvalue().splitlines()


@pytest.fixture
def gated() -> Iterator[GatedStream]:
    stream = GatedStream()
    yield stream
    stream.gate.set()  # let the writer thread go whatever the test did


def numbered(count: int) -> list[str]:
    return [f'{{"event": "line", "n": {i}}}' for i in range(count)]


def losses(lines: list[str]) -> list[dict[str, object]]:
    return [entry for entry in map(json.loads, lines) if entry["event"] == "log_lines_dropped"]


@pytest.mark.parametrize("count", [0, 1, 3, 500])
def test_lines_come_out_in_order(count: int) -> None:
    """Every line written is on the stream after drain(), in the order written, with no warning."""
    stream = io.StringIO()
    writer = QueuedWriter(stream)
    for line in numbered(count):
        writer.write(line + "\n")
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    assert stream.getvalue().splitlines() == numbered(count)
    writer.close()


def test_write_and_flush_return_while_the_stream_is_blocked(gated: GatedStream) -> None:
    """write() only queues: with the writer thread stuck in the stream, writes and flush() still return."""
    writer = QueuedWriter(gated)
    writer.write("first\n")
    assert gated.entered.wait(_HANG_GUARD_SECONDS)  # the thread is now inside the blocked write
    for line in ("second\n", "third\n"):
        writer.write(line)
    writer.flush()
    assert not gated.gate.is_set() and not gated.forced_open  # we got here while the stream was blocked
    gated.gate.set()
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    assert gated.lines() == ["first", "second", "third"]
    writer.close()


@pytest.mark.parametrize("queued", [1, 50, 2000])
def test_lines_queued_together_are_written_with_one_flush(gated: GatedStream, queued: int) -> None:
    """What queued up while the writer was busy goes out as one batch: one flush (one wake-up of the
    writer) for many request lines, not one each."""
    writer = QueuedWriter(gated)
    writer.write("first\n")
    assert gated.entered.wait(_HANG_GUARD_SECONDS)  # the writer is busy with the first batch
    for line in numbered(queued):
        writer.write(line + "\n")
    gated.gate.set()
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    assert gated.lines() == ["first", *numbered(queued)]
    assert gated.flushes == 2  # the first line's batch, then all the queued ones
    writer.close()


class SteppedPauses:
    """The writer's pauses, one at a time: the test sees each one start and lets it end."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.ended = threading.Semaphore(0)

    def __call__(self, seconds: float) -> None:
        self.started.release()
        if not self.ended.acquire(timeout=_HANG_GUARD_SECONDS):
            raise AssertionError("the test never ended a pause")

    def next(self) -> None:
        """Wait for the writer's next pause to start."""
        assert self.started.acquire(timeout=_HANG_GUARD_SECONDS)


def waiting_threads(writer: QueuedWriter) -> int:
    return len(writer._queue.not_empty._waiters)  # type: ignore[attr-defined]


def test_a_busy_writer_collects_lines_by_the_clock_and_only_an_idle_one_is_woken() -> None:
    """While lines keep coming the writer thread polls between batches, so a write never has a waiting
    thread to wake (no context switch on the proxy's core); once a poll finds nothing it waits again."""
    stream, pauses = io.StringIO(), SteppedPauses()
    writer = QueuedWriter(stream, pause=pauses)
    writer.write("one\n")
    pauses.next()  # woken by the first line, gathering
    writer.write("two\n")
    assert waiting_threads(writer) == 0
    pauses.ended.release()
    pauses.next()  # wrote "one" and "two", now polling by the clock
    assert stream.getvalue() == "one\ntwo\n"
    writer.write("three\n")
    assert waiting_threads(writer) == 0
    pauses.ended.release()
    pauses.next()  # wrote "three", polling again
    assert stream.getvalue() == "one\ntwo\nthree\n"
    pauses.ended.release()  # this poll finds nothing: the writer goes back to waiting for a line
    for _ in range(1000):
        if waiting_threads(writer) == 1:
            break
        threading.Event().wait(0.01)
    assert waiting_threads(writer) == 1
    pauses.ended.release(10)  # let the close's drain through whatever pauses it meets
    writer.close()


@pytest.mark.parametrize(
    ("capacity", "written_while_blocked", "kept", "dropped"),
    [
        pytest.param(2, 2, 2, 0, id="fills the queue exactly: nothing dropped"),
        pytest.param(2, 3, 2, 1, id="one over: one dropped"),
        pytest.param(1, 50, 1, 49, id="many over: counted, not queued"),
    ],
)
def test_a_full_queue_drops_counts_and_reports_once(
    gated: GatedStream, capacity: int, written_while_blocked: int, kept: int, dropped: int
) -> None:
    """A full queue drops the new line and counts it; once the writer catches up, one warning says how many."""
    writer = QueuedWriter(gated, capacity=capacity)
    writer.write('{"event": "first"}\n')
    assert gated.entered.wait(_HANG_GUARD_SECONDS)  # taken off the queue; the thread is stuck writing it
    for line in numbered(written_while_blocked):
        writer.write(line + "\n")
    gated.gate.set()
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    lines = gated.lines()
    assert lines[: 1 + kept] == ['{"event": "first"}', *numbered(kept)]
    reports = losses(lines)
    if dropped:
        assert reports == [{**reports[0], "queue_full": dropped, "write_failed": 0, "queue_lines": capacity}]
        assert reports[0]["level"] == "warning" and lines[-1] == json.dumps(reports[0])
    else:
        assert reports == []
    writer.close()


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds_later", "report_before_the_queued_line"),
    [
        pytest.param(9.0, False, id="losses 9 s old: reported once the writer catches up, after the kept line"),
        pytest.param(10.0, True, id="losses 10 s old: reported now, though a line is still queued"),
    ],
)
def test_losses_are_reported_even_when_the_writer_never_catches_up(
    gated: GatedStream, seconds_later: float, report_before_the_queued_line: bool
) -> None:
    """Under sustained overload the queue is never empty after a batch; a loss older than 10 s is
    reported anyway instead of waiting for a quiet moment that may not come."""
    clock = ManualClock()
    writer = QueuedWriter(gated, capacity=1, clock=clock)
    writer.write('{"event": "first"}\n')
    assert gated.entered.wait(_HANG_GUARD_SECONDS)  # the thread is stuck writing "first"
    for line in numbered(3):  # the first is queued, two are dropped
        writer.write(line + "\n")
    clock.now += seconds_later
    gated.gate.set()
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    lines = gated.lines()
    kept = numbered(1)[0]
    assert len(losses(lines)) == 1 and losses(lines)[0]["queue_full"] == 2
    report_at = next(i for i, line in enumerate(lines) if "log_lines_dropped" in line)
    assert (report_at < lines.index(kept)) is report_before_the_queued_line
    writer.close()


@pytest.mark.parametrize(
    ("failures", "error"),
    [
        pytest.param(1, BrokenPipeError, id="broken pipe once"),
        pytest.param(3, BrokenPipeError, id="broken pipe three times"),
        pytest.param(2, OSError, id="another OSError"),
    ],
)
def test_a_stream_error_loses_that_line_and_is_reported(failures: int, error: type[OSError]) -> None:
    """The writer thread survives a raising stream: the lines after it come out, then one warning with the count."""
    stream = FailingStream(failures, error)
    writer = QueuedWriter(stream)
    for line in numbered(failures + 2):
        writer.write(line + "\n")
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    lines = stream.lines()
    assert lines[:2] == numbered(failures + 2)[failures:]
    assert losses(lines) == [{**losses(lines)[0], "queue_full": 0, "write_failed": failures, "error": error.__name__}]
    writer.close()


def test_a_stream_that_always_fails_gets_one_attempt_per_line() -> None:
    """No retry loop: each line is tried once, and the warning once per drain; the thread stays alive."""
    stream = FailingStream(failures=-1)
    writer = QueuedWriter(stream)
    for line in numbered(3):
        writer.write(line + "\n")
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    assert stream.attempts == 3 + 1  # three lines, one report
    stream.failures = 0  # the reader is back: the next line carries the earlier losses
    writer.write('{"event": "after"}\n')
    assert writer.drain(_HANG_GUARD_SECONDS) is True
    assert stream.lines()[0] == '{"event": "after"}'
    assert losses(stream.lines())[0]["write_failed"] == 3
    writer.close()


def test_drain_gives_up_after_its_timeout_and_close_keeps_writes_non_blocking(gated: GatedStream) -> None:
    """A stream that never takes the lines: drain/close return False instead of waiting for ever."""
    writer = QueuedWriter(gated)
    writer.write("stuck\n")
    assert gated.entered.wait(_HANG_GUARD_SECONDS)
    assert writer.drain(timeout=0) is False
    assert writer.close(timeout=0) is False
    writer.write("still queued\n")  # returns: the thread still owns the stream
    assert not gated.forced_open
    gated.gate.set()
    assert writer.close() is True
    assert gated.lines() == ["stuck", "still queued"]


def test_close_drains_then_writes_go_straight_to_the_stream() -> None:
    """close() writes what was queued and stops the thread; a late line (shutdown) is written at once."""
    stream = io.StringIO()
    writer = QueuedWriter(stream)
    writer.write("queued\n")
    assert writer.close() is True
    writer.write("late\n")
    assert stream.getvalue().splitlines() == ["queued", "late"]
    assert writer.close() is True  # idempotent


def test_queued_output_drains_when_the_block_exits() -> None:
    """The context `greenroom serve` runs in: leaving it (normally or by an exception) drains the queue."""
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), queued_output(stream) as writer:
        writer.write("before the interrupt\n")
        raise KeyboardInterrupt
    assert stream.getvalue() == "before the interrupt\n"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_structlog_lines_go_through_the_writer_whole_and_redacted() -> None:
    """configure_logging on a QueuedWriter: one JSON line per event (one write each), secrets redacted."""
    stream = io.StringIO()
    with queued_output(stream) as writer:
        configure_logging("info", writer, cache=False)
        log = structlog.get_logger("greenroom.decision")
        log.info("request_allowed", id="ev-1", password="hunter2")
        log.debug("below_the_level")
        log.warning("store_slow", ms=12)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["level"]) for e in entries] == [("request_allowed", "info"), ("store_slow", "warning")]
    assert entries[0]["password"] == "[redacted]" and "hunter2" not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_standard_library_warnings_go_through_their_own_writer() -> None:
    """mitmproxy logs through `logging`: its warnings are queued on `errors` too, below WARNING dropped."""
    stream = io.StringIO()
    with queued_output(stream) as errors:
        configure_logging("info", io.StringIO(), cache=False, errors=errors)
        logging.getLogger("mitmproxy.proxy.server").warning("upstream certificate verification failed")
        logging.getLogger("mitmproxy.proxy.server").info("client connect")
    assert [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()] == [
        "WARNING mitmproxy.proxy.server: upstream certificate verification failed"
    ]
