"""Signed checkpoints: a replica's chain head (sequence number and hash), signed with Ed25519 and
exported as a file to a second location that the database administrator cannot rewrite.

    <checkpoint-dir>/<replica-slug>/signer-<fingerprint>.pub   the replica's public key (raw, hex)
    <checkpoint-dir>/<replica-slug>/<seq, 16 digits>.json      one signed checkpoint per file

The signing key is `<data-dir>/keys/audit-signing.key` (0600, created on first use). A rewritten,
truncated or re-hashed chain no longer matches the checkpoints; a forged checkpoint fails its
signature (verification trusts the public keys in the checkpoint directory and the local one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import AuditError

from .record import canonical_bytes

__all__ = [
    "Checkpoint",
    "CheckpointFile",
    "Signer",
    "fingerprint",
    "latest_checkpoint_seq",
    "read_checkpoints",
    "replica_slug",
    "write_checkpoint",
]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A replica's chain head at one moment, signed."""

    replica: str
    seq: int
    hash: str
    event_id: str
    ts: float
    key: str
    """fingerprint of the signing key."""
    signature: str = ""
    """hex Ed25519 signature over `payload()`."""

    def payload(self) -> bytes:
        return canonical_bytes(
            {
                "v": 1,
                "replica": self.replica,
                "seq": self.seq,
                "hash": self.hash,
                "event_id": self.event_id,
                "ts": self.ts,
                "key": self.key,
            }
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "v": 1,
            "replica": self.replica,
            "seq": self.seq,
            "hash": self.hash,
            "event_id": self.event_id,
            "ts": self.ts,
            "key": self.key,
            "signature": self.signature,
        }


@dataclass(frozen=True, slots=True)
class CheckpointFile:
    """A checkpoint read back from the checkpoint directory, with whether its signature holds."""

    path: Path
    checkpoint: Checkpoint | None
    """None when the file cannot be parsed."""
    trusted: bool
    problem: str = ""


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _public_hex(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


class Signer:
    """The replica's Ed25519 checkpoint key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key = fingerprint(self.public)

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """Read `path` (PEM, 0600), creating it on first use."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                pem = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as out:
                        out.write(pem)
                        os.fsync(out.fileno())
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise AuditError(f"{path}: cannot read or create the checkpoint signing key: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditError(f"{path}: not an Ed25519 private key")
        return cls(private)

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        unsigned = Checkpoint(
            checkpoint.replica, checkpoint.seq, checkpoint.hash, checkpoint.event_id, checkpoint.ts, self.key
        )
        return Checkpoint(
            unsigned.replica,
            unsigned.seq,
            unsigned.hash,
            unsigned.event_id,
            unsigned.ts,
            unsigned.key,
            self._private.sign(unsigned.payload()).hex(),
        )

    def public_hex(self) -> str:
        return _public_hex(self.public)


def replica_slug(replica: str) -> str:
    """A directory name for a replica id (which may hold `:` or `/`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", replica)[:60]
    return f"{safe}-{hashlib.sha256(replica.encode()).hexdigest()[:8]}"


def write_checkpoint(directory: Path, checkpoint: Checkpoint, signer: Signer) -> Path:
    """Export one signed checkpoint (and the signer's public key) durably; return the file written.

    An existing file is never replaced: a checkpoint already exported for that sequence number
    with other content (a store restored from an old backup, say) stays as evidence, and this
    raises AuditError.
    """
    folder = directory / replica_slug(checkpoint.replica)
    target = folder / f"{checkpoint.seq:016d}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        pub = folder / f"signer-{signer.key}.pub"
        if not pub.exists():
            _write_once(pub, (signer.public_hex() + "\n").encode())
        _write_once(target, canonical_bytes(checkpoint.as_dict()) + b"\n")
    except OSError as exc:
        raise AuditError(f"{folder}: cannot export a checkpoint: {exc.strerror}") from exc
    return target


def _write_once(path: Path, data: bytes) -> None:
    """Write durably (fsync file and directory) without ever replacing an existing file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            if path.read_bytes() != data:
                raise AuditError(
                    f"{path}: a different checkpoint was already exported for this sequence number; "
                    "it is kept as evidence (was the store restored from an old backup?)"
                ) from None
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def latest_checkpoint_seq(directory: Path, replica: str) -> int:
    """The highest checkpointed sequence number of a replica (0 when none)."""
    folder = directory / replica_slug(replica)
    if not folder.is_dir():
        return 0
    seqs = [int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()]
    return max(seqs, default=0)


def read_checkpoints(directory: Path, extra_trusted: tuple[Ed25519PublicKey, ...] = ()) -> Iterator[CheckpointFile]:
    """Every checkpoint file under `directory`, each checked against the trusted public keys."""
    if not directory.is_dir():
        return
    local = {fingerprint(k): k for k in extra_trusted}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        trusted = dict(local) | _folder_keys(folder)
        for path in sorted(folder.glob("*.json")):
            yield _read_one(path, folder, trusted)


def _folder_keys(folder: Path) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for pub in folder.glob("signer-*.pub"):
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub.read_text().strip()))
        except (OSError, ValueError):
            continue
        keys[fingerprint(key)] = key
    return keys


def _read_one(path: Path, folder: Path, trusted: dict[str, Ed25519PublicKey]) -> CheckpointFile:
    try:
        raw = json.loads(path.read_bytes())
        checkpoint = Checkpoint(
            str(raw["replica"]),
            int(raw["seq"]),
            str(raw["hash"]),
            str(raw["event_id"]),
            float(raw["ts"]),
            str(raw["key"]),
            str(raw["signature"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CheckpointFile(path, None, False, f"unreadable checkpoint: {exc}")
    if replica_slug(checkpoint.replica) != folder.name or f"{checkpoint.seq:016d}" != path.stem:
        return CheckpointFile(path, checkpoint, False, "checkpoint file was moved or renamed")
    key = trusted.get(checkpoint.key)
    if key is None:
        return CheckpointFile(path, checkpoint, False, f"checkpoint signed by an unknown key {checkpoint.key}")
    try:
        key.verify(bytes.fromhex(checkpoint.signature), checkpoint.payload())
    except (InvalidSignature, ValueError):
        return CheckpointFile(path, checkpoint, False, "checkpoint signature does not verify (forged or altered)")
    return CheckpointFile(path, checkpoint, True)
