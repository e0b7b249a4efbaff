"""Who is sending a request: proxy credentials, reverse-mode tokens, source networks.

A password hash costs tens of milliseconds by design, and checking it on the proxy's event loop
for every new connection stalls every user. `Authenticator` verifies a credential once in a worker
thread (concurrent checks of the same credential share one hash) and caches the result, keyed by
an HMAC of the credential under a per-process random key, so the cache never holds a password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.config.models import GatewayConfig, NetworkMapping, Role, User
from gateway.passwords import hash_token, verify_password

__all__ = ["Authenticator", "Credential", "Principal", "parse_basic"]

_NEGATIVE_SECONDS = 10.0
_MAX_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The person (or network) behind a request, and the production it is attributed to."""

    user: str
    role: Role
    production: str | None
    via: Literal["proxy_auth", "token", "network"]
    production_problem: str = ""
    """why no production could be chosen (empty when `production` is set)."""


@dataclass(frozen=True, slots=True)
class Credential:
    user: str
    password: str
    production: str | None = None
    """a production asked for explicitly with `user@production` as the user name."""

    def __repr__(self) -> str:  # never print the password
        return f"Credential(user={self.user!r}, production={self.production!r})"


def parse_basic(header: str | None) -> Credential | None:
    """Decode `Basic base64(user:password)`; None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    name, _, production = user.partition("@")
    return Credential(name, password, production or None)


@dataclass(slots=True)
class _Entry:
    user: str | None
    expires: float


class Authenticator:
    """Verifies proxy credentials and tokens against one configuration; caches verdicts."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        cache_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_parallel_hashes: int = 2,
    ) -> None:
        self._config = config
        self._users = {u.name: u for u in config.users}
        self._tokens = {digest: u for u in config.users for digest in u.token_hashes}
        self._ttl = float(config.settings.auth_cache_seconds if cache_seconds is None else cache_seconds)
        self._clock = clock
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[bytes, asyncio.Task[str | None]] = {}
        self._hashes = asyncio.Semaphore(max_parallel_hashes)
        self._networks = [
            (ipaddress.ip_network(n.cidr), n) for n in config.settings.networks
        ]
        self.hash_count = 0
        """how many password hashes were computed (the cache keeps this low)."""

    # --- credentials -----------------------------------------------------------------------------

    def cached(self, credential: Credential) -> tuple[bool, User | None]:
        """(known, user): known is False when the credential must still be verified."""
        key = self._cache_key(credential)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or entry.expires <= self._clock():
                return False, None
            self._cache.move_to_end(key)
        return True, (self._users.get(entry.user) if entry.user else None)

    def verify(self, credential: Credential) -> User | None:
        """Check a credential against its stored hash (slow: call from a worker thread)."""
        known, user = self.cached(credential)
        if known:
            return user
        candidate = self._users.get(credential.user)
        self.hash_count += 1
        if candidate is None:
            # Spend the same time as for a real user, so a response time does not reveal names.
            verify_password(credential.password, _DUMMY_HASH)
            ok = False
        else:
            ok = verify_password(credential.password, candidate.password_hash)
        self._remember(credential, candidate.name if ok and candidate else None)
        return candidate if ok else None

    async def authenticate(self, credential: Credential) -> User | None:
        """Verify without blocking the event loop; concurrent checks of one credential share a hash."""
        known, user = self.cached(credential)
        if known:
            return user
        key = self._cache_key(credential)
        pending = self._inflight.get(key)
        if pending is not None:
            name = await asyncio.shield(pending)
            return self._users.get(name) if name else None
        # The check runs as its own task, so a caller that is cancelled (a client that hung up) does not
        # cancel the hash that other callers with the same credential are waiting for.
        task = asyncio.get_running_loop().create_task(self._verify_shared(credential))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        name = await asyncio.shield(task)
        return self._users.get(name) if name else None

    async def _verify_shared(self, credential: Credential) -> str | None:
        async with self._hashes:
            verified = await asyncio.to_thread(self.verify, credential)
        return verified.name if verified else None

    def user_for_token(self, token: str) -> User | None:
        """The user owning a reverse-mode token (tokens are high-entropy; a sha256 lookup is safe)."""
        digest = hash_token(token)
        user = self._tokens.get(digest)
        if user is None:
            return None
        return user if any(hmac.compare_digest(digest, d) for d in user.token_hashes) else None

    # --- principals --------------------------------------------------------------------------------

    def principal(self, user: User, client_ip: str, requested: str | None, via: str) -> Principal:
        """Attribute a verified user's request to a production."""
        if requested:
            if requested in user.productions:
                return Principal(user.name, user.role, requested, via)  # type: ignore[arg-type]
            return Principal(user.name, user.role, None, via,  # type: ignore[arg-type]
                             f"user {user.name} is not assigned to production {requested}")
        network = self.network_for(client_ip)
        if network is not None and network.production in user.productions:
            return Principal(user.name, user.role, network.production, via)  # type: ignore[arg-type]
        if user.productions:
            return Principal(user.name, user.role, user.productions[0], via)  # type: ignore[arg-type]
        return Principal(user.name, user.role, None, via,  # type: ignore[arg-type]
                         f"user {user.name} is not assigned to any production")

    def network_principal(self, client_ip: str) -> Principal | None:
        """A principal for clients of a network that needs no credentials, if configured."""
        network = self.network_for(client_ip)
        if network is None or network.anonymous_user is None:
            return None
        user = self._users.get(network.anonymous_user)
        return Principal(network.anonymous_user, user.role if user else Role.STAFF, network.production, "network")

    def network_for(self, client_ip: str) -> NetworkMapping | None:
        try:
            address = ipaddress.ip_address(client_ip.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        for network, mapping in self._networks:
            if address.version == network.version and address in network:
                return mapping
        return None

    # --- cache internals ---------------------------------------------------------------------------

    def _cache_key(self, credential: Credential) -> bytes:
        raw = f"{credential.user}\0{credential.password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, raw, hashlib.sha256).digest()

    def _remember(self, credential: Credential, user: str | None) -> None:
        ttl = self._ttl if user else min(self._ttl, _NEGATIVE_SECONDS)
        if ttl <= 0:
            return
        with self._lock:
            self._cache[self._cache_key(credential)] = _Entry(user, self._clock() + ttl)
            while len(self._cache) > _MAX_CACHE:
                self._cache.popitem(last=False)


_DUMMY_HASH = "scrypt$14$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
