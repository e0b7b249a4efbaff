"""The SQLite backend: one file in the data dir, WAL, `synchronous=FULL` (a committed write
survives a power cut), `secure_delete` (shredded keys are overwritten, not just unlinked).

Each thread gets its own connection; writes take the lock up front (`BEGIN IMMEDIATE`) so
concurrent writers (the gateway, a CLI) queue on the busy timeout instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.errors import AuditError, DuplicateEntryError

from .schema import Session

__all__ = ["SqliteDatabase"]

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
)


class _SqliteSession:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()


class SqliteDatabase:
    """An audit database in one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._create_private()

    def _create_private(self) -> None:
        """Create the file 0600 if it does not exist yet.

        Never open (and close) an existing database file ourselves: closing any descriptor of a file
        drops every POSIX lock this process holds on it, including SQLite's on a connection that is
        already open here — another process could then believe it is alone, and delete the WAL
        under us (writes that were acknowledged would vanish with it).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.exists():
                return
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # created by another process just now: theirs, and it is fine
                return
            os.close(fd)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot create the audit database: {exc.strerror}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise AuditError(f"{self.path}: the audit store is closed")
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            for pragma in _PRAGMAS:
                conn.execute(pragma)
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_SqliteSession]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot open a transaction: {exc}") from exc
        try:
            yield _SqliteSession(conn)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            _rollback(conn)
            raise DuplicateEntryError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            _rollback(conn)
            raise AuditError(f"{self.path}: audit database error: {exc}") from exc
        except BaseException:
            _rollback(conn)
            raise

    def lock_migrations(self, session: Session) -> None:
        return None  # BEGIN IMMEDIATE already holds the write lock

    def checkpoint_wal(self) -> None:
        """Fold the WAL back into the database file and truncate it (after shredding keys)."""
        try:
            self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot checkpoint the WAL: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
