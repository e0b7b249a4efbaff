"""The Greenroom addon driven through mitmproxy's own test helpers (no network)."""

from __future__ import annotations

import base64
import json

import pytest
from mitmproxy import connection, http, tls
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from addons.greenroom import KEY, Greenroom
from gateway.audit import AuditEvent, Outcome
from gateway.runtime import Runtime


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RecordingSink:
    """Collects what the addon records (stands in for the durable store)."""

    def __init__(self) -> None:
        self.recorded: list[AuditEvent] = []
        self.completed: list[tuple[AuditEvent, Outcome]] = []

    def record(self, event: AuditEvent, inputs: object = None) -> None:
        self.recorded.append(event)

    def complete(self, event: AuditEvent, outcome: Outcome) -> None:
        self.completed.append((event, outcome))

    def close(self) -> None:
        pass


def ai_flow(
    host: str = "api.openai.com",
    path: str = "/v1/chat/completions",
    body: bytes | dict | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    client: connection.Client | None = None,
    reverse: bool = False,
) -> http.HTTPFlow:
    content = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    hdrs = {"content-type": "application/json", "content-length": str(len(content)), **(headers or {})}
    req = tutils.treq(
        host=host,
        port=443,
        scheme=b"https",
        method=method.encode(),
        path=path.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in hdrs.items()]),
        content=content,
    )
    flow = tflow.tflow(req=req, client_conn=client)
    if reverse:
        flow.client_conn.proxy_mode = ProxyMode.parse("reverse:https://api.openai.com@8443")
        flow.request.host = "127.0.0.1"
        flow.request.port = 8443
    return flow


async def connect(addon: Greenroom, user: str, password: str) -> tuple[connection.Client, http.HTTPFlow]:
    """Run a CONNECT with proxy credentials; return the client connection it authenticated."""
    req = tutils.treq(
        method=b"CONNECT",
        host="api.openai.com",
        port=443,
        path=b"",
        authority=b"api.openai.com:443",
        headers=http.Headers([(b"Proxy-Authorization", basic(user, password).encode())]),
        content=b"",
    )
    flow = tflow.tflow(req=req)
    await addon.http_connect(flow)
    return flow.client_conn, flow


async def send(addon: Greenroom, flow: http.HTTPFlow) -> http.HTTPFlow:
    await addon.requestheaders(flow)
    await addon.request(flow)
    return flow


def refusal_body(flow: http.HTTPFlow) -> dict:
    assert flow.response is not None
    return json.loads(flow.response.content or b"{}")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def addon(runtime: Runtime, sink: RecordingSink) -> Greenroom:
    return Greenroom(runtime, sink)


async def test_connect_without_credentials_gets_407(addon: Greenroom) -> None:
    """No Proxy-Authorization on CONNECT → 407 with Proxy-Authenticate, nothing forwarded."""
    with taddons.context(addon):
        flow = tflow.tflow(
            req=tutils.treq(
                method=b"CONNECT",
                host="api.openai.com",
                port=443,
                path=b"",
                authority=b"api.openai.com:443",
                content=b"",
            )
        )
        await addon.http_connect(flow)
        assert flow.response is not None and flow.response.status_code == 407
        assert "Proxy-Authenticate" in flow.response.headers


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("nobody", "alice-pw"), ("alice", "")])
async def test_connect_with_wrong_credentials_gets_407(addon: Greenroom, user: str, password: str) -> None:
    """A wrong password or unknown user → 407."""
    with taddons.context(addon):
        _, flow = await connect(addon, user, password)
        assert flow.response is not None and flow.response.status_code == 407


async def test_credentials_are_hashed_once_per_credential(addon: Greenroom, runtime: Runtime) -> None:
    """Verifying the same credential on many connections computes one password hash."""
    with taddons.context(addon):
        for _ in range(5):
            _, flow = await connect(addon, "alice", "alice-pw")
            assert flow.response is None
        assert runtime.current.authenticator.hash_count == 1


async def test_allowed_request_is_rewritten_and_pinned(addon: Greenroom, sink: RecordingSink) -> None:
    """An approved tool: store forced false, tenant header pinned over the client's, event recorded."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(
            body={"model": "m", "messages": [], "store": True},
            headers={"OpenAI-Organization": "org-someone-else"},
            client=client,
        )
        await send(addon, flow)
        assert flow.response is None
        sent = json.loads(flow.request.content or b"")
        assert sent["store"] is False
        assert flow.request.headers.get_all("OpenAI-Organization") == ["org-doc"]
        assert sink.recorded and sink.recorded[0].decision.action.value == "allow"
        assert {r.rule for r in sink.recorded[0].rewrites} >= {"retention.store", "tenant.pinned"}


async def test_unapproved_tool_is_refused_before_the_body(addon: Greenroom, sink: RecordingSink) -> None:
    """bob's production has not approved the Anthropic API: provider-native 403 at requestheaders."""
    with taddons.context(addon):
        client, _ = await connect(addon, "bob", "bob-pw")
        flow = ai_flow(host="api.anthropic.com", path="/v1/messages", body={"messages": []}, client=client)
        await addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 403
        body = refusal_body(flow)
        assert body["type"] == "error" and body["error"]["type"] == "permission_error"
        assert "tool.unapproved" in body["error"]["message"]
        assert flow.response.headers["x-should-retry"] == "false"
        assert flow.response.headers["X-Greenroom-Decision"] == "block"
        assert flow.response.headers["X-Greenroom-Event"] == sink.recorded[0].id


@pytest.mark.parametrize(
    "user,password,host,path,rule",
    [
        ("bob", "bob-pw", "api.openai.com", "/v1/images/generations", "tool.capability_unapproved"),
        ("alice", "alice-pw", "api.openai.com", "/v1/traces/ingest", "retention.trace_ingest"),
        ("alice", "alice-pw", "chatgpt.com", "/backend-anon/conversation", "tool.consumer_endpoint"),
        (
            "bob",
            "bob-pw",
            "generativelanguage.googleapis.com",
            "/v1beta/models/g:generateContent",
            "tool.unapproved",
        ),
        ("carol", "carol-pw", "api.openai.com", "/v1/chat/completions", "identity.no_production"),
    ],
)
async def test_access_rules(
    addon: Greenroom, user: str, password: str, host: str, path: str, rule: str
) -> None:
    """Each access rule refuses with its own rule id in the provider's error body."""
    with taddons.context(addon):
        client, _ = await connect(addon, user, password)
        flow = ai_flow(host=host, path=path, body={"prompt": "x"}, client=client)
        await send(addon, flow)
        assert flow.response is not None and flow.response.status_code == 403
        assert rule in flow.response.get_text()


@pytest.mark.parametrize("hook", ["requestheaders", "request"])
async def test_core_raises_request_is_blocked(addon: Greenroom, sink: RecordingSink, hook: str) -> None:
    """An exception in our code blocks the request (gateway.error) instead of mitmproxy's fail-open."""
    addon.fault = hook
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m", "messages": []}, client=client)
        await send(addon, flow)
        assert flow.response is not None and flow.response.status_code == 403
        assert "gateway.error" in flow.response.get_text()
        assert flow.response.headers["X-Greenroom-Decision"] == "block"
        assert sink.recorded and sink.recorded[-1].decision.rules == ("gateway.error",)


async def test_core_raising_in_inspection_is_blocked(
    addon: Greenroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug deep in the core (not an injected fault) is still a block."""
    import addons.greenroom as module

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(module, "inspect_request", broken)
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m"}, client=client)
        await send(addon, flow)
        assert flow.response is not None and flow.response.status_code == 403
        assert "gateway.error" in flow.response.get_text()


async def test_core_raises_in_responseheaders_kills_the_flow(addon: Greenroom) -> None:
    """A response set in responseheaders would be overwritten by the upstream body: the flow is killed."""
    addon.fault = "responseheaders"
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m"}, client=client)
        await send(addon, flow)
        flow.response = tutils.tresp()
        addon.responseheaders(flow)
        assert flow.error is not None and flow.error.msg == "Connection killed."


async def test_declared_body_over_limit_gets_native_413(addon: Greenroom) -> None:
    """Content-Length over max_body_bytes → provider-native 413 before the body is read."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body=b"x", headers={"content-length": "100000"}, client=client)
        await addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 413
        assert refusal_body(flow)["error"]["code"] == "content.too_large"


async def test_large_body_is_inspected_off_the_loop(addon: Greenroom) -> None:
    """A body above inline_inspect_bytes goes through the worker path and is still rewritten."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        big = {"model": "m", "messages": [{"role": "user", "content": "y" * 4000}], "store": True}
        flow = ai_flow(body=big, client=client)
        await send(addon, flow)
        assert flow.response is None
        assert json.loads(flow.request.content or b"")["store"] is False


async def test_sse_response_is_streamed_and_counted(addon: Greenroom, sink: RecordingSink) -> None:
    """text/event-stream answers pass through unbuffered; the outcome counts the streamed bytes."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m", "stream": True}, client=client)
        await send(addon, flow)
        flow.response = tutils.tresp(
            headers=http.Headers([(b"content-type", b"text/event-stream")]), content=b""
        )
        addon.responseheaders(flow)
        assert callable(flow.response.stream)
        assert flow.response.stream(b"data: 1\n\n") == b"data: 1\n\n"
        flow.response.stream(b"")
        await addon.response(flow)
        _, outcome = sink.completed[-1]
        assert outcome.streamed and outcome.response_bytes == len(b"data: 1\n\n")


def test_non_catalog_hosts_are_not_intercepted(addon: Greenroom) -> None:
    """TLS to a host outside the catalog is tunnelled: ignore_connection, so never decrypted."""
    with taddons.context(addon):
        for host, ignored in [("www.example.org", True), ("api.openai.com", False), ("x.fal.run", False)]:
            ctx = _tls_context(host)
            data = tls.ClientHelloData(ctx, _client_hello(host))
            addon.tls_clienthello(data)
            assert data.ignore_connection is ignored, host


async def test_reverse_mode_routes_prefix_and_authenticates_token(addon: Greenroom) -> None:
    """http://gateway:8443/openai/v1/... with X-Greenroom-Token reaches api.openai.com/v1/...;
    the provider's Authorization header is left alone and our header is stripped."""
    with taddons.context(addon):
        flow = ai_flow(
            path="/openai/v1/chat/completions",
            body={"model": "m"},
            reverse=True,
            headers={"X-Greenroom-Token": "grt_alice", "Authorization": "Bearer sk-test"},
        )
        await send(addon, flow)
        assert flow.response is None
        assert (flow.request.host, flow.request.path) == ("api.openai.com", "/v1/chat/completions")
        assert flow.request.headers["Authorization"] == "Bearer sk-test"
        assert "X-Greenroom-Token" not in flow.request.headers
        assert flow.metadata[KEY].principal.user == "alice"


@pytest.mark.parametrize("headers,status", [({}, 401), ({"X-Greenroom-Token": "grt_wrong"}, 401)])
async def test_reverse_mode_without_valid_token_is_refused(
    addon: Greenroom, headers: dict, status: int
) -> None:
    """Reverse mode without a valid token: provider-native 401, nothing forwarded."""
    with taddons.context(addon):
        flow = ai_flow(path="/openai/v1/chat/completions", body={"model": "m"}, reverse=True, headers=headers)
        await send(addon, flow)
        assert flow.response is not None and flow.response.status_code == status
        assert "identity.unauthenticated" in flow.response.get_text()


async def test_draining_gateway_refuses_new_requests(addon: Greenroom) -> None:
    """During SIGTERM drain, new AI requests get 503 gateway.draining."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        addon.draining = True
        flow = ai_flow(body={"model": "m"}, client=client)
        await send(addon, flow)
        assert flow.response is not None and flow.response.status_code == 503


def _tls_context(host: str):  # type: ignore[no-untyped-def]
    from mitmproxy.proxy import context

    client = tflow.tclient_conn()
    client.proxy_mode = ProxyMode.parse("regular")
    ctx = context.Context(client, taddons.context().options)
    ctx.server = connection.Server(address=(host, 443))
    return ctx


def _client_hello(host: str) -> tls.ClientHello:
    """A real ClientHello with SNI `host`, produced by the ssl module into a memory BIO."""
    import ssl

    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    record = outgoing.read()
    return tls.ClientHello(record[9:])  # 5-byte record header + 4-byte handshake header


@pytest.mark.parametrize(
    "sni,connect_host,ignored",
    [
        ("www.example.org", "api.openai.com", False),  # fronting attempt: SNI elsewhere, CONNECT to an AI host
        ("api.openai.com", "203.0.113.7", False),  # CONNECT to an IP, SNI names the AI host
        ("www.example.org", "www.example.org", True),
    ],
)
def test_interception_considers_sni_and_connect_target(addon: Greenroom, sni: str, connect_host: str,
                                                       ignored: bool) -> None:
    """A connection is tunnelled only when neither its SNI nor its CONNECT target is an AI host."""
    with taddons.context(addon):
        ctx = _tls_context(connect_host)
        data = tls.ClientHelloData(ctx, _client_hello(sni))
        addon.tls_clienthello(data)
        assert data.ignore_connection is ignored


async def test_host_header_naming_an_ai_host_is_inspected(addon: Greenroom) -> None:
    """A request whose Host header names an AI tool is treated as that tool, wherever it connects."""
    with taddons.context(addon):
        client, _ = await connect(addon, "bob", "bob-pw")
        flow = ai_flow(host="cdn.example.net", path="/v1/messages", body={"messages": []}, client=client,
                       headers={"Host": "api.anthropic.com"})
        await send(addon, flow)
        assert flow.response is not None and "tool.unapproved" in flow.response.get_text()


async def test_decision_log_holds_no_content(runtime: Runtime) -> None:
    """The decision log line has ids, rules and sizes; never the prompt, password or token."""
    from structlog.testing import capture_logs

    addon = Greenroom(runtime)  # the default LogSink
    canary = "CANARY-PROMPT-7c1e"
    with taddons.context(addon), capture_logs() as logs:
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m", "messages": [{"role": "user", "content": canary}]}, client=client,
                       headers={"Authorization": "Bearer sk-secret-key"})
        await send(addon, flow)
        flow.response = tutils.tresp(content=b'{"ok": true}')
        await addon.response(flow)
    assert any(entry["event"] == "request_allowed" for entry in logs)
    text = repr(logs)
    for secret in (canary, "alice-pw", "sk-secret-key"):
        assert secret not in text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "0.0.0.0", "admin.localhost"])  # noqa: S104
async def test_proxy_never_connects_to_this_machine(addon: Greenroom, host: str) -> None:
    """The admin listener and other local services are never reachable through the proxy."""
    with taddons.context(addon):
        req = tutils.treq(method=b"CONNECT", host=host.strip("[]"), port=9090, path=b"", authority=b"",
                          headers=http.Headers([(b"Proxy-Authorization", basic("alice", "alice-pw").encode())]),
                          content=b"")
        flow = tflow.tflow(req=req)
        await addon.http_connect(flow)
        assert flow.response is not None and flow.response.status_code == 403
        plain = ai_flow(host=host.strip("[]"), path="/metrics", method="GET",
                        headers={"Proxy-Authorization": basic("alice", "alice-pw")})
        await addon.requestheaders(plain)
        assert plain.response is not None and plain.response.status_code == 403


def _png(width: int = 64, height: int = 48) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload_chunk(client: connection.Client, chunk: bytes, offset: int, final: bool) -> http.HTTPFlow:
    command = "upload, finalize" if final else "upload"
    return ai_flow(host="generativelanguage.googleapis.com", path="/upload/v1beta/files?upload_id=abc123",
                   body=chunk, client=client,
                   headers={"content-type": "application/octet-stream", "X-Goog-Upload-Command": command,
                            "X-Goog-Upload-Offset": str(offset)})


async def test_resumable_upload_is_inspected_whole(addon: Greenroom) -> None:
    """Gemini resumable chunks are held by the gateway (answered `active`); at finalize the whole file is
    inspected and forwarded as one final chunk at offset 0."""
    data = _png() * 3
    parts = [data[:100], data[100:250], data[250:]]
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        offset = 0
        for index, part in enumerate(parts):
            flow = await send(addon, _upload_chunk(client, part, offset, index == len(parts) - 1))
            offset += len(part)
            if index < len(parts) - 1:
                assert flow.response is not None and flow.response.status_code == 200
                assert flow.response.headers["x-goog-upload-status"] == "active"
        assert flow.response is None  # forwarded
        assert flow.request.raw_content == data
        assert flow.request.headers["x-goog-upload-offset"] == "0"


@pytest.mark.parametrize("first_offset", [5, 100])
async def test_resumable_upload_with_a_gap_is_refused(addon: Greenroom, first_offset: int) -> None:
    """A chunk whose offset does not continue the session is refused, never forwarded."""
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = await send(addon, _upload_chunk(client, b"x" * 10, first_offset, False))
        assert flow.response is not None and flow.response.status_code == 403
        assert "content.uninspectable" in flow.response.get_text()


async def test_answer_that_cannot_be_decoded_is_withheld(runtime: Runtime, sink: RecordingSink, tmp_path) -> None:
    """An answer whose Content-Encoding cannot be decoded is not delivered: its media was never checked."""
    from gateway.provenance import OutputLedger

    ledger = OutputLedger.open(tmp_path / "ledger")
    addon = Greenroom(runtime, sink, outputs=ledger)
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = ai_flow(body={"model": "m", "messages": []}, client=client)
        await send(addon, flow)
        flow.response = tutils.tresp(
            headers=http.Headers([(b"content-type", b"image/png"), (b"content-encoding", b"snappy"),
                                  (b"content-length", b"9")]),
            content=b"\x00garbage!")
        await addon.response(flow)
        assert flow.response.status_code == 403
        assert "output.uninspectable" in flow.response.get_text()
    addon.close()


# --- the durable store behind the addon (real SQLite store, vault and recorder) ---------------------


@pytest.fixture
def recorder(tmp_path):
    from gateway.audit import LogSink, open_store
    from gateway.recorder import Recorder
    from gateway.vault import Vault, master_key_provider

    store = open_store(tmp_path / "audit", replica_id="addon-test", env={})
    rec = Recorder(store, Vault(master_key_provider(tmp_path / "audit", env={}), store), LogSink())
    yield rec
    rec.close()


def _answer(flow: http.HTTPFlow) -> None:
    flow.response = tutils.tresp(status_code=200, headers=http.Headers([(b"content-type", b"application/json")]),
                                 content=b'{"choices": []}')


@pytest.mark.parametrize("sealed_on", ["event loop", "worker thread"])
async def test_the_event_is_durable_before_the_request_is_forwarded(
    runtime: Runtime, recorder, monkeypatch: pytest.MonkeyPatch, sealed_on: str
) -> None:
    """When `request` returns without a response, the event and its sealed inputs are already committed;
    the outcome follows with a later commit (nobody waits for it)."""
    if sealed_on == "worker thread":
        monkeypatch.setattr("addons.greenroom._INLINE_SEAL_BYTES", 0)
    addon = Greenroom(runtime, recorder)
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        flow = await send(addon, ai_flow(body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                                         client=client))
        assert flow.response is None
        event_id = flow.metadata[KEY].event.id
        stored = recorder.store.get(event_id)
        assert stored is not None and stored.outcome is None
        assert {c.location for c in recorder.store.captures(event_id)} >= {"body.messages[0].content"}
        _answer(flow)
        addon.responseheaders(flow)
        await addon.response(flow)
        recorder.store.checkpoint()  # a flush: whatever was queued is committed
        stored = recorder.store.get(event_id)
        assert stored is not None and stored.outcome is not None and stored.outcome.status == 200
        assert recorder.store.verify().ok


async def test_a_store_that_cannot_commit_refuses_the_request_with_503(runtime: Runtime, recorder) -> None:
    """The commit fails (the store closed under it): provider-native 503 audit.unavailable, nothing forwarded."""
    addon = Greenroom(runtime, recorder)
    with taddons.context(addon):
        client, _ = await connect(addon, "alice", "alice-pw")
        recorder.store.close()
        flow = await send(addon, ai_flow(body={"model": "m", "messages": []}, client=client))
        assert flow.response is not None and flow.response.status_code == 503
        assert "audit.unavailable" in flow.response.text


async def test_an_uploaded_file_id_is_remembered_before_the_answer_is_released(
    runtime: Runtime, sink: RecordingSink, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client may reference a new file id the moment it gets the upload answer: the id must be known
    (even when the ledger's disk is slow)."""
    import time

    from gateway.references import FileLedger

    ledger = FileLedger(tmp_path / "files.sqlite3")
    remember = ledger.remember

    def slow_remember(*args: str) -> None:
        time.sleep(0.3)
        remember(*args)

    monkeypatch.setattr(ledger, "remember", slow_remember)
    addon = Greenroom(runtime, sink, ledger=ledger)
    try:
        with taddons.context(addon):
            client, _ = await connect(addon, "alice", "alice-pw")
            upload = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
                      b'--b\r\nContent-Disposition: form-data; name="file"; filename="n.txt"\r\n'
                      b"Content-Type: text/plain\r\n\r\nnotes\r\n--b--\r\n")
            flow = ai_flow(path="/v1/files", body=upload, client=client,
                           headers={"content-type": "multipart/form-data; boundary=b"})
            await send(addon, flow)
            assert flow.response is None, flow.response.text if flow.response else ""
            answer = b'{"id": "file-9f8e7d6c5b4a", "object": "file"}'
            flow.response = tutils.tresp(status_code=200, content=answer, headers=http.Headers(
                [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]))
            addon.responseheaders(flow)
            await addon.response(flow)
            record = ledger.lookup("openai-api", "file-9f8e7d6c5b4a")
            assert record is not None and record.production == "doc"
    finally:
        ledger.close()
