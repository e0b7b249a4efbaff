"""The vault: envelope encryption of captured inputs, key rotation, shredding, purging."""

from __future__ import annotations

import base64
import dataclasses
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from gateway.audit import AuditEvent, AuditStore, new_event_id, open_store
from gateway.decision import Decision
from gateway.errors import AuditError, DecryptionError, KeyShreddedError, VaultError
from gateway.vault import MASTER_KEY_ENV, Capture, CaptureKind, LocalKeyProvider, Vault, master_key_provider


def make_event(production: str = "northern-lights", **fields: object) -> AuditEvent:
    values: dict[str, object] = dict(
        id=new_event_id(), ts=time.time(), user="alice", production=production, tool="openai-api",
        endpoint="chat.completions", capability="chat", method="POST", host="api.openai.com",
        path="/v1/chat/completions", mode="proxy", client="10.0.0.7", decision=Decision.allow(),
    )  # fmt: skip
    values.update(fields)
    return AuditEvent(**values)  # type: ignore[arg-type]


PROD = "northern-lights"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path, replica_id="vault-test", env={}) as s:
        yield s


@pytest.fixture
def vault(tmp_path: Path, store: AuditStore) -> Vault:
    return Vault(master_key_provider(tmp_path, env={}), store)


def seal_and_record(
    store: AuditStore,
    vault: Vault,
    plaintext: bytes,
    production: str = PROD,
    kind: CaptureKind = CaptureKind.TEXT,
    ts: float | None = None,
) -> Capture:
    event = make_event(production=production, **({"ts": ts} if ts is not None else {}))
    capture = vault.seal(event.id, production, kind, "body.messages[0].content", "text/plain", plaintext)
    store.record(event, [capture])
    return capture


@pytest.mark.parametrize(
    ("kind", "plaintext"),
    [
        (CaptureKind.TEXT, b""),
        (CaptureKind.TEXT, "Mara Quell walks into Project Lantern — 🎬".encode()),
        (CaptureKind.MEDIA, b"\x89PNG\r\n\x1a\n" + os.urandom(4096)),
        (CaptureKind.MEDIA, os.urandom(1 << 20)),
    ],
    ids=["empty", "unicode text", "image", "1 MiB"],
)
def test_round_trip(store: AuditStore, vault: Vault, kind: CaptureKind, plaintext: bytes) -> None:
    """What is sealed and recorded opens to the same bytes; the ciphertext is not the plaintext."""
    capture = seal_and_record(store, vault, plaintext, kind=kind)
    (stored,) = store.captures(capture.event_id)
    assert stored == capture
    assert vault.open(stored) == plaintext
    assert stored.size == len(plaintext)
    assert plaintext[:64] not in stored.ciphertext or not plaintext


def flip(data: bytes, index: int = -1) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


TAMPERING = [
    (
        "flipped ciphertext bit",
        lambda c: dataclasses.replace(c, ciphertext=flip(c.ciphertext)),
        DecryptionError,
    ),
    (
        "flipped nonce bit",
        lambda c: dataclasses.replace(c, ciphertext=flip(c.ciphertext, 0)),
        DecryptionError,
    ),
    (
        "flipped wrapped-key bit",
        lambda c: dataclasses.replace(c, wrapped_key=flip(c.wrapped_key)),
        DecryptionError,
    ),
    ("moved to another event", lambda c: dataclasses.replace(c, event_id=make_event().id), DecryptionError),
    (
        "moved to another production",
        lambda c: dataclasses.replace(c, production="harbor-nights"),
        DecryptionError,
    ),
    ("relabelled location", lambda c: dataclasses.replace(c, location="body.other"), DecryptionError),
    ("relabelled content type", lambda c: dataclasses.replace(c, content_type="image/png"), DecryptionError),
    ("relabelled kind", lambda c: dataclasses.replace(c, kind=CaptureKind.MEDIA), DecryptionError),
    ("unknown key version", lambda c: dataclasses.replace(c, key_version=7), KeyShreddedError),
]


@pytest.mark.parametrize(("name", "tamper", "error"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampered_captures_do_not_open(store: AuditStore, vault: Vault, name, tamper, error) -> None:
    """Any change to a capture, or moving it elsewhere, fails with a clear error, never wrong plaintext."""
    seal_and_record(store, vault, b"other production's key exists too", production="harbor-nights")
    capture = seal_and_record(store, vault, b"secret prompt")
    with pytest.raises(error) as info:
        vault.open(tamper(capture))
    assert "secret prompt" not in str(info.value)


def test_swapping_captures_between_events_fails(store: AuditStore, vault: Vault) -> None:
    """Another event's ciphertext and key under this event's id do not open."""
    first = seal_and_record(store, vault, b"first")
    second = seal_and_record(store, vault, b"second")
    swapped = dataclasses.replace(second, event_id=first.event_id)
    with pytest.raises(DecryptionError, match="moved from another event"):
        vault.open(swapped)


def test_a_wrong_master_key_fails(tmp_path: Path, store: AuditStore, vault: Vault) -> None:
    """The production key does not open under another master key."""
    capture = seal_and_record(store, vault, b"secret")
    other = Vault(LocalKeyProvider(os.urandom(32)), store)
    with pytest.raises(DecryptionError, match="wrong master key"):
        other.open(capture)


def test_rotation_rewraps_without_reencrypting(store: AuditStore, vault: Vault) -> None:
    """After rotate: same ciphertext, new key version and wrapped key, still opens; old version destroyed."""
    before = [seal_and_record(store, vault, f"input {n}".encode()) for n in range(3)]
    assert vault.rotate(PROD, settle_seconds=0) == 3
    after = [store.captures(c.event_id)[0] for c in before]
    for old, new in zip(before, after, strict=True):
        assert new.ciphertext == old.ciphertext
        assert (old.key_version, new.key_version) == (1, 2)
        assert new.wrapped_key != old.wrapped_key
        assert vault.open(new) == vault.open(new)
    assert [vault.open(c) for c in after] == [b"input 0", b"input 1", b"input 2"]
    assert [(k.version, k.wrapped is None) for k in sorted(store.load_keys(PROD), key=lambda k: k.version)] == [
        (1, True),
        (2, False),
    ]
    with pytest.raises(KeyShreddedError):
        Vault(master_key_provider(store.checkpoint_dir.parent, env={}), store).open(before[0])
    assert seal_and_record(store, vault, b"new").key_version == 2
    assert store.verify().ok


def test_shredding_makes_captures_unreadable_but_the_trail_verifies(
    tmp_path: Path, store: AuditStore, vault: Vault
) -> None:
    """Shred: every capture of that production is unreadable (also from a fresh vault); others are not."""
    gone = seal_and_record(store, vault, b"shred me")
    kept = seal_and_record(store, vault, b"keep me", production="harbor-nights")
    assert vault.shred(PROD) == 1
    for reader in (vault, Vault(master_key_provider(tmp_path, env={}), store)):
        with pytest.raises(KeyShreddedError, match="destroyed"):
            reader.open(store.captures(gone.event_id)[0])
        assert reader.open(store.captures(kept.event_id)[0]) == b"keep me"
    later = seal_and_record(store, vault, b"after the shred")
    assert later.key_version == 2
    assert vault.open(later) == b"after the shred"
    assert store.verify().ok


def test_purge_deletes_only_old_captures(store: AuditStore, vault: Vault) -> None:
    """Captures older than the retention go; newer ones and other productions stay; the trail verifies."""
    old = seal_and_record(store, vault, b"old", ts=time.time() - 10 * 86400)
    other = seal_and_record(
        store, vault, b"old, other production", production="harbor-nights", ts=time.time() - 10 * 86400
    )
    new = seal_and_record(store, vault, b"new")
    assert vault.purge(7, PROD) == 1
    assert store.captures(old.event_id) == ()
    assert store.captures(new.event_id) != ()
    assert store.captures(other.event_id) != ()
    assert vault.purge(7) == 1
    assert store.verify().ok


def test_the_master_key_file_is_private_and_stable(tmp_path: Path) -> None:
    """Created 0600 on first use, read back the same afterwards."""
    first = master_key_provider(tmp_path, env={})
    path = tmp_path / "keys" / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert master_key_provider(tmp_path, env={}).key_id == first.key_id


def test_a_readable_master_key_file_is_refused(tmp_path: Path) -> None:
    master_key_provider(tmp_path, env={})
    path = tmp_path / "keys" / "master.key"
    path.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        master_key_provider(tmp_path, env={})


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (base64.b64encode(b"k" * 32).decode(), True),
        ("not base64!", False),
        (base64.b64encode(b"short").decode(), False),
    ],
    ids=["32 bytes", "not base64", "too short"],
)
def test_the_master_key_from_the_environment(tmp_path: Path, value: str, ok: bool) -> None:
    """GREENROOM_MASTER_KEY wins over the file (none is created); a bad value is a clear error."""
    if ok:
        assert master_key_provider(tmp_path, env={MASTER_KEY_ENV: value}).key_id.startswith("local:")
    else:
        with pytest.raises(VaultError):
            master_key_provider(tmp_path, env={MASTER_KEY_ENV: value})
    assert not (tmp_path / "keys" / "master.key").exists()


CANARY_TEXT = "CANARY-7f3a9c-Project-Lantern-Mara-Quell"
CANARY_IMAGE = b"\x89PNG\r\n\x1a\n" + b"CANARY-IMAGE-" + bytes(range(256)) * 8


def test_no_plaintext_canary_anywhere_under_the_data_dir(tmp_path: Path) -> None:
    """A canary text and image, sealed, recorded, decrypted and rotated, never reach a file or a log."""
    with structlog.testing.capture_logs() as logs, open_store(tmp_path, replica_id="canary", env={}) as store:
        vault = Vault(master_key_provider(tmp_path, env={}), store)
        text = seal_and_record(store, vault, CANARY_TEXT.encode())
        image = seal_and_record(store, vault, CANARY_IMAGE, kind=CaptureKind.MEDIA)
        assert vault.open(text) == CANARY_TEXT.encode()
        vault.rotate(PROD, settle_seconds=0)
        assert vault.open(store.captures(image.event_id)[0]) == CANARY_IMAGE
        store.checkpoint()
    needles = [
        CANARY_TEXT.encode(),
        CANARY_TEXT.encode("utf-16-le"),
        CANARY_IMAGE[8:40],
        base64.b64encode(CANARY_IMAGE)[:40],
    ]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "audit.sqlite3" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"plaintext canary found in {path}"
    assert CANARY_TEXT not in repr(logs)


@pytest.mark.parametrize("change", ["shred", "rotate"])
def test_a_replica_with_a_stale_key_cache_fails_closed(tmp_path: Path, store: AuditStore, change: str) -> None:
    """Another replica shreds or rotates; a capture sealed under the destroyed key is refused by the
    store (the request is stopped, nothing unreadable is stored); once the cache expires, sealing works."""
    now = [time.time()]
    stale = Vault(master_key_provider(tmp_path, env={}), store, cache_seconds=60, clock=lambda: now[0])
    other = Vault(master_key_provider(tmp_path, env={}), store)
    seal_and_record(store, stale, b"first")
    if change == "shred":
        other.shred(PROD)
    else:
        other.rotate(PROD, settle_seconds=0)
    with pytest.raises(AuditError, match="destroyed meanwhile"):
        seal_and_record(store, stale, b"sealed under a destroyed key")
    now[0] += 61
    fresh = seal_and_record(store, stale, b"after the cache expired")
    assert stale.open(fresh) == b"after the cache expired"
    assert fresh.key_version == 2
    assert store.verify().ok


def test_concurrent_first_seals_share_one_key(tmp_path: Path, store: AuditStore) -> None:
    """Many threads (and vaults, as replicas would) sealing a production's first capture create one key."""
    vaults = [Vault(master_key_provider(tmp_path, env={}), store) for _ in range(4)]
    versions: list[int] = []

    def seal(vault: Vault) -> None:
        versions.append(vault.seal(make_event().id, "new-show", "text", "body", "text/plain", b"x").key_version)

    threads = [threading.Thread(target=seal, args=(v,)) for v in vaults for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert versions == [1] * 16
    assert [k.version for k in store.load_keys("new-show")] == [1]


def _seal_event(store: AuditStore, vault: Vault, items: list[tuple[str, bytes]]) -> list[Capture]:
    event = make_event()
    captures = vault.seal_many(event.id, PROD, [(CaptureKind.TEXT, loc, "text/plain", data) for loc, data in items])
    store.record(event, captures)
    return captures


def test_one_event_is_sealed_under_one_data_key_and_every_capture_opens(store: AuditStore, vault: Vault) -> None:
    """seal_many: one wrapped key per event, a fresh nonce per capture, each opens to its own bytes."""
    items = [("body.model", b"gpt-x"), ("body.messages[0].content", b"Mara Quell"), ("body.messages[1].content", b"")]
    captures = _seal_event(store, vault, items)
    assert len({c.wrapped_key for c in captures}) == 1
    assert len({c.ciphertext[:12] for c in captures}) == 3
    stored = store.captures(captures[0].event_id)
    assert [vault.open(c) for c in stored] == [data for _, data in items]


@pytest.mark.parametrize(
    ("name", "move"),
    [
        ("to another location", lambda c, other: dataclasses.replace(c, location=other.location)),
        ("swapped ciphertexts", lambda c, other: dataclasses.replace(c, ciphertext=other.ciphertext)),
        ("another content type", lambda c, other: dataclasses.replace(c, content_type="image/png")),
    ],
)
def test_captures_of_one_event_cannot_be_swapped(store: AuditStore, vault: Vault, name: str, move) -> None:
    """Sharing the event's data key does not let one capture pass for another."""
    first, second = _seal_event(store, vault, [("body.a", b"first"), ("body.b", b"second")])
    with pytest.raises(DecryptionError):
        vault.open(move(first, second))


def test_rotation_and_shredding_cover_every_capture_of_an_event(
    tmp_path: Path, store: AuditStore, vault: Vault
) -> None:
    """Rotation rewraps each capture's copy of the event key; shredding makes all of them unreadable."""
    captures = _seal_event(store, vault, [("body.a", b"one"), ("body.b", b"two")])
    assert vault.rotate(PROD, settle_seconds=0) == 2
    rotated = store.captures(captures[0].event_id)
    assert [c.key_version for c in rotated] == [2, 2]
    assert [vault.open(c) for c in rotated] == [b"one", b"two"]
    vault.shred(PROD)
    for reader in (vault, Vault(master_key_provider(tmp_path, env={}), store)):
        for capture in store.captures(captures[0].event_id):
            with pytest.raises(KeyShreddedError):
                reader.open(capture)
    assert store.verify().ok


def test_sealing_nothing_needs_no_key(store: AuditStore, vault: Vault) -> None:
    assert vault.seal_many(new_event_id(), PROD, []) == []
    assert store.load_keys(PROD) == []
