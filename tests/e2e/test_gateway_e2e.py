"""End-to-end: the real gateway (`greenroom serve` subprocess) in front of the TLS fake provider.

Official SDKs and raw clients talk to the gateway exactly as a studio workstation would; the fake
records what actually reached "the provider", so every test can check both sides of the proxy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.support.fake_provider import (
    ANTHROPIC_ANSWER,
    EXAMPLE_ORG_HTML,
    OPENAI_ANSWER,
    RESPONSES_ANSWER,
    FakeProviderProcess,
    FakeRecord,
)
from tests.support.gateway_process import REPO_ROOT, GatewayProcess
from tests.support.pki import TEST_CA_CN, TestPKI

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-demo")
BOB = ("bob", "bob-demo")
OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
NL_OPENAI_ORG = "org-northernlights-demo"
HN_OPENAI_ORG = "org-harbornights-demo"
NL_ANTHROPIC_ORG = "8f7c2a10-0000-4000-8000-00000000a11c"
DEMO_CONFIG = REPO_ROOT / "config" / "demo"
EVT_RE = re.compile(r"evt_[A-Za-z0-9_\-]+")
PROMPT = [{"role": "user", "content": "Summarise the themes of the interview in one line."}]
# 5 streamed events, 0.4 s apart (header and query, so the fake sees it whichever survives)
SLOW_STREAM = {"x-fake-delay": "0.4", "x-fake-events": "5"}
SLOW_QUERY = {"fake_delay": "0.4", "fake_events": "5"}


# -------------------------------------------------------------------------------------------------
# helpers


def proxied_httpx(gw: GatewayProcess, user: tuple[str, str] = ALICE, **kw: Any) -> httpx.Client:
    return httpx.Client(
        proxy=gw.proxy_url_for(*user),
        verify=ssl.create_default_context(cafile=gw.ca_cert),
        trust_env=False,
        timeout=kw.pop("timeout", 30),
        **kw,
    )


def openai_client(gw: GatewayProcess, user: tuple[str, str] = ALICE, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", http_client=proxied_httpx(gw, user), max_retries=0, **kw)


def anthropic_client(gw: GatewayProcess, user: tuple[str, str] = ALICE, **kw: Any) -> anthropic.Anthropic:
    http_client = anthropic.DefaultHttpxClient(
        proxy=gw.proxy_url_for(*user),
        verify=ssl.create_default_context(cafile=gw.ca_cert),
        trust_env=False,
        timeout=30,
    )
    return anthropic.Anthropic(api_key="sk-ant-test", http_client=http_client, max_retries=0, **kw)


def chat(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, **kw)


def only_record(fake: FakeProviderProcess, host: str) -> FakeRecord:
    recs = fake.records()
    assert [(r.host, r.method, r.path) for r in recs if r.host == host] and len(recs) == 1, (
        f"expected exactly one request at the fake for {host}, got {[(r.host, r.path) for r in recs]}"
    )
    return recs[0]


def assert_nothing_reached(fake: FakeProviderProcess) -> None:
    recs = fake.records()
    assert recs == [], f"request(s) reached the provider: {[(r.host, r.method, r.path) for r in recs]}"


def assert_stopped(headers: httpx.Headers | Any, message: str, rule: str) -> str:
    """Contract headers and message of a block; returns the event id."""
    assert headers.get("x-should-retry") == "false", dict(headers)
    assert headers.get("x-greenroom-decision") == "block", dict(headers)
    event = headers.get("x-greenroom-event")
    assert event and EVT_RE.fullmatch(event), f"X-Greenroom-Event: {event!r}"
    assert rule in message, f"rule {rule!r} not named in {message!r}"
    assert event in message, f"event id {event!r} not in {message!r}"
    return event


def top_level_pairs(raw: bytes) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs[:] = items  # the last object closed is the top-level one
        return dict(items)

    json.loads(raw, object_pairs_hook=hook)
    return pairs


def read_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin1")
    lines = head.split("\r\n")
    assert lines and lines[0].startswith("HTTP/"), f"not an HTTP response: {buf[:200]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


def raw_connect(
    gw: GatewayProcess, host: str, user: tuple[str, str] | None
) -> tuple[socket.socket, int, dict[str, str]]:
    sock = socket.create_connection((gw.host, gw.listen_port), timeout=15)
    req = f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n"
    if user:
        cred = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        req += f"Proxy-Authorization: Basic {cred}\r\n"
    sock.sendall((req + "\r\n").encode())
    status, headers = read_head(sock)
    return sock, status, headers


def max_body_bytes() -> int:
    try:
        cfg = yaml.safe_load((DEMO_CONFIG / "gateway.yaml").read_text()) or {}
        return int(cfg["limits"]["max_body_bytes"])
    except (OSError, KeyError, TypeError, ValueError):
        return 32 * 1024 * 1024


def reverse_auth_headers(user: tuple[str, str] = ALICE) -> dict[str, str]:
    """The demo reverse-mode token from config/demo/users.yaml (`grt_demo_<name>`), else Basic."""
    try:
        users = yaml.safe_load((DEMO_CONFIG / "users.yaml").read_text())["users"]
        entry = next(u for u in users if u["name"] == user[0])
        token = f"grt_demo_{user[0]}"
        if hashlib.sha256(token.encode()).hexdigest() in (entry.get("token_hashes") or []):
            return {"X-Greenroom-Token": token}
    except (OSError, KeyError, TypeError, StopIteration):
        pass
    cred = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    return {"X-Greenroom-Authorization": f"Basic {cred}"}


# -------------------------------------------------------------------------------------------------
# 1. allowed call


def test_allowed_openai_call_returns_the_providers_answer(gateway: GatewayProcess, fake: FakeProviderProcess):
    resp = chat(openai_client(gateway, ALICE))
    assert resp.choices[0].message.content == OPENAI_ANSWER
    rec = only_record(fake, OPENAI)
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.header("host") == OPENAI
    assert rec.header("authorization") == "Bearer sk-test"
    assert rec.header("proxy-authorization") is None  # proxy credentials never go upstream
    assert rec.json()["messages"] == PROMPT


# -------------------------------------------------------------------------------------------------
# 2. retention flags


@pytest.mark.parametrize("client_store", [None, True, False])
def test_store_reaches_provider_as_false(gateway: GatewayProcess, fake: FakeProviderProcess, client_store: bool | None):
    kw: dict[str, Any] = {} if client_store is None else {"store": client_store}
    assert chat(openai_client(gateway), **kw).choices[0].message.content == OPENAI_ANSWER
    body = only_record(fake, OPENAI).json()
    assert body.get("store") is False, body
    assert body.get("prompt_cache_retention") == "in_memory", body


def test_prompt_cache_retention_24h_is_rewritten(gateway: GatewayProcess, fake: FakeProviderProcess):
    chat(openai_client(gateway), extra_body={"prompt_cache_retention": "24h"})
    body = only_record(fake, OPENAI).json()
    assert body["prompt_cache_retention"] == "in_memory" and body["store"] is False, body


def test_responses_api_store_default_true_is_forced_false(gateway: GatewayProcess, fake: FakeProviderProcess):
    resp = openai_client(gateway).responses.create(model="gpt-4.1", input="One line on the interview, please.")
    assert resp.output_text == RESPONSES_ANSWER
    rec = only_record(fake, OPENAI)
    assert rec.path == "/v1/responses"
    assert rec.json().get("store") is False, rec.json()


def test_duplicate_store_key_in_raw_body_reaches_provider_once_as_false(
    gateway: GatewayProcess, fake: FakeProviderProcess
):
    # A JSON parser that keeps the *last* duplicate would read store=true; the gateway must not
    # forward an ambiguous body: exactly one "store" key, false.
    raw = (
        b'{"model": "gpt-4o-mini", "store": false, '
        b'"messages": [{"role": "user", "content": "Summarise the interview."}], "store": true}'
    )
    with proxied_httpx(gateway) as c:
        r = c.post(
            f"https://{OPENAI}/v1/chat/completions",
            content=raw,
            headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == OPENAI_ANSWER
    got = only_record(fake, OPENAI).body
    pairs = top_level_pairs(got)
    assert [v for k, v in pairs if k == "store"] == [False], got
    assert len(re.findall(rb'"store"\s*:', got)) == 1, got


# -------------------------------------------------------------------------------------------------
# 3. tenant pinning


@pytest.mark.parametrize(("user", "org"), [(ALICE, NL_OPENAI_ORG), (BOB, HN_OPENAI_ORG)])
def test_openai_organization_is_pinned_per_production(
    gateway: GatewayProcess, fake: FakeProviderProcess, user: tuple[str, str], org: str
):
    client = openai_client(gateway, user, organization="org-personal-account")
    assert chat(client).choices[0].message.content == OPENAI_ANSWER
    rec = only_record(fake, OPENAI)
    assert rec.header_all("openai-organization") == [org], rec.headers


def test_openai_organization_added_when_client_sent_none(gateway: GatewayProcess, fake: FakeProviderProcess):
    chat(openai_client(gateway, ALICE))
    assert only_record(fake, OPENAI).header_all("openai-organization") == [NL_OPENAI_ORG]


def test_anthropic_allowed_org_ids_is_pinned_for_alice(gateway: GatewayProcess, fake: FakeProviderProcess):
    client = anthropic_client(gateway, ALICE, default_headers={"anthropic-allowed-org-ids": "some-other-org"})
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=PROMPT)
    assert msg.content[0].text == ANTHROPIC_ANSWER
    rec = only_record(fake, ANTHROPIC)
    assert rec.path == "/v1/messages"
    assert rec.header_all("anthropic-allowed-org-ids") == [NL_ANTHROPIC_ORG], rec.headers
    # the provider key arrives untouched (this SDK version sends it as a Bearer token)
    assert rec.header("x-api-key") == "sk-ant-test" or rec.header("authorization") == "Bearer sk-ant-test"


# -------------------------------------------------------------------------------------------------
# 4. tools not approved for the production


def test_unapproved_anthropic_for_bob_raises_permission_denied(gateway: GatewayProcess, fake: FakeProviderProcess):
    client = anthropic_client(gateway, BOB)
    with pytest.raises(anthropic.PermissionDeniedError) as ei:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=PROMPT)
    err = ei.value
    assert err.status_code == 403
    body = err.body
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert body["error"]["type"] == "permission_error", body
    assert_stopped(err.response.headers, body["error"]["message"], "tool.unapproved")
    assert "tool.unapproved" in str(err)
    assert_nothing_reached(fake)


def test_unapproved_elevenlabs_for_alice_gets_elevenlabs_403(gateway: GatewayProcess, fake: FakeProviderProcess):
    with proxied_httpx(gateway, ALICE) as c:
        r = c.post(
            "https://api.elevenlabs.io/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM",
            headers={"xi-api-key": "xi-test"},
            json={"text": "Temp voice-over for the opening scene.", "model_id": "eleven_multilingual_v2"},
        )
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, dict) and isinstance(detail.get("message"), str), r.text
    assert_stopped(r.headers, detail["message"], "tool.unapproved")
    assert_nothing_reached(fake)


def test_unapproved_gemini_for_alice_gets_google_403(gateway: GatewayProcess, fake: FakeProviderProcess):
    with proxied_httpx(gateway, ALICE) as c:
        r = c.post(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": "AIza-test"},
            json={"contents": [{"role": "user", "parts": [{"text": "Summarise the interview."}]}]},
        )
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == 403 and err["status"] == "PERMISSION_DENIED", r.text
    assert_stopped(r.headers, err["message"], "tool.unapproved")
    assert_nothing_reached(fake)


# -------------------------------------------------------------------------------------------------
# 5. proxy authentication


@pytest.mark.parametrize("user", [None, ("alice", "wrong-password"), ("mallory", "alice-demo")])
def test_missing_or_wrong_proxy_credentials_get_407(
    gateway: GatewayProcess, fake: FakeProviderProcess, user: tuple[str, str] | None
):
    sock, status, headers = raw_connect(gateway, OPENAI, user)
    sock.close()
    assert status == 407, (status, headers)
    assert headers.get("proxy-authenticate", "").lower().startswith("basic"), headers
    # and what an SDK user sees: the proxy refuses the tunnel
    proxy = gateway.proxy_url if user is None else gateway.proxy_url_for(*user)
    with (
        httpx.Client(proxy=proxy, verify=ssl.create_default_context(cafile=gateway.ca_cert), trust_env=False) as c,
        pytest.raises(httpx.ProxyError, match="407"),
    ):
        c.post(f"https://{OPENAI}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": PROMPT})
    assert_nothing_reached(fake)


# -------------------------------------------------------------------------------------------------
# 6. non-catalog hosts are tunnelled, not intercepted


def test_non_catalog_host_is_not_intercepted(gateway: GatewayProcess, fake: FakeProviderProcess, pki: TestPKI):
    origin_only = ssl.create_default_context(cafile=str(pki.ca_cert))  # NOT the gateway CA
    sock, status, _ = raw_connect(gateway, "www.example.org", ALICE)
    assert status == 200
    with origin_only.wrap_socket(sock, server_hostname="www.example.org") as tls:
        issuer = dict(item[0] for item in tls.getpeercert()["issuer"])
        assert issuer.get("commonName") == TEST_CA_CN, issuer  # the origin's own certificate
        tls.sendall(b"GET / HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and EXAMPLE_ORG_HTML in data, data[:300]

    with httpx.Client(proxy=gateway.proxy_url_for(*ALICE), verify=origin_only, trust_env=False) as c:
        r = c.get("https://www.example.org/")
    assert r.status_code == 200 and "Example Domain" in r.text

    # a client trusting only the gateway CA cannot talk to it: the gateway did not mint a cert
    with (
        httpx.Client(
            proxy=gateway.proxy_url_for(*ALICE),
            verify=ssl.create_default_context(cafile=gateway.ca_cert),
            trust_env=False,
        ) as c,
        pytest.raises(httpx.ConnectError),
    ):
        c.get("https://www.example.org/")

    recs = [r for r in fake.records() if r.host == "www.example.org"]
    assert len(recs) == 2 and all(r.path == "/" for r in recs), recs


# -------------------------------------------------------------------------------------------------
# 7. streaming stays incremental


def test_openai_stream_is_incremental(gateway: GatewayProcess, fake: FakeProviderProcess):
    client = openai_client(gateway)
    t0 = time.monotonic()
    stream = chat(client, stream=True, extra_headers=SLOW_STREAM, extra_query=SLOW_QUERY)
    first: float | None = None
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = time.monotonic() - t0
            pieces.append(chunk.choices[0].delta.content)
    total = time.monotonic() - t0
    assert "".join(pieces) == OPENAI_ANSWER and len(pieces) == 5, pieces
    assert first is not None and first < 1.0, f"first chunk after {first:.2f}s (buffered?)"
    assert total > 1.5, f"whole stream took only {total:.2f}s: the fake's pacing did not apply"
    assert only_record(fake, OPENAI).json()["stream"] is True


def test_anthropic_stream_is_incremental(gateway: GatewayProcess, fake: FakeProviderProcess):
    client = anthropic_client(gateway, ALICE)
    t0 = time.monotonic()
    first: float | None = None
    pieces = []
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=PROMPT,
        extra_headers=SLOW_STREAM,
        extra_query=SLOW_QUERY,
    ) as stream:
        for text in stream.text_stream:
            if first is None:
                first = time.monotonic() - t0
            pieces.append(text)
        final = stream.get_final_message()
    total = time.monotonic() - t0
    assert final.content[0].text == ANTHROPIC_ANSWER and len(pieces) == 5, pieces
    assert first is not None and first < 1.0, f"first text after {first:.2f}s (buffered?)"
    assert total > 1.5, f"whole stream took only {total:.2f}s: the fake's pacing did not apply"
    assert only_record(fake, ANTHROPIC).header("anthropic-allowed-org-ids") == NL_ANTHROPIC_ORG


# -------------------------------------------------------------------------------------------------
# 8. reverse mode


def _reverse_http_client(gw: GatewayProcess) -> httpx.Client:
    verify: Any = ssl.create_default_context(cafile=gw.ca_cert) if gw.reverse_url.startswith("https") else True
    return httpx.Client(verify=verify, trust_env=False, timeout=30)


def test_reverse_mode_with_gateway_token(gateway: GatewayProcess, fake: FakeProviderProcess):
    auth = reverse_auth_headers(ALICE)
    client = openai.OpenAI(
        base_url=f"{gateway.reverse_url}/openai/v1",
        api_key="sk-test",
        default_headers=auth,
        http_client=_reverse_http_client(gateway),
        max_retries=0,
    )
    assert chat(client).choices[0].message.content == OPENAI_ANSWER
    rec = only_record(fake, OPENAI)
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.header("host") == OPENAI
    assert rec.header_all("authorization") == ["Bearer sk-test"]  # the provider key, untouched
    assert rec.header_all("openai-organization") == [NL_OPENAI_ORG]
    assert rec.json()["store"] is False
    for name in auth:  # the gateway credential never reaches the provider
        assert rec.header(name) is None, f"{name} leaked upstream"


def test_reverse_mode_without_token_is_refused(gateway: GatewayProcess, fake: FakeProviderProcess):
    client = openai.OpenAI(
        base_url=f"{gateway.reverse_url}/openai/v1",
        api_key="sk-test",
        http_client=_reverse_http_client(gateway),
        max_retries=0,
    )
    with pytest.raises(openai.APIStatusError) as ei:
        chat(client)
    assert 400 <= ei.value.status_code < 500
    assert_nothing_reached(fake)


# -------------------------------------------------------------------------------------------------
# 9. fail closed


def test_gateway_fault_fails_closed(start_gateway, fake: FakeProviderProcess):
    faulty = start_gateway({"GREENROOM_TEST_FAULT": "request"})
    fake.clear()
    with pytest.raises(openai.PermissionDeniedError) as ei:
        chat(openai_client(faulty, ALICE))
    err = ei.value
    assert err.response.headers.get("x-greenroom-decision") == "block", dict(err.response.headers)
    assert err.response.headers.get("x-should-retry") == "false", dict(err.response.headers)
    assert isinstance(err.body, dict) and "gateway.error" in err.body["message"], err.body
    assert_nothing_reached(fake)


# -------------------------------------------------------------------------------------------------
# 10. unmodified SDK code, configured only by environment variables


def test_sdk_without_code_change_via_env_vars(gateway: GatewayProcess, fake: FakeProviderProcess):
    code = (
        "import openai\n"
        "c = openai.OpenAI(api_key='sk-test')\n"
        "r = c.chat.completions.create(model='gpt-4o-mini', "
        "messages=[{'role': 'user', 'content': 'Summarise the interview.'}])\n"
        "print(r.choices[0].message.content)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "OPENAI_BASE_URL")
    }
    env["HTTPS_PROXY"] = gateway.proxy_url_for(*ALICE)
    env["SSL_CERT_FILE"] = gateway.ca_cert
    env.pop("OPENAI_API_KEY", None)
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path.home()),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == OPENAI_ANSWER
    rec = only_record(fake, OPENAI)
    assert rec.header_all("openai-organization") == [NL_OPENAI_ORG]


# -------------------------------------------------------------------------------------------------
# 11. body size limit


def test_body_over_limit_gets_openai_413(gateway: GatewayProcess, fake: FakeProviderProcess):
    limit = max_body_bytes()
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a" * (limit + 4096)}]}
    ).encode()
    assert len(body) > limit
    with proxied_httpx(gateway, ALICE, timeout=120) as c:
        r = c.post(
            f"https://{OPENAI}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
        )
    assert r.status_code == 413, r.text[:500]
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    err = r.json()["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    assert_nothing_reached(fake)


def test_keep_alive_connection_serves_many_requests(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """One client connection, many requests: each is answered (the upstream connection is reused)."""
    with proxied_httpx(gateway, timeout=10) as client:
        for n in range(15):
            r = client.post(f"https://{OPENAI}/v1/chat/completions", json={"model": "m", "messages": PROMPT},
                            headers={"Authorization": "Bearer sk-test"})
            assert r.status_code == 200, (n, r.text)
    assert len(fake.records(OPENAI)) == 15


# -------------------------------------------------------------------------------------------------
# mitmproxy's own extras are not loaded


def test_mitmproxys_onboarding_app_is_not_served(gateway: GatewayProcess) -> None:
    """`http://mitm.it/` through the proxy is an ordinary (unreachable) site, not mitmproxy's onboarding app."""
    with httpx.Client(proxy=gateway.proxy_url_for("alice", "alice-demo"), trust_env=False, timeout=15) as c:
        response = c.get("http://mitm.it/")
    assert "mitmproxy" not in response.text.lower()
    assert response.status_code >= 400


def test_the_gateway_loads_only_the_mitmproxy_addons_it_needs() -> None:
    from addons.runner import proxy_addons

    names = {type(addon).__name__ for addon in proxy_addons()}
    assert names == {"Core", "Block", "DisableH2C", "Proxyserver", "DnsResolver", "NextLayer", "TlsConfig",
                     "UpdateAltSvc"}
