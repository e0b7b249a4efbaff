"""gateway/passwords.py: scrypt password hashes and reverse-mode token digests."""

from __future__ import annotations

import hashlib

import pytest

from gateway.passwords import hash_password, hash_token, new_token, verify_password

FAST = 10  # log2 n: the minimum verify_password accepts, so tests stay quick


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse", log2_n=FAST)


def test_round_trip(stored: str) -> None:
    """A password verifies against its own hash."""
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse", stored) is True


@pytest.mark.parametrize("attempt", ["wrong", "", "correct horse ", "Correct horse", "correct hors"])
def test_wrong_password(stored: str, attempt: str) -> None:
    """Any other password fails."""
    assert verify_password(attempt, stored) is False


def test_salted() -> None:
    """Two hashes of one password differ (random salt) and both verify."""
    a, b = hash_password("pw", log2_n=FAST), hash_password("pw", log2_n=FAST)
    assert a != b
    assert verify_password("pw", a) and verify_password("pw", b)


def test_unicode_password() -> None:
    """Non-ASCII passwords round-trip."""
    stored = hash_password("pässwörd-🎬", log2_n=FAST)
    assert verify_password("pässwörd-🎬", stored)
    assert not verify_password("passwort-🎬", stored)


def _swap(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


MALFORMED = [
    "",
    "plain-password",
    "scrypt",
    "scrypt$10$8$1$AAAA",
    "scrypt$10$8$1$salt$hash$extra",
    "bcrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$9$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$21$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$10$0$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$10$8$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$10$-1$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$10$8$1$!!!notbase64$AAAA",
    "scrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA==$!!!",
    "scrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA==$",
    "scrypt$10$99999$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
]


@pytest.mark.parametrize("stored_hash", MALFORMED)
def test_malformed_hash_is_false_never_raises(stored_hash: str) -> None:
    """A malformed or out-of-range stored hash is a failed check, not an exception."""
    assert verify_password("pw", stored_hash) is False


def test_tampered_digest_fails(stored: str) -> None:
    """Changing the stored digest or salt makes the right password fail."""
    digest = stored.split("$")[5]
    other = ("B" if digest[0] != "B" else "C") + digest[1:]
    assert verify_password("correct horse", _swap(stored, 5, other)) is False
    assert verify_password("correct horse", _swap(stored, 4, "AAAAAAAAAAAAAAAAAAAAAA==")) is False


def test_tokens() -> None:
    """New tokens are prefixed, unique and high-entropy; their digest is sha256 hex."""
    a, b = new_token(), new_token()
    assert a.startswith("grt_") and a != b and len(a) >= 40
    assert hash_token(a) == hashlib.sha256(a.encode()).hexdigest()
    assert len(hash_token(a)) == 64


def test_highest_cost_in_the_accepted_range_round_trips() -> None:
    """verify_password accepts log2 n up to 20, so a hash at log2 n = 18 must be creatable and verify.

    Today scrypt's `maxmem` (256 MiB) is exactly what n = 2**18, r = 8 needs, so hashing raises a bare
    ValueError and such a stored hash can never verify (the accepted range and maxmem disagree).
    """
    stored = hash_password("pw", log2_n=18)
    assert verify_password("pw", stored)
