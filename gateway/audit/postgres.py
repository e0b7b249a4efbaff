"""The PostgreSQL backend: psycopg 3 with a connection pool, shared safely by several replicas
(each writes only its own chain; unique keys, not serial ids, order and guard the entries).

The DSN may carry `options=-csearch_path=<schema>` to keep the tables in their own schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool

from gateway.errors import AuditError, DuplicateEntryError

from .schema import Session

__all__ = ["PostgresDatabase", "redact_dsn"]


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    dsn = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


class _PostgresSession:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(_placeholders(sql), params)
        return self._cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1:  # one statement: skip executemany's pipeline round trip
            self._cursor.execute(_placeholders(sql), rows[0])
        elif rows:
            self._cursor.executemany(_placeholders(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(_placeholders(sql), params)
        return self._cursor.fetchall()


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    """An audit database in PostgreSQL, through a connection pool."""

    dialect = "postgres"

    def __init__(self, dsn: str, *, max_connections: int = 8, connect_timeout: float = 10.0) -> None:
        self.description = redact_dsn(dsn)
        try:
            self._pool = psycopg_pool.ConnectionPool(
                dsn,
                min_size=1,
                max_size=max_connections,
                open=True,
                timeout=connect_timeout,
                kwargs={"autocommit": False},
                name="greenroom-audit",
            )
            self._pool.wait(timeout=connect_timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise AuditError(f"{self.description}: cannot connect to the audit database: {exc}") from exc

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_PostgresSession]:
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                yield _PostgresSession(cursor)
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateEntryError(f"{self.description}: {exc.diag.message_primary}") from exc
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise AuditError(f"{self.description}: audit database error: {exc}") from exc

    def lock_migrations(self, session: Session) -> None:
        session.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.greenroom_audit'))")

    def close(self) -> None:
        self._pool.close()
