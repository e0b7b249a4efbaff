"""Fixtures for the audit store: a data dir, and a store on SQLite or on the local PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (user postgres, database test; override the base DSN with env
GREENROOM_TEST_PG). Each test gets its own schema, dropped afterwards. These tests never skip: if
PostgreSQL is unreachable they fail, so CI notices.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from audit_helpers import PG_BASE, pg_dsn

from gateway.audit import AuditStore
from gateway.audit.checkpoint import Signer
from gateway.audit.postgres import PostgresDatabase
from gateway.audit.sqlite import SqliteDatabase

RUN_ID = secrets.token_hex(4)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, dropped after the test."""
    schema = f"gr_test_{RUN_ID}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


StoreFactory = Callable[..., AuditStore]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Open stores on the parametrized backend (same database each call); closed after the test."""
    opened: list[AuditStore] = []
    dsn = pg_dsn(request.getfixturevalue("pg_schema")) if backend == "postgres" else ""
    signer = Signer.load_or_create(tmp_path / "keys" / "audit-signing.key")

    def factory(replica_id: str = "replica-a", **options: Any) -> AuditStore:
        db = PostgresDatabase(dsn) if dsn else SqliteDatabase(tmp_path / "audit.sqlite3")
        options.setdefault("checkpoint_every", 4)
        options.setdefault("checkpoint_seconds", 3600.0)
        store = AuditStore(db, replica_id=replica_id, signer=signer, checkpoint_dir=tmp_path / "checkpoints", **options)
        opened.append(store)
        return store

    factory.dsn = dsn  # type: ignore[attr-defined]
    factory.data_dir = tmp_path  # type: ignore[attr-defined]
    yield factory
    for store in opened:
        store.close()
