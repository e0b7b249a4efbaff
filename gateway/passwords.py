"""Password and token hashing.

Passwords: scrypt (stdlib, memory-hard), stored as `scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`.
Checking one costs tens of milliseconds on purpose, so the proxy verifies a credential once and
caches the result (see identity.py) instead of hashing on every connection.
Reverse-mode tokens are long random strings: a sha256 digest is enough to store them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

__all__ = ["hash_password", "hash_token", "new_token", "verify_password"]

_LOG2_N, _R, _P, _LEN = 14, 8, 1, 32


def hash_password(password: str, *, log2_n: int = _LOG2_N) -> str:
    """A new scrypt hash of `password` with a random salt."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, log2_n, _R, _P)
    return "$".join(["scrypt", str(log2_n), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash; False for a wrong password or a malformed hash."""
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not (10 <= int(log2_n) <= 20) or not (1 <= int(r) <= 32) or not (1 <= int(p) <= 16):
            return False  # out-of-range costs: refuse rather than spend minutes (or gigabytes) on them
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    """A new reverse-mode gateway token."""
    return "grt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The digest stored in users.yaml for a reverse-mode token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_maxmem(log2_n, r, p), dklen=_LEN
    )


def _maxmem(log2_n: int, r: int, p: int) -> int:
    """Memory scrypt needs for these parameters (128·r·(n + p + 2) bytes), with headroom."""
    return 2 * 128 * r * ((1 << log2_n) + p + 2) + 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
