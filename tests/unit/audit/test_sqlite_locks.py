"""Regression: a second handle on the audit database in the same process must not cost writes.

Closing any descriptor of a file drops every POSIX lock the process holds on it. The store once
opened-and-closed an existing database file to set its mode; another process that then opened and
closed the database believed it was alone and deleted the WAL under the gateway, whose acknowledged
writes vanished with it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from audit_helpers import make_event

from gateway.audit import open_store
from gateway.audit.sqlite import SqliteDatabase


def test_writes_survive_another_handle_and_another_process(tmp_path: Path) -> None:
    store = open_store(tmp_path, replica_id="gw", env={})
    store.record(make_event(1))
    SqliteDatabase(tmp_path / "audit.sqlite3").close()  # a second handle in this process (e.g. a ledger)
    other = subprocess.run(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('select count(*) from audit_entries').fetchone(); c.close()", str(tmp_path / "audit.sqlite3")],
        capture_output=True, text=True, check=True,
    )
    assert other.returncode == 0
    store.record(make_event(2))
    with sqlite3.connect(tmp_path / "audit.sqlite3") as reader:
        count = reader.execute("SELECT count(*) FROM audit_entries WHERE kind = 'event'").fetchone()[0]
    store.close()
    assert count == 2
