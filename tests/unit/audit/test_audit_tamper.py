"""Every kind of tampering with the audit trail is detected, on SQLite and PostgreSQL, and the
first bad event is named."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from audit_helpers import make_event

from gateway.audit import AuditStore, Outcome
from gateway.audit.checkpoint import Checkpoint, Signer, replica_slug, write_checkpoint
from gateway.audit.record import chain_hash
from gateway.errors import AuditError, IntegrityError

REPLICA = "replica-a"


@dataclass(frozen=True, slots=True)
class Trail:
    store: AuditStore
    ids: list[str]
    """event ids by sequence number (ids[0] is seq 1)."""
    checkpoint_dir: Path


def execute(store: AuditStore, sql: str, params: tuple = ()) -> None:
    with store.db.transaction() as session:
        session.execute(sql, params)


def row(store: AuditStore, seq: int) -> tuple:
    with store.db.transaction(write=False) as session:
        return session.fetchall(
            "SELECT kind, event_id, ts, production, body, prev_hash, hash FROM audit_entries "
            "WHERE replica = ? AND seq = ?",
            (REPLICA, seq),
        )[0]


def shift(store: AuditStore, from_seq: int, by: int) -> None:
    """Renumber entries from `from_seq` on (through a detour, as unique keys are checked per row)."""
    execute(
        store,
        "UPDATE audit_entries SET seq = seq + 100000 WHERE replica = ? AND seq >= ?",
        (REPLICA, from_seq),
    )
    execute(
        store,
        "UPDATE audit_entries SET seq = seq - 100000 + ? WHERE replica = ? AND seq >= 100000",
        (by, REPLICA),
    )


def rehash_from(store: AuditStore, seq: int) -> None:
    """What a knowledgeable forger does after an edit: recompute every later hash."""
    prev = row(store, seq - 1)[6]
    with store.db.transaction(write=False) as session:
        last = session.fetchall("SELECT MAX(seq) FROM audit_entries WHERE replica = ?", (REPLICA,))[0][0]
    for n in range(seq, last + 1):
        kind, _, _, _, body, _, _ = row(store, n)
        digest = chain_hash(REPLICA, n, kind, prev, body.encode())
        execute(
            store,
            "UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE replica = ? AND seq = ?",
            (prev, digest, REPLICA, n),
        )
        prev = digest


def modify_body(t: Trail) -> None:
    body = row(t.store, 5)[4].replace('"user":"alice"', '"user":"mallory"')
    execute(t.store, "UPDATE audit_entries SET body = ? WHERE replica = ? AND seq = 5", (body, REPLICA))


def modify_column(t: Trail) -> None:
    execute(
        t.store,
        "UPDATE audit_entries SET production = 'harbor-nights' WHERE replica = ? AND seq = 3",
        (REPLICA,),
    )


def modify_timestamp(t: Trail) -> None:
    execute(t.store, "UPDATE audit_entries SET ts = ts - 86400 WHERE replica = ? AND seq = 7", (REPLICA,))


def delete_middle(t: Trail) -> None:
    execute(t.store, "DELETE FROM audit_entries WHERE replica = ? AND seq = 6", (REPLICA,))


def delete_and_renumber(t: Trail) -> None:
    execute(t.store, "DELETE FROM audit_entries WHERE replica = ? AND seq = 6", (REPLICA,))
    shift(t.store, 7, -1)
    del t.ids[5]


def insert_forged(t: Trail) -> None:
    shift(t.store, 5, 1)
    forged = make_event(99, user="mallory")
    body = row(t.store, 6)[4].replace(json.loads(row(t.store, 6)[4])["id"], forged.id)
    prev = row(t.store, 4)[6]
    execute(
        t.store,
        "INSERT INTO audit_entries (replica, seq, kind, event_id, ts, production, body, prev_hash, hash) "
        "VALUES (?, 5, 'event', ?, ?, ?, ?, ?, ?)",
        (
            REPLICA,
            forged.id,
            json.loads(body)["ts"],
            "northern-lights",
            body,
            prev,
            chain_hash(REPLICA, 5, "event", prev, body.encode()),
        ),
    )
    t.ids.insert(4, forged.id)


def reorder(t: Trail) -> None:
    execute(t.store, "UPDATE audit_entries SET seq = -1 WHERE replica = ? AND seq = 3", (REPLICA,))
    execute(t.store, "UPDATE audit_entries SET seq = 3 WHERE replica = ? AND seq = 4", (REPLICA,))
    execute(t.store, "UPDATE audit_entries SET seq = 4 WHERE replica = ? AND seq = -1", (REPLICA,))
    t.ids[2], t.ids[3] = t.ids[3], t.ids[2]


def truncate(t: Trail) -> None:
    execute(t.store, "DELETE FROM audit_entries WHERE replica = ? AND seq >= 9", (REPLICA,))


def truncate_all(t: Trail) -> None:
    execute(t.store, "DELETE FROM audit_entries WHERE replica = ?", (REPLICA,))


def rewrite_and_rehash(t: Trail) -> None:
    modify_body(t)
    rehash_from(t.store, 5)


def forge_checkpoint(t: Trail) -> None:
    path = t.checkpoint_dir / replica_slug(REPLICA) / f"{8:016d}.json"
    data = json.loads(path.read_text())
    data["hash"] = "0" * 64
    path.write_text(json.dumps(data))


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    tamper: Callable[[Trail], None]
    kind: str
    seq: int
    """the sequence number the first problem names."""
    names_event: bool = True


CASES = [
    Case("modified body", modify_body, "modified", 5),
    Case("modified indexed column", modify_column, "modified", 3),
    Case("modified timestamp", modify_timestamp, "modified", 7),
    Case("deleted", delete_middle, "deleted", 6, names_event=False),
    Case("deleted and renumbered", delete_and_renumber, "deleted", 6),
    Case("inserted", insert_forged, "inserted", 5),
    Case("reordered", reorder, "reordered", 3),
    Case("truncated", truncate, "truncated", 9, names_event=False),
    Case("truncated to nothing", truncate_all, "truncated", 1, names_event=False),
    Case("rewritten and re-hashed", rewrite_and_rehash, "rewritten", 8),
    Case("forged checkpoint", forge_checkpoint, "checkpoint", 8),
]


@pytest.fixture
def trail(make_store) -> Trail:
    store = make_store(REPLICA)
    ids = []
    for n in range(10):
        event = make_event(n)
        store.record(event)
        ids.append(event.id)
    store.checkpoint()
    return Trail(store, ids, make_store.data_dir / "checkpoints")


def test_an_untouched_trail_verifies(trail: Trail) -> None:
    """Ten events and their checkpoints (every 4, plus one on demand) verify clean."""
    report = trail.store.verify()
    assert report.ok, report.problems
    assert report.entries == 10
    assert report.checkpoints == 3
    assert report.replicas == (REPLICA,)
    assert report.unanchored == ()
    report.raise_for_problems()
    trail.store.record(make_event(11))
    assert trail.store.verify().unanchored == ((REPLICA, 1),)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampering_is_detected_and_the_first_bad_event_named(trail: Trail, case: Case) -> None:
    """Each tampering shows as a problem of its kind, at the right place, naming the event."""
    case.tamper(trail)
    report = trail.store.verify()
    assert not report.ok
    first = report.first
    assert first is not None
    assert (first.kind, first.seq) == (case.kind, case.seq), [str(p) for p in report.problems]
    if case.names_event:
        assert first.event_id == trail.ids[case.seq - 1]
        assert first.event_id in str(first)
    with pytest.raises(IntegrityError, match=case.kind):
        report.raise_for_problems()


def test_outcomes_are_chained_too(make_store) -> None:
    """An outcome is its own chained entry: editing it is detected like editing an event."""
    store = make_store(REPLICA)
    event = make_event(1)
    store.record(event)
    store.complete(event, Outcome(200, 12.0, 345, streamed=True, input_tokens=10, output_tokens=20))
    assert store.verify().ok
    stored = store.get(event.id)
    assert stored is not None and stored.outcome is not None
    assert (stored.outcome.status, stored.outcome.output_tokens) == (200, 20)
    body = row(store, 2)[4].replace('"status":200', '"status":500')
    execute(store, "UPDATE audit_entries SET body = ? WHERE replica = ? AND seq = 2", (body, REPLICA))
    first = store.verify().first
    assert first is not None and (first.kind, first.seq, first.event_id) == ("modified", 2, event.id)


def test_an_outcome_whose_event_is_gone_is_reported(make_store) -> None:
    """Deleting an event but keeping its outcome still shows (deleted, and an orphan outcome)."""
    store = make_store(REPLICA)
    event = make_event(1)
    store.record(event)
    store.complete(event, Outcome(200, 1.0, 1, False))
    execute(store, "DELETE FROM audit_entries WHERE kind = 'event'")
    kinds = {p.kind for p in store.verify().problems}
    assert kinds == {"deleted", "orphan"}


def test_a_signed_checkpoint_by_an_unknown_key_is_rejected(trail: Trail) -> None:
    """Replacing the trusted public key does not make a forged checkpoint pass."""
    folder = trail.checkpoint_dir / replica_slug(REPLICA)
    for pub in folder.glob("signer-*.pub"):
        pub.unlink()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = Signer(Ed25519PrivateKey.generate())
    write_checkpoint(trail.checkpoint_dir, forger.sign(Checkpoint(REPLICA, 11, "f" * 64, "evt_x", 0.0, "")), forger)
    (folder / f"signer-{forger.key}.pub").unlink()
    problems = trail.store.verify().problems
    assert [p.kind for p in problems] == ["checkpoint"]
    assert "unknown key" in problems[0].message


def test_a_restored_old_backup_cannot_overwrite_exported_checkpoints(trail: Trail, make_store) -> None:
    """Truncate and restart (as a restore from an old backup would), write on: the exported
    checkpoints stay as evidence, a different one for the same seq is refused, verify reports it."""
    truncate(trail)
    trail.store.close()
    store = make_store(REPLICA)
    for n in range(4):
        store.record(make_event(100 + n))
    store.checkpoint()
    folder = trail.checkpoint_dir / replica_slug(REPLICA)
    assert json.loads((folder / f"{8:016d}.json").read_text())["event_id"] == trail.ids[7]
    signer = Signer.load_or_create(make_store.data_dir / "keys" / "audit-signing.key")
    with pytest.raises(AuditError, match="kept as evidence"):
        write_checkpoint(trail.checkpoint_dir, signer.sign(Checkpoint(REPLICA, 8, "e" * 64, "evt_y", 0.0, "")), signer)
    assert json.loads((folder / f"{8:016d}.json").read_text())["event_id"] == trail.ids[7]
    first = store.verify().first
    assert first is not None and (first.kind, first.seq) == ("rewritten", 10)
