"""Envelope encryption of captured inputs.

    master key (KeyProvider: a 0600 file in the data dir, env GREENROOM_MASTER_KEY, or a KMS)
     └── wraps each production's key-encryption key (KEK), one per key version, kept in the store
          └── wraps each capture's own AES-256-GCM data key (DEK), kept next to the capture
               └── encrypts the capture; its authenticated data binds event id, production,
                   kind, location and content type, so a capture moved to another event fails

`rotate()` makes a new KEK version and rewraps every data key under it, then destroys the old
versions; the captures themselves are not re-encrypted. `shred()` destroys every KEK version of a
production: its captures can never be read again, while the audit metadata (which never depends
on a key) still verifies. `purge()` deletes captures older than a production's retention.

Plaintext exists only in memory: `seal()` takes bytes and returns a `Capture` holding ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import DecryptionError, KeyShreddedError, VaultError

__all__ = [
    "MASTER_KEY_ENV",
    "Capture",
    "CaptureKind",
    "KeyProvider",
    "KeyTable",
    "LocalKeyProvider",
    "ProductionKey",
    "Vault",
    "WrappedDataKey",
    "master_key_provider",
]

MASTER_KEY_ENV = "GREENROOM_MASTER_KEY"
_NONCE = 12
_KEY = 32


class CaptureKind(StrEnum):
    """What a captured input is: text (prompts, documents as text) or media (images, audio, video, files)."""

    TEXT = "text"
    MEDIA = "media"


@dataclass(frozen=True, slots=True)
class Capture:
    """One captured input, encrypted. Never holds plaintext."""

    event_id: str
    production: str
    kind: CaptureKind
    location: str
    """where it sat in the request (`body.messages[0].content`, `multipart:file`)."""
    content_type: str
    ciphertext: bytes
    """nonce ‖ AES-256-GCM(plaintext) ‖ tag, under the capture's own data key."""
    wrapped_key: bytes
    """nonce ‖ AES-256-GCM(data key) ‖ tag, under the production's key version `key_version`."""
    key_version: int
    size: int
    """plaintext length in bytes."""

    @property
    def digest(self) -> str:
        """sha256 of the ciphertext: what the audit chain records, so a swapped ciphertext is detected."""
        return hashlib.sha256(self.ciphertext).hexdigest()

    def describe(self) -> dict[str, object]:
        """Metadata for the audit record and exports (no ciphertext, no key)."""
        return {
            "kind": self.kind.value,
            "location": self.location,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.digest,
        }


@dataclass(frozen=True, slots=True)
class ProductionKey:
    """One version of a production's key-encryption key, as stored: wrapped by the master key."""

    production: str
    version: int
    wrapped: bytes | None
    """None once destroyed (shredded, or superseded by a rotation)."""
    created: float


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A capture's data key as stored, addressed by (event id, index)."""

    event_id: str
    index: int
    key_version: int
    wrapped_key: bytes


class KeyProvider(Protocol):
    """Protects production keys; a KMS can implement this (wrap = Encrypt, unwrap = Decrypt)."""

    @property
    def key_id(self) -> str:
        """A stable, non-secret name for the master key (recorded with nothing secret)."""

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Encrypt a key, binding it to context (authenticated, not encrypted)."""

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt a wrapped key; raise DecryptionError if the blob or context do not authenticate."""


class KeyTable(Protocol):
    """Where production keys and capture data keys live (the audit store implements this)."""

    def load_keys(self, production: str) -> list[ProductionKey]:
        """Every key version of a production, destroyed ones included."""

    def add_key(self, key: ProductionKey) -> bool:
        """Store a new key version; False when that version already exists (another replica won)."""

    def destroy_keys(self, production: str) -> int:
        """Erase every wrapped key version of a production; return how many were live."""

    def rewrap_data_keys(
        self, production: str, version: int, rewrap: Callable[[WrappedDataKey], WrappedDataKey | None]
    ) -> int:
        """Atomically: replace each capture key not under `version` by `rewrap(key)` (None: leave it),
        then destroy versions below `version`. Returns how many were rewrapped."""

    def delete_captures(self, before: float, production: str | None = None) -> int:
        """Delete captures recorded before `before` (epoch seconds); return how many."""


class LocalKeyProvider:
    """A master key held in memory (from a 0600 file or an environment variable); AES-256-GCM wrapping."""

    def __init__(self, master: bytes) -> None:
        if len(master) != _KEY:
            raise VaultError(f"the master key must be {_KEY} bytes, got {len(master)}")
        self._aead = AESGCM(master)
        self._key_id = "local:" + hashlib.sha256(b"greenroom.master-key-id\n" + master).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context)
        except InvalidTag as exc:
            raise DecryptionError(
                "the master key does not open this production key (wrong master key, or the key was altered)"
            ) from exc


def master_key_provider(data_dir: str | Path, env: Mapping[str, str] | None = None) -> LocalKeyProvider:
    """The master key: env GREENROOM_MASTER_KEY (base64), else `<data-dir>/keys/master.key` (made 0600)."""
    environ = os.environ if env is None else env
    if encoded := environ.get(MASTER_KEY_ENV):
        return LocalKeyProvider(_decode_master(encoded))
    return LocalKeyProvider(_read_or_create_master(Path(data_dir) / "keys" / "master.key"))


def _decode_master(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VaultError(f"{MASTER_KEY_ENV} is not valid base64 (expected {_KEY} random bytes)") from exc


def _read_or_create_master(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_master(path)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(_KEY)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        return _read_master(path)
    except OSError as exc:
        raise VaultError(f"{path}: cannot read or create the master key: {exc.strerror}") from exc


def _read_master(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise VaultError(f"{path}: permissions {mode:o} are too open; run `chmod 600 {path}`")
    raw = path.read_bytes().strip()
    if not raw:
        raise VaultError(f"{path}: empty master key file (a writer may have crashed); restore it from backup")
    return _decode_master(raw.decode("ascii", "replace"))


@dataclass(frozen=True, slots=True)
class _CachedKey:
    kek: bytes | None
    fetched: float


class Vault:
    """Seal and open captures; rotate, shred and purge production keys. Thread-safe."""

    def __init__(
        self,
        provider: KeyProvider,
        keys: KeyTable,
        *,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider = provider
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current: dict[str, tuple[int, bytes, float]] = {}
        self._versions: dict[tuple[str, int], _CachedKey] = {}

    # --- sealing and opening --------------------------------------------------------------------

    def seal(
        self,
        event_id: str,
        production: str,
        kind: CaptureKind | str,
        location: str,
        content_type: str,
        plaintext: bytes,
    ) -> Capture:
        """Encrypt one captured input under a fresh data key, wrapped by the production's current key."""
        return self.seal_many(event_id, production, [(kind, location, content_type, plaintext)])[0]

    def seal_many(
        self,
        event_id: str,
        production: str,
        items: Sequence[tuple[CaptureKind | str, str, str, bytes]],
    ) -> list[Capture]:
        """Encrypt every input of one event: one fresh data key for the event, wrapped once.

        Each item (kind, location, content type, plaintext) gets its own random nonce, and its
        associated data binds it to the event, production, kind, location and content type, so a
        capture moved to another event or location does not open. Destroying the event's data key
        (shredding the production key) makes all of them unreadable at once, as before.
        """
        if not items:
            return []
        version, kek = self._current_key(production)
        dek = AESGCM.generate_key(bit_length=256)
        cipher = AESGCM(dek)
        wrapped = _wrap_data_key(kek, dek, production, version, event_id)
        captures = []
        for kind, location, content_type, plaintext in items:
            kind = CaptureKind(kind)
            nonce = os.urandom(_NONCE)
            aad = _data_context(event_id, production, kind, location, content_type)
            captures.append(Capture(
                event_id=event_id,
                production=production,
                kind=kind,
                location=location,
                content_type=content_type,
                ciphertext=nonce + cipher.encrypt(nonce, plaintext, aad),
                wrapped_key=wrapped,
                key_version=version,
                size=len(plaintext),
            ))
        return captures

    def open(self, capture: Capture) -> bytes:
        """Decrypt; KeyShreddedError when its key is gone, DecryptionError when it does not authenticate."""
        kek = self._version_key(capture.production, capture.key_version)
        dek = _unwrap_data_key(kek, capture.wrapped_key, capture.production, capture.key_version, capture.event_id)
        aad = _data_context(capture.event_id, capture.production, capture.kind, capture.location, capture.content_type)
        try:
            return AESGCM(dek).decrypt(capture.ciphertext[:_NONCE], capture.ciphertext[_NONCE:], aad)
        except InvalidTag as exc:
            raise DecryptionError(
                f"capture of {capture.event_id} at {capture.location!r} does not authenticate: its "
                "bytes were altered, or it was moved from another event or production"
            ) from exc

    # --- key lifecycle --------------------------------------------------------------------------

    def rotate(self, production: str, settle_seconds: float | None = None) -> int:
        """New key version; rewrap every data key under it; destroy older versions. Returns keys rewrapped.

        Between creating the new version and destroying the old ones it waits `settle_seconds`
        (default: the key cache lifetime) so that every replica has switched to the new version; a
        capture still sealed under an old one afterwards is refused by the store (fail closed).
        """
        version, kek = self._create_key(production)
        time.sleep(self._cache_seconds if settle_seconds is None else settle_seconds)
        old = {
            k.version: self._unwrap_kek(k)
            for k in self._keys.load_keys(production)
            if k.wrapped is not None and k.version < version
        }

        def rewrap(stored: WrappedDataKey) -> WrappedDataKey | None:
            previous = old.get(stored.key_version)
            if previous is None:
                return None  # already destroyed: that capture stays unreadable
            dek = _unwrap_data_key(previous, stored.wrapped_key, production, stored.key_version, stored.event_id)
            wrapped = _wrap_data_key(kek, dek, production, version, stored.event_id)
            return WrappedDataKey(stored.event_id, stored.index, version, wrapped)

        count = self._keys.rewrap_data_keys(production, version, rewrap)
        self._forget(production)
        return count

    def shred(self, production: str) -> int:
        """Destroy every key version of a production: its captures become unreadable forever."""
        destroyed = self._keys.destroy_keys(production)
        self._forget(production)
        return destroyed

    def purge(self, retention_days: int, production: str | None = None, now: float | None = None) -> int:
        """Delete captures older than `retention_days` (of one production, or all); return how many."""
        if retention_days < 0:
            raise VaultError("retention_days must not be negative")
        cutoff = (self._clock() if now is None else now) - retention_days * 86400.0
        return self._keys.delete_captures(cutoff, production)

    # --- keys -----------------------------------------------------------------------------------

    def _current_key(self, production: str) -> tuple[int, bytes]:
        """The newest live key version (cached briefly), creating the first one when there is none."""
        now = self._clock()
        with self._lock:
            cached = self._current.get(production)
            if cached and now - cached[2] < self._cache_seconds:
                return cached[0], cached[1]
        for _ in range(5):
            stored = self._keys.load_keys(production)
            live = [k for k in stored if k.wrapped is not None]
            if live:
                newest = max(live, key=lambda k: k.version)
                kek = self._unwrap_kek(newest)
                with self._lock:
                    self._current[production] = (newest.version, kek, now)
                return newest.version, kek
            if created := self._add_version(production, max((k.version for k in stored), default=0) + 1):
                return created
        raise VaultError(f"could not create a key for production {production!r}: too many concurrent writers")

    def _create_key(self, production: str) -> tuple[int, bytes]:
        """A new key version, newer than any other (for rotation)."""
        for _ in range(5):
            version = max((k.version for k in self._keys.load_keys(production)), default=0) + 1
            if created := self._add_version(production, version):
                return created
        raise VaultError(f"could not create a key for production {production!r}: too many concurrent writers")

    def _add_version(self, production: str, version: int) -> tuple[int, bytes] | None:
        """Store a new key version; None when another writer took that version number first."""
        kek = AESGCM.generate_key(bit_length=256)
        wrapped = self._provider.wrap(kek, _kek_context(production, version))
        if not self._keys.add_key(ProductionKey(production, version, wrapped, self._clock())):
            return None
        with self._lock:
            self._current[production] = (version, kek, self._clock())
        return version, kek

    def _version_key(self, production: str, version: int) -> bytes:
        now = self._clock()
        with self._lock:
            cached = self._versions.get((production, version))
        if cached is None or now - cached.fetched >= self._cache_seconds:
            stored = next((k for k in self._keys.load_keys(production) if k.version == version), None)
            kek = self._unwrap_kek(stored) if stored is not None and stored.wrapped is not None else None
            cached = _CachedKey(kek, now)
            if kek is not None:  # never cache absence: another replica may create that version now
                with self._lock:
                    self._versions[(production, version)] = cached
        if cached.kek is None:
            raise KeyShreddedError(
                f"the key (version {version}) of production {production!r} was destroyed: "
                "this capture can no longer be read"
            )
        return cached.kek

    def _unwrap_kek(self, stored: ProductionKey) -> bytes:
        assert stored.wrapped is not None
        return self._provider.unwrap(stored.wrapped, _kek_context(stored.production, stored.version))

    def _forget(self, production: str) -> None:
        with self._lock:
            self._current.pop(production, None)
            for key in [k for k in self._versions if k[0] == production]:
                del self._versions[key]


def _kek_context(production: str, version: int) -> bytes:
    return json.dumps(["greenroom.kek.v1", production, version]).encode()


def _dek_context(production: str, version: int, event_id: str) -> bytes:
    return json.dumps(["greenroom.dek.v1", production, version, event_id]).encode()


def _data_context(event_id: str, production: str, kind: CaptureKind, location: str, content_type: str) -> bytes:
    return json.dumps(["greenroom.capture.v1", event_id, production, kind.value, location, content_type]).encode()


def _wrap_data_key(kek: bytes, dek: bytes, production: str, version: int, event_id: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _dek_context(production, version, event_id))


def _unwrap_data_key(kek: bytes, wrapped: bytes, production: str, version: int, event_id: str) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _dek_context(production, version, event_id))
    except InvalidTag as exc:
        raise DecryptionError(
            f"the data key of a capture of {event_id} does not authenticate: wrong production key, altered "
            "key, or the capture was moved from another event"
        ) from exc
