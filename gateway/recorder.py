"""The proxy's audit sink: seal captured inputs with the production's key, then write durably.

`record()` returns only once the event and its encrypted captures are committed; if it raises,
the request is refused with a 503 and nothing goes out. The proxy uses `submit_record()`, which
seals and queues on the caller's thread and returns a future that resolves once the event is
durable, so the event loop awaits the commit without a worker thread blocked on it.
`complete()` adds the outcome; `complete_nowait()` logs the decision line and hands the outcome to
the store without waiting (`on_error` hears of a failed write). Every event also produces the
decision log line; under `greenroom serve` logging only queues the rendered line for a writer
thread (gateway.logsetup.QueuedWriter), so a blocked stdout does not stall the event loop.

Fingerprints: each captured input is fingerprinted with HMAC-SHA256 under a per-deployment key
(`<data-dir>/keys/fingerprint.key`), not a bare hash, so a short prompt cannot be recovered from
its fingerprint by guessing. Approvals bind to these fingerprints.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

from gateway.audit.event import AuditEvent, Outcome
from gateway.audit.sink import AuditSink, LogSink
from gateway.content.inputs import Inputs
from gateway.errors import AuditError
from gateway.vault import Capture, CaptureKind, Vault

__all__ = ["Fingerprinter", "Recorder"]

_VOLATILE = ("header.", "cookie.")


class Fingerprinter:
    """Keyed fingerprints of inputs: stable within a deployment, meaningless outside it."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: str | Path) -> Fingerprinter:
        path = Path(data_dir) / "keys" / "fingerprint.key"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path.read_bytes())
        key = os.urandom(32)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return cls(key)

    def of_bytes(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def of_inputs(self, inputs: Inputs) -> tuple[str, ...]:
        """Sorted, de-duplicated fingerprints of the content (the text and media a user sends).

        Headers and cookies are left out: clients put per-attempt values there (request ids, trace
        ids, retry counts), and an approval must bind to the same content when the request is retried.
        """
        prints = {self.of_bytes(t.text.encode("utf-8", "surrogatepass")) for t in inputs.texts
                  if not t.location.startswith(_VOLATILE)}
        prints |= {self.of_bytes(m.data) for m in inputs.media if not m.location.startswith(_VOLATILE)}
        return tuple(sorted(prints))


class CaptureStore(Protocol):
    """The durable store (gateway.audit.store.AuditStore): events with their sealed captures."""

    def record(self, event: AuditEvent, captures: Sequence[Capture] = ()) -> None: ...

    def submit_record(self, event: AuditEvent, captures: Sequence[Capture] = ()) -> Future[None]: ...

    def complete(self, event: AuditEvent, outcome: Outcome) -> None: ...

    def submit_complete(self, event: AuditEvent, outcome: Outcome) -> Future[None]: ...

    def close(self) -> None: ...

    def healthy(self) -> bool: ...


class Recorder:
    """AuditSink that seals inputs and writes to the durable store; `blocking`: call it off the loop."""

    blocking = True

    def __init__(self, store: CaptureStore, vault: Vault | None, log: AuditSink | None = None) -> None:
        self.store = store
        self.vault = vault
        self.log = log or LogSink()

    def record(self, event: AuditEvent, inputs: Inputs | None = None) -> None:
        captures = self.seal(event, inputs) if inputs is not None and event.production else ()
        try:
            self.store.record(event, captures)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"the audit store could not record {event.id}: {type(exc).__name__}") from exc

    def submit_record(self, event: AuditEvent, inputs: Inputs | None = None) -> Future[None]:
        """Seal and queue; the future resolves once durable. Raises AuditError when it cannot even be queued."""
        try:
            captures = self.seal(event, inputs) if inputs is not None and event.production else ()
            return self.store.submit_record(event, captures)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"the audit store could not record {event.id}: {type(exc).__name__}") from exc

    def seal(self, event: AuditEvent, inputs: Inputs) -> Sequence[Capture]:
        """Every input of the event encrypted under one data key for the event (see Vault.seal_many)."""
        if self.vault is None:
            return ()
        texts = [(CaptureKind.TEXT, t.location, "text/plain; charset=utf-8", t.text.encode("utf-8", "surrogatepass"))
                 for t in inputs.texts]
        media = [(CaptureKind.MEDIA, m.location, m.sniffed_type, m.data) for m in inputs.media]
        return self.vault.seal_many(event.id, event.production, [*texts, *media])

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        self.log.complete(event, outcome)
        self.store.complete(event, outcome)

    def complete_nowait(
        self, event: AuditEvent, outcome: Outcome, on_error: Callable[[BaseException], None]
    ) -> None:
        """The decision log line now (queued, not written, under `serve`); the outcome entry with the
        store's next commit (never waited for)."""
        self.log.complete(event, outcome)
        try:
            future = self.store.submit_complete(event, outcome)
        except Exception as exc:  # noqa: BLE001 - the exchange is over: report the gap, never raise into it
            on_error(exc)
            return
        future.add_done_callback(lambda done: _report_failure(done, on_error))

    def close(self) -> None:
        self.store.close()

    def healthy(self) -> bool:
        """Whether the store can write (for /readyz)."""
        return self.store.healthy()

    def purge(self, retention_days: int, production: str) -> int:
        """Delete this production's captures older than its retention (metadata stays and verifies)."""
        return self.vault.purge(retention_days, production) if self.vault is not None else 0


def _report_failure(done: Future[None], on_error: Callable[[BaseException], None]) -> None:
    exc = done.exception()
    if exc is not None:
        on_error(exc)
