"""Audit: the event model, sinks, the durable store (SQLite, PostgreSQL), integrity chain and checkpoints.

Using the store (the proxy, from a worker thread):

    store = open_store(data_dir, config.settings.audit)      # SQLite, or PostgreSQL when configured
    vault = Vault(master_key_provider(data_dir), store)      # gateway.vault
    captures = [vault.seal(event.id, event.production, CaptureKind.TEXT, location, content_type, data)]
    store.record(event, captures)     # returns once durable; raises AuditError -> refuse with a 503
    store.complete(event, outcome)    # when the exchange ends (errors and disconnects included)
    store.close()                     # on shutdown: drains the queue, signs a final checkpoint

Data dir:

    audit.sqlite3                 the store (SQLite; WAL, synchronous=FULL), 0600
    keys/master.key               master key (0600; or env GREENROOM_MASTER_KEY, base64 of 32 bytes)
    keys/audit-signing.key        Ed25519 checkpoint signing key (0600)
    checkpoints/<replica>/        signed checkpoints and the signer's public key (audit.checkpoint_dir)

Integrity:

1. Each replica (GREENROOM_REPLICA_ID, audit.replica_id, or <hostname>:<data-dir hash>) appends to
   its own chain: entry n has a unique (replica, n) and hash(n) = sha256(tag, replica, n, kind,
   hash(n-1), canonical body); the body is stored verbatim and includes every timestamp.
2. Outcomes are entries of the same chain (kind `outcome`), hashed and linked like events.
3. Captures are not in the chain, but each event's body lists their ciphertext sha256, so a
   swapped or altered capture is detected; purging or shredding leaves the chain intact.
4. Every N entries or T seconds the chain head is signed (Ed25519) and exported as a write-once
   file to the checkpoint directory, which the database administrator must not be able to rewrite.
5. `verify()` rehashes every chain (modified, deleted, inserted, reordered entries) and compares
   it with the signed checkpoints (truncated, or re-hashed after an edit); see `integrity`.
"""

from .event import AuditEvent, Outcome, new_event_id
from .integrity import Problem, VerifyReport
from .sink import AuditSink, LogSink, MultiSink
from .store import AuditStore, StoredEvent, default_replica_id, open_store

__all__ = [
    "AuditEvent",
    "AuditSink",
    "AuditStore",
    "LogSink",
    "MultiSink",
    "Outcome",
    "Problem",
    "StoredEvent",
    "VerifyReport",
    "default_replica_id",
    "new_event_id",
    "open_store",
]
