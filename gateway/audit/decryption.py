"""Decrypting an event's captured inputs, audited: no record of the act, no plaintext.

The review UI (`POST /events/{id}/decrypt`) and the CLI (`greenroom audit show --decrypt`) both go
through `decrypt_captures`; each builds its own record of who decrypts, from where, and renders the
plaintext its own way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.errors import VaultError
from gateway.vault import Capture, Vault

from .event import AuditEvent, Outcome
from .store import AuditStore

__all__ = ["OpenedCapture", "decrypt_captures"]


@dataclass(frozen=True, slots=True)
class OpenedCapture:
    """One captured input, decrypted; or, when the vault refused it, why (`plaintext` is None)."""

    capture: Capture
    plaintext: bytes | None
    error: VaultError | None = None


def decrypt_captures(store: AuditStore, vault: Vault, event_id: str, record: AuditEvent) -> tuple[OpenedCapture, ...]:
    """Record `record` (raising if it cannot be), open every capture of `event_id`, then complete the
    record: status 200, or none and the names of the vault errors that kept captures closed."""
    started = time.perf_counter()
    store.record(record)
    opened = tuple(_open(vault, capture) for capture in store.captures(event_id))
    failures = sorted({type(o.error).__name__ for o in opened if o.error is not None})
    store.complete(record, Outcome(
        status=None if failures else 200,
        duration_ms=(time.perf_counter() - started) * 1000,
        response_bytes=0,
        streamed=False,
        error=", ".join(failures),
    ))  # fmt: skip
    return opened


def _open(vault: Vault, capture: Capture) -> OpenedCapture:
    try:
        return OpenedCapture(capture, vault.open(capture))
    except VaultError as exc:
        return OpenedCapture(capture, None, exc)
