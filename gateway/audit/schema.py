"""The audit store's tables, the database seam both backends implement, and schema migrations.

    schema_version     one row per applied migration
    audit_entries      the hash chains: one row per event or outcome, (replica, seq) unique
    audit_captures     encrypted captured inputs, (event_id, idx) unique
    vault_keys         production key versions, wrapped by the master key; NULL once destroyed
    output_ledger      fingerprints of generated outputs (v2; gateway.provenance): hashes, never bytes

Statements use `?` placeholders; the PostgreSQL backend translates them. Types are written per
dialect through `{blob}` (BLOB / BYTEA) and `{real}` (REAL / DOUBLE PRECISION).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from gateway.errors import AuditError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Database", "Session", "migrate"]


class Session(Protocol):
    """One open transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the row count."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query; return every row."""


class Database(Protocol):
    """A backend (SQLite or PostgreSQL). `transaction()` commits on success and translates driver
    errors into AuditError (DuplicateEntryError for unique-key collisions). Thread-safe."""

    dialect: str
    description: str
    """where it is, without credentials (for messages)."""

    def transaction(self, write: bool = True) -> AbstractContextManager[Session]:
        """A transaction on a connection owned by the calling thread (or borrowed from a pool);
        `write=False` lets SQLite readers proceed alongside the writer."""

    def lock_migrations(self, session: Session) -> None:
        """Serialise concurrent migrations (several replicas starting at once)."""

    def close(self) -> None:
        """Release every connection."""


_V1 = (
    """CREATE TABLE audit_entries (
        replica TEXT NOT NULL,
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('event', 'outcome')),
        event_id TEXT NOT NULL,
        ts {real} NOT NULL,
        production TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (replica, seq),
        UNIQUE (event_id, kind)
    )""",
    "CREATE INDEX audit_entries_ts ON audit_entries (kind, ts)",
    "CREATE INDEX audit_entries_production_ts ON audit_entries (production, ts)",
    """CREATE TABLE audit_captures (
        event_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        production TEXT NOT NULL,
        kind TEXT NOT NULL,
        location TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size BIGINT NOT NULL,
        key_version INTEGER NOT NULL,
        wrapped_key {blob} NOT NULL,
        ciphertext {blob} NOT NULL,
        ts {real} NOT NULL,
        PRIMARY KEY (event_id, idx)
    )""",
    "CREATE INDEX audit_captures_production_ts ON audit_captures (production, ts)",
    """CREATE TABLE vault_keys (
        production TEXT NOT NULL,
        version INTEGER NOT NULL,
        wrapped {blob},
        created {real} NOT NULL,
        destroyed {real},
        PRIMARY KEY (production, version)
    )""",
)

_V2 = (
    """CREATE TABLE output_ledger (
        event_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        production TEXT NOT NULL,
        username TEXT NOT NULL,
        tool TEXT NOT NULL,
        ts {real} NOT NULL,
        kind TEXT NOT NULL,
        location TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        pdq {blob},
        variants TEXT NOT NULL,
        audio {blob},
        features {blob},
        PRIMARY KEY (event_id, idx)
    )""",
    "CREATE INDEX output_ledger_sha256 ON output_ledger (sha256)",
    "CREATE INDEX output_ledger_production_ts ON output_ledger (production, ts)",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1), (2, _V2))
SCHEMA_VERSION = MIGRATIONS[-1][0]

_TYPES = {
    "sqlite": {"blob": "BLOB", "real": "REAL"},
    "postgres": {"blob": "BYTEA", "real": "DOUBLE PRECISION"},
}


def migrate(db: Database) -> int:
    """Bring the schema up to date (idempotent, safe when replicas start together); return its version."""
    with db.transaction() as session:
        db.lock_migrations(session)
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at "
            + _TYPES[db.dialect]["real"]
            + " NOT NULL)"
        )
        current = session.fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]
        if current > SCHEMA_VERSION:
            raise AuditError(
                f"{db.description}: audit schema v{current} is newer than this Greenroom understands "
                f"(v{SCHEMA_VERSION}); upgrade Greenroom"
            )
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                session.execute(statement.format(**_TYPES[db.dialect]))
            session.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))
    return SCHEMA_VERSION
