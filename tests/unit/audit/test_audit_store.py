"""The audit store on SQLite and PostgreSQL: durable records, outcomes, queries, concurrency,
several replicas, migrations, failing closed, and surviving kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
from audit_helpers import make_event

from gateway.audit import Outcome
from gateway.audit.schema import SCHEMA_VERSION, migrate
from gateway.audit.sqlite import SqliteDatabase
from gateway.config.models import Action
from gateway.decision import Decision, Reason, RewriteRecord
from gateway.errors import AuditError, DuplicateEntryError


def test_an_event_round_trips_with_every_field(make_store) -> None:
    """What is recorded comes back equal, with its outcome and its chain position."""
    store = make_store()
    event = make_event(
        1,
        decision=Decision.of(
            [
                Reason(
                    "likeness.face", Action.HOLD, "ask for approval", "eileen-collins", "body.image", 0.91234, "face"
                ),
                Reason("pii.email", Action.REDACT, entity="email"),
            ]
        ),
        rewrites=(RewriteRecord("retention.store", "body.store", "set"),),
        inspect_ms=1.234567,
        approval_id="apr_1",
        input_digests=("ab" * 32,),
    )
    store.record(event)
    stored = store.get(event.id)
    assert stored is not None
    assert stored.event == event
    assert (stored.replica, stored.seq, stored.outcome) == ("replica-a", 1, None)
    store.complete(event, Outcome(403, 5.5, 321, streamed=False, error="client disconnected"))
    done = store.get(event.id)
    assert done is not None and done.outcome == Outcome(403, 5.5, 321, False, "client disconnected")
    assert store.get("evt_missing") is None


def test_the_export_record_follows_the_contract(make_store) -> None:
    """id, ts, user, production, tool, host, path, decision and reasons[{rule}] are present; no content."""
    store = make_store()
    event = make_event(2)
    store.record(event)
    (stored,) = store.iter_events()
    out = stored.as_export()
    for key in ("id", "ts", "user", "production", "tool", "host", "path", "decision", "reasons"):
        assert key in out
    assert out["reasons"][0]["rule"] == "pii.email"
    assert out["ts"].endswith("Z")
    json.dumps(out)


def test_events_are_listed_in_time_order_and_filtered(make_store) -> None:
    store = make_store()
    base = time.time() - 1000
    events = [
        make_event(n, production=("harbor-nights" if n % 2 else "northern-lights"), ts=base + n * 10) for n in range(25)
    ]
    for event in reversed(events):
        store.record(event)
    assert [s.event.id for s in store.iter_events()] == [e.id for e in events]
    assert [s.event.id for s in store.iter_events(since=base + 200)] == [e.id for e in events[20:]]
    harbor = [s.event.id for s in store.iter_events(production="harbor-nights")]
    assert harbor == [e.id for e in events if e.production == "harbor-nights"]


def test_many_events_page_through(make_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """More events than one page come back complete and in order (keyset pagination, equal timestamps)."""
    monkeypatch.setattr("gateway.audit.store._PAGE", 7)
    store = make_store()
    ts = time.time()
    for n in range(30):
        store.record(make_event(n, ts=ts if n < 20 else ts + n))
    assert [s.seq for s in store.iter_events()] == list(range(1, 31))
    assert store.verify().ok


def test_concurrent_writers_all_land_and_the_chain_verifies(make_store) -> None:
    """Eight threads recording at once: every acknowledged event is stored, in one intact chain."""
    store = make_store()
    acked: list[str] = []
    lock = threading.Lock()

    def writer() -> None:
        for n in range(40):
            event = make_event(n)
            store.record(event)
            with lock:
                acked.append(event.id)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = {s.event.id for s in store.iter_events()}
    assert stored == set(acked) and len(acked) == 320
    report = store.verify()
    assert report.ok, report.problems
    assert report.entries == 320


def test_a_duplicate_event_fails_alone(make_store) -> None:
    """Recording the same event twice raises for that call only; the chain stays intact."""
    store = make_store()
    event = make_event(1)
    store.record(event)
    with pytest.raises(DuplicateEntryError):
        store.record(event)
    store.record(make_event(2))
    assert store.verify().ok
    assert store.verify().entries == 2


def test_captures_must_belong_to_their_event(make_store) -> None:
    from gateway.vault import Capture, CaptureKind

    store = make_store()
    event = make_event(1)
    stray = Capture("evt_other", event.production, CaptureKind.TEXT, "body", "text/plain", b"x" * 28, b"k", 1, 0)
    with pytest.raises(AuditError, match="cannot be recorded"):
        store.record(event, [stray])


def test_checkpoints_every_n_entries_and_every_t_seconds(make_store) -> None:
    """N entries trigger a checkpoint; so does T seconds of quiet with unsealed entries."""
    store = make_store(checkpoint_every=3, checkpoint_seconds=0.3)
    folder = make_store.data_dir / "checkpoints"
    for n in range(3):
        store.record(make_event(n))
    time.sleep(0.1)
    assert sorted(p.name for p in folder.rglob("*.json")) == [f"{3:016d}.json"]
    store.record(make_event(4))
    deadline = time.time() + 5
    while len(list(folder.rglob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert sorted(p.name for p in folder.rglob("*.json"))[-1] == f"{4:016d}.json"


def test_a_store_that_cannot_be_written_fails_closed(tmp_path: Path) -> None:
    """record() raises AuditError (the caller must stop the request) instead of returning."""
    from gateway.audit import open_store

    store = open_store(tmp_path, replica_id="r", env={})
    store.record(make_event(1))
    with store.db.transaction() as session:
        session.execute("DROP TABLE audit_entries")
    with pytest.raises(AuditError):
        store.record(make_event(2))
    assert store.healthy()
    store.close()
    assert not store.healthy()
    with pytest.raises(AuditError, match="closed"):
        store.record(make_event(3))


def test_an_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    from gateway.audit.postgres import PostgresDatabase

    with pytest.raises(AuditError, match="cannot connect") as info:
        PostgresDatabase("postgresql://postgres:hunter2@127.0.0.1:1/test?connect_timeout=1", connect_timeout=0.5)
    assert "hunter2" not in str(info.value)


def test_an_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditError, match="cannot"):
        SqliteDatabase(blocker / "audit.sqlite3")


def test_migrations_are_versioned_and_idempotent(make_store) -> None:
    store = make_store()
    assert migrate(store.db) == SCHEMA_VERSION
    with store.db.transaction() as session:
        versions = session.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # each step recorded once
        session.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(AuditError, match="newer than this Greenroom"):
        migrate(store.db)


def test_two_processes_with_one_replica_id_keep_one_chain(make_store) -> None:
    """Misconfigured replicas sharing an id collide on (replica, seq), re-read the head and chain on."""
    first, second = make_store("shared"), make_store("shared")
    for n in range(5):
        first.record(make_event(n))
        second.record(make_event(n))
    report = first.verify()
    assert report.ok, report.problems
    assert report.entries == 10


def test_replicas_share_one_database(make_store) -> None:
    """Three replicas writing concurrently each keep their own intact chain; tampering names the replica."""
    stores = [make_store(f"gw-{k}") for k in range(3)]

    def writer(k: int) -> None:
        for n in range(30):
            stores[k].record(make_event(n, production=f"prod-{k}"))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = stores[0].verify()
    assert report.ok, report.problems
    assert report.replicas == ("gw-0", "gw-1", "gw-2") and report.entries == 180
    for store in stores:
        with store.db.transaction(write=False) as session:
            seqs = [
                r[0]
                for r in session.fetchall(
                    "SELECT seq FROM audit_entries WHERE replica = ? ORDER BY seq", (store.replica_id,)
                )
            ]
        assert seqs == list(range(1, 61))
    with stores[1].db.transaction() as session:
        session.execute(
            "UPDATE audit_entries SET body = replace(body, 'alice', 'bob') WHERE replica = 'gw-1' AND seq = 17"
        )
    first = stores[2].verify().first
    assert first is not None and (first.kind, first.replica, first.seq) == ("modified", "gw-1", 17)


_CRASH_WRITER = """
import sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from audit_helpers import make_event
from gateway.audit import open_store
env = {"GREENROOM_AUDIT_DSN": sys.argv[2]} if sys.argv[2] else {}
store = open_store(Path(sys.argv[1]), replica_id="crashy", env=env)
lock = threading.Lock()
def run():
    n = 0
    while True:
        event = make_event(n)
        store.record(event)
        with lock:
            sys.stdout.write(event.id + "\\n")
            sys.stdout.flush()
        n += 1
for _ in range(6):
    threading.Thread(target=run, daemon=True).start()
threading.Event().wait()
"""


def test_kill_9_under_load_loses_no_acknowledged_event(make_store, tmp_path: Path) -> None:
    """SIGKILL a writer under concurrent load: every event it acknowledged is stored; the chain verifies."""
    data_dir = make_store.data_dir
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(data_dir), make_store.dsn, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = []
    assert proc.stdout is not None
    deadline = time.time() + 60
    while len(acked) < 300 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 300, "the writer did not get going"
    store = make_store("crashy")
    missing = [event_id for event_id in acked if store.get(event_id) is None]
    assert missing == []
    report = store.verify()
    assert report.ok, report.problems
    store.record(make_event(1))
    assert store.verify().ok


class _CountingTransactions:
    """Wraps a database: counts write transactions (a commit = one disk sync)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def transaction(self, write: bool = True) -> Any:
        self.writes += write
        return self._db.transaction(write)


def test_an_outcome_nobody_waits_for_shares_the_next_events_commit(make_store) -> None:
    """submit_complete() lingers; the next event's commit carries it: one transaction, both durable, chained."""
    store = make_store(outcome_linger=5.0)
    first = make_event(1)
    store.record(first)
    counting = _CountingTransactions(store.db)
    store.db = counting
    pending = store.submit_complete(first, Outcome(200, 12.5, 300, False))
    time.sleep(0.1)
    assert not pending.done()  # lingering: nobody waits for it
    second = make_event(2)
    store.record(second)
    assert pending.result(timeout=5) is None
    assert counting.writes == 1
    stored = store.get(first.id)
    assert stored is not None and stored.outcome == Outcome(200, 12.5, 300, False)
    report = store.verify()
    assert report.ok and report.entries == 3


@pytest.mark.parametrize(
    ("how", "linger"),
    [("the linger ends", 0.05), ("the store closes", 60.0), ("someone waits for a checkpoint", 60.0)],
)
def test_a_lingering_outcome_is_never_lost(make_store, how: str, linger: float) -> None:
    """With no further event, the outcome is still committed: after the linger, at close, or at a flush."""
    store = make_store(outcome_linger=linger)
    event = make_event(1)
    store.record(event)
    pending = store.submit_complete(event, Outcome(403, 1.0, 0, False))
    if how == "the store closes":
        store.close()
        reopened = make_store()
        stored = reopened.get(event.id)
    else:
        if how == "someone waits for a checkpoint":
            store.checkpoint()
        pending.result(timeout=5)
        stored = store.get(event.id)
    assert pending.done() and pending.exception() is None
    assert stored is not None and stored.outcome is not None and stored.outcome.status == 403


def test_a_blocking_complete_does_not_linger(make_store) -> None:
    """complete() (someone waits) commits at once even with a long linger configured."""
    store = make_store(outcome_linger=60.0)
    event = make_event(1)
    store.record(event)
    started = time.monotonic()
    store.complete(event, Outcome(200, 1.0, 10, False))
    assert time.monotonic() - started < 30  # far below the linger: it did not wait for another event
    stored = store.get(event.id)
    assert stored is not None and stored.outcome is not None


def test_submit_record_resolves_once_durable_and_fails_closed(make_store) -> None:
    """submit_record(): the future resolves after the commit; a failed commit fails the future, not the store."""
    store = make_store()
    event = make_event(1)
    future = store.submit_record(event)
    assert future.result(timeout=5) is None
    assert store.get(event.id) is not None
    duplicate = store.submit_record(event)
    with pytest.raises(DuplicateEntryError):
        duplicate.result(timeout=5)
    assert store.healthy()


def test_a_crashed_writer_is_logged_and_fails_every_caller(make_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the writer thread dies, it says so in the log, and waiting and later callers get AuditError."""
    store = make_store()

    def explode(batch: list[Any]) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_write", explode)
    with structlog.testing.capture_logs() as logs, pytest.raises(AuditError):
        store.record(make_event(1))
    assert any(entry["event"] == "audit_writer_crashed" for entry in logs)
    assert not store.healthy()
    with pytest.raises(AuditError, match="closed"):
        store.submit_record(make_event(2))


def test_a_caller_that_gives_up_does_not_stop_the_writer(make_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request cancelled while awaiting its commit (client hung up): the entry is still written and the
    writer goes on serving everyone else."""
    store = make_store()
    entered, release = threading.Event(), threading.Event()
    commit = store._commit

    def held_commit(batch: list[Any]) -> None:
        entered.set()
        release.wait(10)
        commit(batch)

    monkeypatch.setattr(store, "_commit", held_commit)
    first = make_event(1)
    pending = store.submit_record(first)
    assert entered.wait(10)
    assert pending.cancel()  # what asyncio.wrap_future does when the awaiting task is cancelled
    release.set()
    monkeypatch.setattr(store, "_commit", commit)
    store.record(make_event(2))
    assert store.healthy()
    assert store.get(first.id) is not None
    assert store.verify().ok
