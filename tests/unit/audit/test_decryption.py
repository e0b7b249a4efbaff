"""gateway/audit/decryption.py: opening an event's captures is recorded first, and its outcome says what stayed closed.

The review UI and `greenroom audit show --decrypt` both go through `decrypt_captures`; their own
tests (tests/unit/review, test_audit_cli.py) check how each renders the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from audit_helpers import make_event

from gateway.audit import AuditEvent, AuditStore
from gateway.audit.decryption import decrypt_captures
from gateway.errors import AuditError, KeyShreddedError
from gateway.vault import CaptureKind, Vault, master_key_provider

PROD = "northern-lights"
INPUTS = ((CaptureKind.TEXT, "body.messages[0].content", "text/plain", b"Mara Quell at dawn"),
          (CaptureKind.MEDIA, "multipart:file", "image/png", b"\x89PNG\r\n\x1a\n..."))


@pytest.fixture
def store(make_store: Callable[..., AuditStore]) -> AuditStore:
    """The store on each backend (SQLite, the local PostgreSQL)."""
    return make_store()


@pytest.fixture
def vault(tmp_path: Path, store: AuditStore) -> Vault:
    return Vault(master_key_provider(tmp_path, env={}), store)


def recorded(store: AuditStore, vault: Vault, inputs: tuple[tuple[CaptureKind, str, str, bytes], ...]) -> str:
    """An event with these inputs sealed and recorded; its id."""
    event = make_event(production=PROD)
    store.record(event, vault.seal_many(event.id, PROD, list(inputs)) if inputs else ())
    return event.id


def decrypt_record() -> AuditEvent:
    return make_event(production=PROD, tool="greenroom", endpoint="audit.decrypt", user="carol")


@pytest.mark.parametrize(
    ("inputs", "shred", "plaintexts", "status", "error"),
    [
        pytest.param(INPUTS, False, [i[3] for i in INPUTS], 200, "", id="every capture opens"),
        pytest.param((), False, [], 200, "", id="no captures"),
        pytest.param(INPUTS, True, [None, None], None, "KeyShreddedError", id="key shredded: closed, named"),
    ],
)
def test_opens_each_capture_and_completes_the_record(
    store: AuditStore, vault: Vault, inputs: tuple[tuple[CaptureKind, str, str, bytes], ...], shred: bool,
    plaintexts: list[bytes | None], status: int | None, error: str,
) -> None:
    """Plaintext per capture (or the vault's error); the decryption record's outcome: 200, or the errors' names."""
    event_id = recorded(store, vault, inputs)
    if shred:
        vault.shred(PROD)
    record = decrypt_record()
    opened = decrypt_captures(store, vault, event_id, record)
    assert [o.plaintext for o in opened] == plaintexts
    assert [o.capture.location for o in opened] == [i[1] for i in inputs]
    assert all(isinstance(o.error, KeyShreddedError) for o in opened) if shred else all(o.error is None for o in opened)
    stored = store.get(record.id)
    assert stored is not None and stored.outcome is not None
    assert (stored.outcome.status, stored.outcome.error) == (status, error)


def test_no_record_no_plaintext(store: AuditStore, vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the decryption cannot be recorded, nothing is opened and the error reaches the caller."""
    event_id = recorded(store, vault, INPUTS)

    def refuse(*_: object) -> None:
        raise AuditError("the store is read-only")

    def must_not_open(*_: object) -> bytes:
        raise AssertionError("a capture was opened without a record")

    monkeypatch.setattr(store, "record", refuse)
    monkeypatch.setattr(vault, "open", must_not_open)
    with pytest.raises(AuditError):
        decrypt_captures(store, vault, event_id, decrypt_record())
