"""Login, server-side sessions and CSRF tokens for the review UI.

A session lives in this process's memory; the browser holds only its random id, signed with
HMAC-SHA256 under a key kept in the data dir (`keys/review-session.key`, created 0600), in an
HttpOnly, SameSite=Strict cookie. Every session carries its own CSRF token, which every POST must
echo; the login form, before any session exists, uses a signed double-submit cookie instead.
Sessions end after `idle_seconds` without a request and `max_seconds` after login. Repeated
wrong passwords for one user name lock it out for a while.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.models import GatewayConfig, Role, User
from gateway.passwords import hash_password, verify_password

__all__ = ["Session", "SessionStore", "authenticate", "load_or_create_key"]


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, so they cost as much as known ones (made on first use)."""
    return hash_password(secrets.token_urlsafe(16))


def load_or_create_key(path: Path) -> bytes:
    """The session signing key: 32 random bytes in a 0600 file, created on first use."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(f"{path}: the review session key is too short; delete it to make a new one") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


@dataclass(slots=True)
class Session:
    id: str
    user: str
    csrf: str
    created: float
    seen: float
    flash: list[str] = field(default_factory=list)


class SessionStore:
    """Sessions by id; cookies are `<id>.<hmac>`. Thread-safe."""

    def __init__(
        self,
        key: bytes,
        *,
        idle_seconds: float = 30 * 60,
        max_seconds: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._idle = idle_seconds
        self._max = max_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    # --- cookies --------------------------------------------------------------------------------

    def sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return f"{value}.{mac}"

    def unsign(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        value, mac = cookie.rsplit(".", 1)
        expected = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return value if hmac.compare_digest(mac, expected) else None

    # --- sessions -------------------------------------------------------------------------------

    def create(self, user: str) -> Session:
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            self._sessions[session.id] = session
        return session

    def get(self, cookie: str | None) -> Session | None:
        sid = self.unsign(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.seen > self._idle or now - session.created > self._max:
                del self._sessions[sid]
                return None
            session.seen = now
            return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def _expire(self, now: float) -> None:
        stale = [k for k, s in self._sessions.items() if now - s.seen > self._idle or now - s.created > self._max]
        for key in stale:
            del self._sessions[key]

    # --- throttling -----------------------------------------------------------------------------

    def locked_out(self, name: str, limit: int = 5, window: float = 900.0) -> bool:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < window]
            self._failures[name] = recent
            return len(recent) >= limit

    def failed(self, name: str) -> None:
        with self._lock:
            self._failures.setdefault(name, []).append(self._clock())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def authenticate(config: GatewayConfig, name: str, password: str) -> User | None:
    """The user when the password matches its scrypt hash; None otherwise (same work either way)."""
    user = config.user(name)
    if user is None:
        verify_password(password, _dummy_hash())
        return None
    return user if verify_password(password, user.password_hash) else None


def can_review(user: User) -> bool:
    """Reviewers and admins see every production and may decrypt captured inputs."""
    return user.role in (Role.REVIEWER, Role.ADMIN)
