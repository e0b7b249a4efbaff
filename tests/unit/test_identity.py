"""gateway/identity.py: Basic credentials, cached verification, tokens and production attribution."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading

import pytest

from gateway.config.models import (
    GatewayConfig,
    GatewaySettings,
    NetworkMapping,
    Production,
    Role,
    User,
)
from gateway.identity import Authenticator, Credential, Principal, parse_basic
from gateway.passwords import hash_password, hash_token

PASSWORD = "s3cret-Password!"
TOKEN = "grt_test-token-abcdefghijklmnopqrstuvwxyz0123456789"
HASH = hash_password(PASSWORD, log2_n=10)


def production(pid: str) -> Production:
    return Production(id=pid, name=pid.title(), kind="scripted")


def make_config(auth_cache_seconds: int = 300) -> GatewayConfig:
    return GatewayConfig(
        settings=GatewaySettings(
            auth_cache_seconds=auth_cache_seconds,
            networks=[
                NetworkMapping(cidr="10.20.0.0/16", production="nightfall"),
                NetworkMapping(cidr="10.30.0.0/16", production="daybreak", anonymous_user="edit-bay"),
                NetworkMapping(cidr="fd00:1::/64", production="daybreak", anonymous_user="v6-bay"),
            ],
        ),
        users=[
            User(name="alice", password_hash=HASH, productions=["daybreak", "nightfall"],
                 token_hashes=[hash_token(TOKEN)]),
            User(name="bob", password_hash=HASH, role=Role.APPROVER, productions=["nightfall"]),
            User(name="carol", password_hash=HASH, role=Role.REVIEWER),
            User(name="edit-bay", password_hash=HASH, productions=["daybreak"]),
            User(name="v6-bay", password_hash=HASH, productions=["daybreak"]),
        ],
        productions=[production("daybreak"), production("nightfall"), production("eclipse")],
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> Authenticator:
    return Authenticator(make_config(), clock=clock)


def basic(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return "Basic " + base64.b64encode(data).decode()


# --- parse_basic -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("alice:pw"), ("alice", "pw", None)),
        (basic("alice@nightfall:pw"), ("alice", "pw", "nightfall")),
        (basic("alice:pw:with:colons"), ("alice", "pw:with:colons", None)),
        (basic("alice:"), ("alice", "", None)),
        (basic("alice@:pw"), ("alice", "pw", None)),
        (basic("ålice:pässword"), ("ålice", "pässword", None)),
        ("basic " + base64.b64encode(b"alice:pw").decode(), ("alice", "pw", None)),
        ("  Basic   " + base64.b64encode(b"alice:pw").decode() + "  ", ("alice", "pw", None)),
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic ", None),
        ("Basic !!!notbase64", None),
        ("Basic YWxpY2U6cHc", None),  # missing padding
        (basic("alicepw"), None),
        (basic(":pw"), None),
        (basic(b"\xff\xfe:pw"), None),
        ("Bearer " + base64.b64encode(b"alice:pw").decode(), None),
        ("Digest username=alice", None),
    ],
)
def test_parse_basic(header: str | None, expected: tuple[str, str, str | None] | None) -> None:
    """Only a well-formed `Basic base64(user:password)` yields a credential; `user@production` asks for one."""
    credential = parse_basic(header)
    got = (credential.user, credential.password, credential.production) if credential else None
    assert got == expected


def test_credential_repr_hides_password() -> None:
    """A credential printed in a log or traceback does not show the password."""
    assert PASSWORD not in repr(Credential("alice", PASSWORD, "nightfall"))
    assert PASSWORD not in str(Credential("alice", PASSWORD))


# --- verification and its cache ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [
        ("alice", PASSWORD, True),
        ("bob", PASSWORD, True),
        ("alice", "wrong", False),
        ("alice", "", False),
        ("mallory", PASSWORD, False),
        ("Alice", PASSWORD, False),
    ],
)
def test_verify(auth: Authenticator, user: str, password: str, ok: bool) -> None:
    """verify returns the user only for the right password; unknown users still cost one hash."""
    got = auth.verify(Credential(user, password))
    assert (got.name if got else None) == (user if ok else None)
    assert auth.hash_count == 1


def test_second_verify_is_cached(auth: Authenticator) -> None:
    """A verified credential is not hashed again while cached."""
    credential = Credential("alice", PASSWORD)
    assert auth.cached(credential) == (False, None)
    first = auth.verify(credential)
    second = auth.verify(credential)
    assert first is not None and second is not None and first.name == second.name == "alice"
    assert auth.hash_count == 1
    assert auth.cached(credential) == (True, first)


def test_cache_is_per_password(auth: Authenticator) -> None:
    """A cached success for one password does not admit another password for the same user."""
    assert auth.verify(Credential("alice", PASSWORD)) is not None
    assert auth.verify(Credential("alice", PASSWORD + "x")) is None
    assert auth.hash_count == 2


def test_wrong_credentials_are_negatively_cached_briefly(auth: Authenticator, clock: Clock) -> None:
    """A wrong password is remembered for a few seconds (no hash), then checked again."""
    wrong = Credential("alice", "wrong")
    assert auth.verify(wrong) is None
    assert auth.verify(wrong) is None
    assert auth.hash_count == 1
    assert auth.cached(wrong) == (True, None)
    clock.now += 11
    assert auth.cached(wrong) == (False, None)
    assert auth.verify(wrong) is None
    assert auth.hash_count == 2


def test_success_expires_after_ttl(clock: Clock) -> None:
    """A verified credential is trusted for auth_cache_seconds, then hashed again."""
    auth = Authenticator(make_config(auth_cache_seconds=60), clock=clock)
    credential = Credential("alice", PASSWORD)
    auth.verify(credential)
    clock.now += 59.9
    auth.verify(credential)
    assert auth.hash_count == 1
    clock.now += 0.2
    assert auth.cached(credential) == (False, None)
    assert auth.verify(credential) is not None
    assert auth.hash_count == 2


def test_cache_disabled_with_zero_seconds(clock: Clock) -> None:
    """auth_cache_seconds = 0 hashes every time."""
    auth = Authenticator(make_config(auth_cache_seconds=0), clock=clock)
    for _ in range(3):
        assert auth.verify(Credential("alice", PASSWORD)) is not None
    assert auth.hash_count == 3


def test_cache_holds_no_password(auth: Authenticator) -> None:
    """Cache keys are HMACs and entries hold only a user name and an expiry."""
    auth.verify(Credential("alice", PASSWORD))
    auth.verify(Credential("bob", "wrong-password-xyz"))
    assert len(auth._cache) == 2
    for key, entry in auth._cache.items():
        assert isinstance(key, bytes) and len(key) == 32
        for secret in (PASSWORD, "wrong-password-xyz"):
            assert secret.encode() not in key
            assert secret not in repr(entry)
        assert set(entry.__slots__) == {"user", "expires"}  # type: ignore[attr-defined]
    assert {entry.user for entry in auth._cache.values()} == {"alice", None}


def test_cache_keys_differ_between_processes() -> None:
    """The HMAC key is random per Authenticator, so a cache key reveals nothing portable."""
    a, b = Authenticator(make_config()), Authenticator(make_config())
    credential = Credential("alice", PASSWORD)
    assert a._cache_key(credential) != b._cache_key(credential)


# --- authenticate(): async, one hash for concurrent checks --------------------------------------------


async def test_concurrent_authenticate_shares_one_hash(auth: Authenticator) -> None:
    """Ten concurrent checks of one credential compute one hash and all get the user."""
    results = await asyncio.gather(*(auth.authenticate(Credential("alice", PASSWORD)) for _ in range(10)))
    assert [u.name if u else None for u in results] == ["alice"] * 10
    assert auth.hash_count == 1
    assert auth._inflight == {}


async def test_concurrent_wrong_password_shares_one_hash(auth: Authenticator) -> None:
    """Concurrent checks of a wrong credential share one hash and all fail."""
    results = await asyncio.gather(*(auth.authenticate(Credential("alice", "nope")) for _ in range(10)))
    assert results == [None] * 10
    assert auth.hash_count == 1


async def test_concurrent_different_credentials_are_checked_separately(auth: Authenticator) -> None:
    """Different credentials each get their own hash and their own verdict."""
    results = await asyncio.gather(
        auth.authenticate(Credential("alice", PASSWORD)),
        auth.authenticate(Credential("alice", "nope")),
        auth.authenticate(Credential("bob", PASSWORD)),
    )
    assert [u.name if u else None for u in results] == ["alice", None, "bob"]
    assert auth.hash_count == 3


async def test_authenticate_uses_cache(auth: Authenticator) -> None:
    """After one authenticate, later ones are answered from the cache."""
    await auth.authenticate(Credential("alice", PASSWORD))
    await auth.authenticate(Credential("alice", PASSWORD))
    assert auth.hash_count == 1


# --- tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "user"),
    [(TOKEN, "alice"), (TOKEN + "x", None), ("", None), (TOKEN.upper(), None), (hash_token(TOKEN), None)],
)
def test_user_for_token(auth: Authenticator, token: str, user: str | None) -> None:
    """Only the exact token maps to its user (its stored digest is not itself a token)."""
    got = auth.user_for_token(token)
    assert (got.name if got else None) == user
    assert auth.hash_count == 0


# --- principals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "ip", "requested", "production", "problem"),
    [
        ("alice", "192.0.2.1", "nightfall", "nightfall", ""),
        ("alice", "192.0.2.1", "eclipse", None, "user alice is not assigned to production eclipse"),
        ("alice", "192.0.2.1", "nosuch", None, "user alice is not assigned to production nosuch"),
        ("alice", "10.20.1.2", None, "nightfall", ""),
        ("alice", "::ffff:10.20.1.2", None, "nightfall", ""),
        ("alice", "10.30.1.2", None, "daybreak", ""),
        ("alice", "10.30.1.2", "nightfall", "nightfall", ""),
        ("alice", "192.0.2.1", None, "daybreak", ""),
        ("alice", "not-an-ip", None, "daybreak", ""),
        ("bob", "10.30.1.2", None, "nightfall", ""),
        ("carol", "10.20.1.2", None, None, "user carol is not assigned to any production"),
    ],
)
def test_principal_production(
    auth: Authenticator, user: str, ip: str, requested: str | None, production: str | None, problem: str
) -> None:
    """Requested production if assigned; else the client's network's production if assigned; else the first."""
    account = make_config().user(user)
    assert account is not None
    principal = auth.principal(account, ip, requested, "proxy_auth")
    assert principal == Principal(user, account.role, production, "proxy_auth", problem)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("10.30.0.5", Principal("edit-bay", Role.STAFF, "daybreak", "network")),
        ("::ffff:10.30.0.5", Principal("edit-bay", Role.STAFF, "daybreak", "network")),
        ("::FFFF:10.30.0.5", Principal("edit-bay", Role.STAFF, "daybreak", "network")),
        ("fd00:1::25", Principal("v6-bay", Role.STAFF, "daybreak", "network")),
        ("fd00:1::25%eth0", Principal("v6-bay", Role.STAFF, "daybreak", "network")),
        ("10.20.0.5", None),
        ("::ffff:10.20.0.5", None),
        ("192.0.2.1", None),
        ("fd00:2::1", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_network_principal(auth: Authenticator, ip: str, expected: Principal | None) -> None:
    """Only networks with an anonymous_user admit clients without credentials (IPv4-mapped IPv6 included)."""
    assert auth.network_principal(ip) == expected


async def test_cancelled_first_caller_does_not_fail_the_others(auth: Authenticator) -> None:
    """A client that disconnects while its credential is being hashed must not fail others waiting on that hash."""
    credential = Credential("alice", PASSWORD)
    gate = threading.Event()
    verify = auth.verify

    def slow_verify(c: Credential) -> User | None:
        gate.wait(5)  # the hash is still running when the first caller goes away
        return verify(c)

    auth.verify = slow_verify  # type: ignore[method-assign]
    first = asyncio.create_task(auth.authenticate(credential))
    await asyncio.sleep(0)  # first is now hashing in a worker thread
    waiters = [asyncio.create_task(auth.authenticate(credential)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert [u.name if isinstance(u, User) else repr(u) for u in results] == ["alice"] * 3
