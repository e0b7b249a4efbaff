"""Audit write throughput and per-event latency, on SQLite and PostgreSQL (not a test).

    .venv/bin/python bench/bench_audit.py [--events 2000] [--threads 16] [--pg DSN | --no-pg]

For each backend it measures, in the same run and with the same durability settings:

- baseline   a bare INSERT of a row the size of an event, one commit each, no hashing;
- record     AuditStore.record() from one thread: the latency a request pays before forwarding;
- record+cap the same with one 2 KiB captured input sealed by the vault first;
- concurrent AuditStore.record() from --threads threads (group commit): throughput under load.

PostgreSQL runs in a throwaway schema of the local server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit import AuditEvent, AuditStore, new_event_id
from gateway.audit.checkpoint import Signer
from gateway.audit.record import event_body
from gateway.audit.schema import Database
from gateway.audit.sqlite import SqliteDatabase
from gateway.config.models import Action
from gateway.decision import Decision, Reason
from gateway.vault import CaptureKind, Vault, master_key_provider

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    mode: str
    events: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def event(n: int) -> AuditEvent:
    return AuditEvent(
        id=new_event_id(), ts=time.time(), user="alice", production="northern-lights", tool="openai-api",
        endpoint="chat.completions", capability="chat", method="POST", host="api.openai.com",
        path="/v1/chat/completions", mode="proxy", client=f"10.0.0.{n % 250}",
        decision=Decision.of([Reason("pii.email", Action.NOTIFY, entity="email", location="body.messages[0]")]),
        request_bytes=1200,
    )  # fmt: skip


def timed(n: int, one: Callable[[int], None]) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        one(i)
        latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - start, latencies


def baseline(db: Database, backend: str, n: int) -> Result:
    """A bare insert of an event-sized row per transaction: the database's own cost."""
    with db.transaction() as s:
        s.execute("CREATE TABLE IF NOT EXISTS bench_bare (id TEXT PRIMARY KEY, ts REAL, body TEXT)")
    body = event_body(event(0)).decode()

    def insert(i: int) -> None:
        with db.transaction() as s:
            s.execute("INSERT INTO bench_bare (id, ts, body) VALUES (?, ?, ?)", (new_event_id(), time.time(), body))

    seconds, lat = timed(n, insert)
    return Result(backend, "baseline: bare INSERT", n, seconds, lat)


def single(store: AuditStore, backend: str, n: int) -> Result:
    seconds, lat = timed(n, lambda i: store.record(event(i)))
    return Result(backend, "record (1 thread)", n, seconds, lat)


def with_capture(store: AuditStore, vault: Vault, backend: str, n: int) -> Result:
    payload = os.urandom(2048)

    def one(i: int) -> None:
        e = event(i)
        store.record(e, [vault.seal(e.id, e.production, CaptureKind.TEXT, "body.messages[0]", "text/plain", payload)])

    seconds, lat = timed(n, one)
    return Result(backend, "record + 2 KiB capture", n, seconds, lat)


def concurrent(store: AuditStore, backend: str, n: int, threads: int) -> Result:
    per = max(1, n // threads)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        _, lat = timed(per, lambda i: store.record(event(i)))
        with lock:
            latencies.extend(lat)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Result(backend, f"record ({threads} threads)", per * threads, time.perf_counter() - start, latencies)


@contextmanager
def sqlite_db(root: Path) -> Iterator[Callable[[], Database]]:
    yield lambda: SqliteDatabase(root / "audit.sqlite3")


@contextmanager
def postgres_db(base: str) -> Iterator[Callable[[], Database]]:
    import psycopg

    from gateway.audit.postgres import PostgresDatabase

    schema = f"gr_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield lambda: PostgresDatabase(f"{base}?options=-csearch_path%3D{schema}", max_connections=8)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_backend(backend: str, make_db: Callable[[], Database], root: Path, n: int, threads: int) -> list[Result]:
    results = []
    bare = make_db()
    results.append(baseline(bare, backend, n))
    bare.close()
    store = AuditStore(
        make_db(),
        replica_id=f"bench-{backend}",
        signer=Signer.load_or_create(root / "sign.key"),
        checkpoint_dir=root / "checkpoints",
        checkpoint_every=100,
    )
    vault = Vault(master_key_provider(root, env={}), store)
    try:
        results.append(single(store, backend, n))
        results.append(with_capture(store, vault, backend, n))
        results.append(concurrent(store, backend, n * 2, threads))
        report = store.verify()
        assert report.ok, report.problems
    finally:
        store.close()
    return results


def print_table(results: list[Result]) -> None:
    header = f"{'backend':<9} {'mode':<24} {'events':>7} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<9} {r.mode:<24} {r.events:>7} {r.rate:>10.0f} {r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f} "
            f"{statistics.fmean(r.latencies_ms):>8.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per single-thread measurement")
    parser.add_argument("--threads", type=int, default=16, help="threads for the concurrent measurement")
    parser.add_argument("--pg", default=os.environ.get("GREENROOM_TEST_PG", PG_DEFAULT), help="PostgreSQL DSN")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="greenroom-bench-") as tmp:
        root = Path(tmp)
        with sqlite_db(root / "sqlite") as make:
            results += run_backend("sqlite", make, root / "sqlite", args.events, args.threads)
        if not args.no_pg:
            with postgres_db(args.pg) as make:
                results += run_backend("postgres", make, root / "pg", args.events, args.threads)
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
