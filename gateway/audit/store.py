"""The durable audit store: hash-chained entries per replica, encrypted captures, signed checkpoints.

`AuditStore` implements the AuditSink protocol. `record(event, captures=...)` returns only once
the event (and its captures, already encrypted by the vault) is committed — SQLite with
`synchronous=FULL`, PostgreSQL with a synchronous commit — and raises AuditError otherwise, so
the caller can stop the request. Any thread may call it: a single writer thread owns the chain
head and commits whatever is queued in one transaction (group commit), then wakes each caller.

`complete(event, outcome)` appends the outcome as its own entry in the same chain (an entry of
kind `outcome`, hashed and linked like any other), so outcomes are as tamper-evident as events.

The proxy uses the non-blocking forms: `submit_record()` returns a future the event loop awaits
(no thread waits for the commit), and `submit_complete()` hands the outcome over without waiting
at all. Nobody waits for such an outcome, so the writer lets it linger (`outcome_linger` seconds)
for the next event and commits both in one transaction: one disk sync per request instead of two.
Every `checkpoint_every` entries, and every `checkpoint_seconds` while entries are unsealed, the
writer signs the chain head and exports it to the checkpoint directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway.config.models import AuditSettings
from gateway.errors import AuditError, DuplicateEntryError
from gateway.vault import Capture, CaptureKind, ProductionKey, WrappedDataKey

from .checkpoint import Checkpoint, Signer, latest_checkpoint_seq, read_checkpoints, write_checkpoint
from .event import AuditEvent, Outcome
from .integrity import ChainRow, Problem, VerifyReport, check_chain, check_checkpoints
from .record import chain_hash, event_body, event_from_body, genesis_hash, outcome_body, outcome_from_body
from .schema import Database, Session, migrate

__all__ = [
    "AUDIT_DSN_ENV",
    "REPLICA_ID_ENV",
    "AuditStore",
    "StoredEvent",
    "default_replica_id",
    "open_database",
    "open_store",
]

AUDIT_DSN_ENV = "GREENROOM_AUDIT_DSN"
REPLICA_ID_ENV = "GREENROOM_REPLICA_ID"
_PAGE = 1000
_CAPTURE_PAGE = 64
"""captures are read with their ciphertext (media can be large): fewer per page."""
_log = structlog.get_logger("greenroom.audit")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: where it sits in its replica's chain, its outcome, its capture metadata."""

    event: AuditEvent
    replica: str
    seq: int
    hash: str
    captures: tuple[Mapping[str, object], ...] = ()
    outcome: Outcome | None = None
    completed: float | None = None

    def as_export(self) -> dict[str, object]:
        """The export record (CONTRACT.md): event metadata, outcome, capture metadata; never content."""
        out = self.event.as_dict()
        out["ts"] = _iso(self.event.ts)
        out["ts_unix"] = self.event.ts
        out["input_digests"] = list(self.event.input_digests)
        out["captures"] = [dict(c) for c in self.captures]
        out["outcome"] = None if self.outcome is None else {**self.outcome.as_dict(), "ts": _iso(self.completed)}
        out["replica"] = self.replica
        out["seq"] = self.seq
        out["hash"] = self.hash
        return out


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1e6) % 1_000_000:06d}Z"


@dataclass(slots=True)
class _Job:
    kind: str
    event_id: str
    ts: float
    production: str
    body: bytes
    captures: tuple[Capture, ...] = ()
    future: Future[None] = field(default_factory=Future)
    urgent: bool = True
    """someone waits for this commit; False for outcomes handed over without waiting (they may linger)."""


@dataclass(slots=True)
class _Head:
    seq: int
    hash: str
    event_id: str = ""
    ts: float = 0.0
    checkpointed_seq: int = 0
    checkpointed_at: float = 0.0


_STOP = object()


def _settle(future: Future[None], error: BaseException | None = None) -> None:
    """Tell the caller how its write went; a caller that gave up (cancelled its future) is skipped.

    The entry is written either way. Without this, a request cancelled while awaiting its commit
    (a client that hung up) would make `set_result` raise in the writer thread and stop all auditing.
    """
    if future.cancelled():
        return
    with contextlib.suppress(InvalidStateError):  # cancelled between the check and now
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

_INSERT_ENTRY = (
    "INSERT INTO audit_entries (replica, seq, kind, event_id, ts, production, body, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CAPTURE = (
    "INSERT INTO audit_captures (event_id, idx, production, kind, location, content_type, size, key_version, "
    "wrapped_key, ciphertext, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LIVE_KEY = {
    "sqlite": "SELECT wrapped FROM vault_keys WHERE production = ? AND version = ?",
    "postgres": "SELECT wrapped FROM vault_keys WHERE production = ? AND version = ? FOR SHARE",
}
_LOCK_KEYS = {
    "sqlite": "SELECT version FROM vault_keys WHERE production = ?",  # BEGIN IMMEDIATE already locks
    "postgres": "SELECT version FROM vault_keys WHERE production = ? FOR UPDATE",
}
_EVENT_COLUMNS = (
    "SELECT e.replica, e.seq, e.hash, e.body, o.body FROM audit_entries e "
    "LEFT JOIN audit_entries o ON o.event_id = e.event_id AND o.kind = 'outcome' "
)


class AuditStore:
    """The audit trail: AuditSink for the proxy, queries and verification for the CLI and review UI."""

    def __init__(
        self,
        db: Database,
        *,
        replica_id: str,
        signer: Signer,
        checkpoint_dir: Path,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 30.0,
        max_batch: int = 256,
        write_timeout: float = 30.0,
        outcome_linger: float = 0.02,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.replica_id = replica_id
        self.checkpoint_dir = Path(checkpoint_dir)
        self._signer = signer
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._max_batch = max_batch
        self._timeout = write_timeout
        self._linger_seconds = outcome_linger
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._inflight: list[_Job] = []
        migrate(db)
        self._head = self._load_head()
        self._writer = threading.Thread(target=self._run_writer, name="greenroom-audit-writer", daemon=True)
        self._writer.start()

    # --- AuditSink ------------------------------------------------------------------------------

    def record(self, event: AuditEvent, captures: Iterable[Capture] = ()) -> None:
        """Persist an event and its encrypted captures; return once durable, else raise AuditError."""
        self._wait(self.submit_record(event, captures))

    def submit_record(self, event: AuditEvent, captures: Iterable[Capture] = ()) -> Future[None]:
        """Queue an event for the next commit; the future resolves once it is durable (AuditError otherwise)."""
        sealed = tuple(captures)
        for capture in sealed:
            if capture.event_id != event.id or capture.production != event.production:
                raise AuditError(f"a capture for {capture.event_id} cannot be recorded with event {event.id}")
        body = event_body(event, [c.describe() for c in sealed])
        return self._enqueue(_Job("event", event.id, event.ts, event.production, body, sealed))

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        """Append how the exchange ended (its own chained entry); return once durable."""
        self._wait(self._outcome_job(event, outcome, urgent=True))

    def submit_complete(self, event: AuditEvent, outcome: Outcome) -> Future[None]:
        """Queue the outcome without waiting; it is committed with the next event (or `outcome_linger` later)."""
        return self._outcome_job(event, outcome, urgent=False)

    def _outcome_job(self, event: AuditEvent, outcome: Outcome, *, urgent: bool) -> Future[None]:
        now = self._clock()
        body = outcome_body(event, outcome, now)
        return self._enqueue(_Job("outcome", event.id, now, event.production, body, urgent=urgent))

    def close(self) -> None:
        """Write everything queued, sign a final checkpoint, release the database."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._writer.join(timeout=self._timeout)
        self.db.close()

    def healthy(self) -> bool:
        """Whether records can be accepted: open, and the writer thread alive (for /readyz)."""
        return not self._closed and self._writer.is_alive()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enqueue(self, job: _Job) -> Future[None]:
        if self._closed or not self._writer.is_alive():
            raise AuditError("the audit store is closed")
        self._queue.put(job)
        return job.future

    def _wait(self, future: Future[None]) -> None:
        try:
            future.result(timeout=self._timeout)
        except FutureTimeout as exc:
            raise AuditError(f"the audit write did not complete within {self._timeout:g}s") from exc

    # --- the writer thread ----------------------------------------------------------------------

    def _run_writer(self) -> None:
        """The writer loop; if it ever dies, every waiting caller gets an AuditError at once."""
        try:
            self._writer_loop()
        except BaseException as exc:  # noqa: BLE001 - said loudly; every caller is failed below (fail closed)
            _log.critical("audit_writer_crashed", replica=self.replica_id, error=type(exc).__name__,
                          detail=str(exc), exc_info=True)
        finally:
            self._closed = True
            for job in self._inflight:
                if not job.future.done():
                    _settle(job.future, AuditError("the audit writer stopped"))
            self._fail_pending()

    def _writer_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._seconds)
            except queue.Empty:
                self._checkpoint_if_due()
                continue
            batch, control = self._drain(first)
            if batch and control is None and not any(job.urgent for job in batch):
                batch, control = self._linger(batch)
            if batch:
                self._inflight = batch
                self._write(batch)
                self._inflight = []
                self._checkpoint_if_due()
            if isinstance(control, _Flush):
                self._checkpoint_if_due(force=True)
                _settle(control.future)
            elif control is _STOP:
                self._checkpoint_if_due(force=True)
                return

    def _drain(self, first: Any, batch: list[_Job] | None = None) -> tuple[list[_Job], Any]:
        """Jobs queued up to the batch size, stopping at a control item (flush or stop)."""
        batch = [] if batch is None else batch
        item = first
        while True:
            if not isinstance(item, _Job):
                return batch, item
            batch.append(item)
            if len(batch) >= self._max_batch:
                return batch, None
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, None

    def _linger(self, batch: list[_Job]) -> tuple[list[_Job], Any]:
        """Only outcomes nobody waits for: give the next event a moment to share their transaction."""
        try:
            item = self._queue.get(timeout=self._linger_seconds)
        except queue.Empty:
            return batch, None
        return self._drain(item, batch)

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Job | _Flush):
                _settle(item.future, AuditError("the audit store is closed"))

    def _write(self, batch: list[_Job]) -> None:
        try:
            self._commit(batch)
        except AuditError as exc:
            self._head = self._reload_head(exc)
            if len(batch) == 1:
                self._retry_one(batch[0], exc)
                return
            for job in batch:  # one bad entry must not fail the others
                self._write([job])
            return
        for job in batch:
            _settle(job.future)

    def _retry_one(self, job: _Job, exc: AuditError) -> None:
        if isinstance(exc, DuplicateEntryError):
            try:
                self._commit([job])  # another process wrote under our replica id: chain on after it
            except AuditError as again:
                self._head = self._reload_head(again)
                _settle(job.future, again)
                return
            _settle(job.future)
            return
        _settle(job.future, exc)

    def _commit(self, batch: list[_Job]) -> None:
        head = self._head
        seq, prev = head.seq, head.hash
        entries: list[tuple[Any, ...]] = []
        captures: list[tuple[Any, ...]] = []
        for job in batch:
            seq += 1
            digest = chain_hash(self.replica_id, seq, job.kind, prev, job.body)
            entries.append(
                (
                    self.replica_id,
                    seq,
                    job.kind,
                    job.event_id,
                    job.ts,
                    job.production,
                    job.body.decode(),
                    prev,
                    digest,
                )
            )
            captures.extend(_capture_row(i, c, job.ts) for i, c in enumerate(job.captures))
            prev = digest
        keys = sorted({(c.production, c.key_version) for job in batch for c in job.captures})
        with self.db.transaction() as session:
            self._require_live_keys(session, keys)
            session.executemany(_INSERT_ENTRY, entries)
            if captures:
                session.executemany(_INSERT_CAPTURE, captures)
        last = batch[-1]
        self._head = _Head(seq, prev, last.event_id, last.ts, head.checkpointed_seq, head.checkpointed_at)

    def _require_live_keys(self, session: Session, keys: Sequence[tuple[str, int]]) -> None:
        """Refuse captures sealed under a key destroyed meanwhile (a replica's stale key cache after a
        rotation or shred elsewhere); on PostgreSQL the key row stays locked until this commit."""
        for production, version in keys:
            rows = session.fetchall(_LIVE_KEY[self.db.dialect], (production, version))
            if not rows or rows[0][0] is None:
                raise AuditError(
                    f"a capture was sealed under key version {version} of {production!r}, which was destroyed "
                    "meanwhile (rotated or shredded); seal it again"
                )

    def _reload_head(self, cause: AuditError) -> _Head:
        try:
            return self._load_head()
        except AuditError:
            _log.error("audit_head_reload_failed", replica=self.replica_id, error=type(cause).__name__)
            return self._head

    def _load_head(self) -> _Head:
        with self.db.transaction(write=False) as session:
            rows = session.fetchall(
                "SELECT seq, hash, event_id, ts FROM audit_entries WHERE replica = ? ORDER BY seq DESC LIMIT 1",
                (self.replica_id,),
            )
        checkpointed = latest_checkpoint_seq(self.checkpoint_dir, self.replica_id)
        if not rows:
            return _Head(0, genesis_hash(self.replica_id), checkpointed_seq=checkpointed, checkpointed_at=self._clock())
        seq, digest, event_id, ts = rows[0]
        return _Head(seq, digest, event_id, ts, checkpointed, self._clock())

    def _checkpoint_if_due(self, force: bool = False) -> None:
        head = self._head
        pending = head.seq - head.checkpointed_seq
        if pending <= 0:
            return
        overdue = self._clock() - head.checkpointed_at >= self._seconds
        if not (force or pending >= self._every or overdue):
            return
        checkpoint = self._signer.sign(Checkpoint(self.replica_id, head.seq, head.hash, head.event_id, head.ts, ""))
        try:
            write_checkpoint(self.checkpoint_dir, checkpoint, self._signer)
        except AuditError as exc:
            _log.error("audit_checkpoint_failed", replica=self.replica_id, seq=head.seq, error=str(exc))
            return
        self._head = _Head(head.seq, head.hash, head.event_id, head.ts, head.seq, self._clock())

    def checkpoint(self) -> None:
        """Sign and export the chain head now (after everything queued before it is written)."""
        flush = _Flush(Future())
        self._queue.put(flush)
        flush.future.result(timeout=self._timeout)

    # --- queries --------------------------------------------------------------------------------

    def get(self, event_id: str) -> StoredEvent | None:
        """One event with its outcome and capture metadata, or None."""
        with self.db.transaction(write=False) as session:
            rows = session.fetchall(_EVENT_COLUMNS + "WHERE e.kind = 'event' AND e.event_id = ?", (event_id,))
        return _stored_event(rows[0]) if rows else None

    def iter_events(self, since: float | None = None, production: str | None = None) -> Iterator[StoredEvent]:
        """Events in time order (then replica, sequence), optionally from `since` and of one production."""
        cursor: tuple[float, str, int] = (float("-inf") if since is None else since, "", -1)
        while True:
            where = [
                "e.kind = 'event'",
                "(e.ts > ? OR (e.ts = ? AND (e.replica > ? OR (e.replica = ? AND e.seq > ?))))",
            ]
            params: list[Any] = [cursor[0], cursor[0], cursor[1], cursor[1], cursor[2]]
            if production is not None:
                where.append("e.production = ?")
                params.append(production)
            sql = _EVENT_COLUMNS + "WHERE " + " AND ".join(where) + " ORDER BY e.ts, e.replica, e.seq LIMIT ?"
            with self.db.transaction(write=False) as session:
                rows = session.fetchall(sql, [*params, _PAGE])
            for row in rows:
                yield _stored_event(row)
            if len(rows) < _PAGE:
                return
            last = _stored_event(rows[-1])
            cursor = (last.event.ts, last.replica, last.seq)

    def captures(self, event_id: str) -> tuple[Capture, ...]:
        """The encrypted captures of an event, in order (empty once purged)."""
        with self.db.transaction(write=False) as session:
            rows = session.fetchall(
                "SELECT event_id, production, kind, location, content_type, ciphertext, wrapped_key, "
                "key_version, size FROM audit_captures WHERE event_id = ? ORDER BY idx",
                (event_id,),
            )
        return tuple(
            Capture(r[0], r[1], CaptureKind(r[2]), r[3], r[4], bytes(r[5]), bytes(r[6]), r[7], r[8]) for r in rows
        )

    # --- verification ---------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check every chain, every exported checkpoint and every capture; name what is wrong."""
        problems: list[Problem] = []
        by_replica, checkpoint_count = self._trusted_checkpoints(problems)
        with self.db.transaction(write=False) as session:
            stored = [r[0] for r in session.fetchall("SELECT DISTINCT replica FROM audit_entries")]
        replicas = sorted(set(stored) | set(by_replica))
        entries = 0
        unanchored = []
        for replica in replicas:
            checkpoints = by_replica.get(replica, [])
            found, summary = check_chain(replica, self._chain_pages(replica), frozenset(c.seq for c in checkpoints))
            problems += found
            problems += check_checkpoints(replica, checkpoints, summary)
            entries += summary.count
            if tail := summary.last_seq - max((c.seq for c in checkpoints), default=0):
                unanchored.append((replica, max(tail, 0)))
        problems += self._orphan_outcomes()
        problems += self._capture_problems()
        return VerifyReport(entries, tuple(replicas), checkpoint_count, tuple(problems), tuple(unanchored))

    def _trusted_checkpoints(self, problems: list[Problem]) -> tuple[dict[str, list[Checkpoint]], int]:
        by_replica: dict[str, list[Checkpoint]] = {}
        count = 0
        for cp_file in read_checkpoints(self.checkpoint_dir, (self._signer.public,)):
            count += 1
            cp = cp_file.checkpoint
            if not cp_file.trusted or cp is None:
                problems.append(
                    Problem(
                        "checkpoint",
                        cp.replica if cp else cp_file.path.parent.name,
                        cp.seq if cp else None,
                        cp.event_id if cp else "",
                        f"{cp_file.path}: {cp_file.problem}",
                        cp.ts if cp else None,
                    )
                )
                continue
            by_replica.setdefault(cp.replica, []).append(cp)
        return by_replica, count

    def _chain_pages(self, replica: str) -> Iterator[list[ChainRow]]:
        after = 0
        while True:
            with self.db.transaction(write=False) as session:
                rows = session.fetchall(
                    "SELECT replica, seq, kind, event_id, ts, production, body, prev_hash, hash "
                    "FROM audit_entries WHERE replica = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (replica, after, _PAGE),
                )
            if not rows:
                return
            yield [ChainRow(*r) for r in rows]
            after = rows[-1][1]

    def _orphan_outcomes(self) -> list[Problem]:
        with self.db.transaction(write=False) as session:
            rows = session.fetchall(
                "SELECT o.replica, o.seq, o.event_id, o.ts FROM audit_entries o LEFT JOIN audit_entries e "
                "ON e.event_id = o.event_id AND e.kind = 'event' "
                "WHERE o.kind = 'outcome' AND e.event_id IS NULL"
            )
        return [Problem("orphan", r[0], r[1], r[2], "outcome of an event that is not in the store", r[3]) for r in rows]

    def _capture_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        after: tuple[str, int] = ("", -1)
        while True:
            with self.db.transaction(write=False) as session:
                rows = session.fetchall(
                    "SELECT c.event_id, c.idx, c.kind, c.location, c.content_type, c.size, c.ciphertext, "
                    "e.replica, e.seq, e.ts, e.body FROM audit_captures c LEFT JOIN audit_entries e "
                    "ON e.event_id = c.event_id AND e.kind = 'event' "
                    "WHERE c.event_id > ? OR (c.event_id = ? AND c.idx > ?) "
                    "ORDER BY c.event_id, c.idx LIMIT ?",
                    (after[0], after[0], after[1], _CAPTURE_PAGE),
                )
            problems += [p for row in rows if (p := _capture_problem(row)) is not None]
            if len(rows) < _CAPTURE_PAGE:
                return problems
            after = (rows[-1][0], rows[-1][1])

    # --- KeyTable (for the vault) ---------------------------------------------------------------

    def load_keys(self, production: str) -> list[ProductionKey]:
        with self.db.transaction(write=False) as session:
            rows = session.fetchall(
                "SELECT production, version, wrapped, created FROM vault_keys WHERE production = ?",
                (production,),
            )
        return [ProductionKey(r[0], r[1], None if r[2] is None else bytes(r[2]), r[3]) for r in rows]

    def add_key(self, key: ProductionKey) -> bool:
        try:
            with self.db.transaction() as session:
                session.execute(
                    "INSERT INTO vault_keys (production, version, wrapped, created) VALUES (?, ?, ?, ?)",
                    (key.production, key.version, key.wrapped, key.created),
                )
        except DuplicateEntryError:
            return False
        return True

    def destroy_keys(self, production: str) -> int:
        with self.db.transaction() as session:
            destroyed = session.execute(
                "UPDATE vault_keys SET wrapped = NULL, destroyed = ? WHERE production = ? AND wrapped IS NOT NULL",
                (self._clock(), production),
            )
        self._fold_wal()
        return destroyed

    def rewrap_data_keys(
        self, production: str, version: int, rewrap: Callable[[WrappedDataKey], WrappedDataKey | None]
    ) -> int:
        """In one transaction (key rows locked): rewrap every capture key not under `version`, then
        destroy the older versions. Returns how many were rewrapped."""
        with self.db.transaction() as session:
            session.fetchall(_LOCK_KEYS[self.db.dialect], (production,))
            rows = session.fetchall(
                "SELECT event_id, idx, key_version, wrapped_key FROM audit_captures "
                "WHERE production = ? AND key_version <> ?",
                (production, version),
            )
            rewrapped = [
                new for r in rows if (new := rewrap(WrappedDataKey(r[0], r[1], r[2], bytes(r[3])))) is not None
            ]
            session.executemany(
                "UPDATE audit_captures SET key_version = ?, wrapped_key = ? WHERE event_id = ? AND idx = ?",
                [(k.key_version, k.wrapped_key, k.event_id, k.index) for k in rewrapped],
            )
            session.execute(
                "UPDATE vault_keys SET wrapped = NULL, destroyed = ? WHERE production = ? AND version < ? "
                "AND wrapped IS NOT NULL",
                (self._clock(), production, version),
            )
        self._fold_wal()
        return len(rewrapped)

    def _fold_wal(self) -> None:
        if wal := getattr(self.db, "checkpoint_wal", None):
            wal()  # SQLite: fold the WAL (which still holds the old pages) into the overwritten file

    def delete_captures(self, before: float, production: str | None = None) -> int:
        sql = "DELETE FROM audit_captures WHERE ts < ?"
        params: list[Any] = [before]
        if production is not None:
            sql += " AND production = ?"
            params.append(production)
        with self.db.transaction() as session:
            return session.execute(sql, params)


@dataclass(frozen=True, slots=True)
class _Flush:
    future: Future[None]


def _capture_row(index: int, capture: Capture, ts: float) -> tuple[Any, ...]:
    return (
        capture.event_id,
        index,
        capture.production,
        capture.kind.value,
        capture.location,
        capture.content_type,
        capture.size,
        capture.key_version,
        capture.wrapped_key,
        capture.ciphertext,
        ts,
    )


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    replica, seq, digest, body, outcome = row
    data = json.loads(body)
    done = json.loads(outcome) if outcome is not None else None
    return StoredEvent(
        event=event_from_body(data),
        replica=replica,
        seq=seq,
        hash=digest,
        captures=tuple(data.get("captures", ())),
        outcome=outcome_from_body(done) if done is not None else None,
        completed=done["ts"] if done is not None else None,
    )


def _capture_problem(row: Sequence[Any]) -> Problem | None:
    event_id, idx, kind, location, content_type, size, ciphertext, replica, seq, ts, body = row
    if body is None:
        return Problem("capture", "", None, event_id, f"capture {idx} belongs to no stored event")
    descriptors = json.loads(body).get("captures", [])
    actual = {
        "kind": kind,
        "location": location,
        "content_type": content_type,
        "size": size,
        "sha256": hashlib.sha256(bytes(ciphertext)).hexdigest(),
    }
    if idx >= len(descriptors) or descriptors[idx] != actual:
        return Problem(
            "capture",
            replica,
            seq,
            event_id,
            f"capture {idx} differs from what the event recorded (replaced or altered)",
            ts,
        )
    return None


def default_replica_id(data_dir: str | Path) -> str:
    """`<hostname>:<8 hex of the data dir path>`: stable across restarts, distinct per host and data dir."""
    resolved = str(Path(data_dir).resolve())
    return f"{socket.gethostname()}:{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def open_database(
    data_dir: str | Path, settings: AuditSettings | None = None, env: Mapping[str, str] | None = None
) -> Database:
    """PostgreSQL when env GREENROOM_AUDIT_DSN or `store: postgres` say so, else SQLite in the data dir."""
    environ = os.environ if env is None else env
    settings = settings or AuditSettings()
    dsn = environ.get(AUDIT_DSN_ENV) or (settings.dsn if settings.store == "postgres" else None)
    if settings.store == "postgres" and not dsn:
        raise AuditError(f"audit store is postgres but no dsn is set (gateway.yaml audit.dsn or {AUDIT_DSN_ENV})")
    if dsn:
        from .postgres import PostgresDatabase

        return PostgresDatabase(dsn)
    from .sqlite import SqliteDatabase

    return SqliteDatabase(Path(data_dir) / "audit.sqlite3")


def open_store(
    data_dir: str | Path,
    settings: AuditSettings | None = None,
    *,
    replica_id: str | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> AuditStore:
    """The audit store for a data dir, as configured (see `open_database`)."""
    environ = os.environ if env is None else env
    settings = settings or AuditSettings()
    root = Path(data_dir)
    replica = replica_id or environ.get(REPLICA_ID_ENV) or settings.replica_id or default_replica_id(root)
    signer = Signer.load_or_create(root / "keys" / "audit-signing.key")
    db = open_database(root, settings, environ)
    try:
        return AuditStore(
            db,
            replica_id=replica,
            signer=signer,
            checkpoint_dir=Path(settings.checkpoint_dir) if settings.checkpoint_dir else root / "checkpoints",
            checkpoint_every=settings.checkpoint_every,
            checkpoint_seconds=settings.checkpoint_seconds,
            **options,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            db.close()
        raise
