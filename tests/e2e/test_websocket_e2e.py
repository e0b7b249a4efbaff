"""WebSockets to AI tools through the real gateway: messages are inspected; a violation closes with 1008."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e

REALTIME = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def _connect(gateway: GatewayProcess, user: str = "alice", password: str = "alice-demo"):  # type: ignore[no-untyped-def]
    return connect(REALTIME, proxy=gateway.proxy_url_for(user, password), ssl=gateway.ssl_context(),
                   additional_headers={"Authorization": "Bearer sk-test"}, open_timeout=20)


def test_clean_messages_pass_through(gateway: GatewayProcess) -> None:
    """An allowed client message reaches the provider (the fake echoes it)."""
    with _connect(gateway) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo:hello"


def test_uninspectable_message_closes_the_socket_with_1008(gateway: GatewayProcess) -> None:
    """A message Greenroom cannot inspect is dropped; the client gets an error event naming the rule and
    event id, then the socket closes with 1008 (policy violation)."""
    too_deep = "[" * 500 + "]" * 500
    with _connect(gateway) as ws:
        ws.send(too_deep)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error"
        assert "content.too_deep" in error["error"]["message"]
        assert error["event_id"].startswith("evt_")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_realtime_tracing_is_forced_off(gateway: GatewayProcess) -> None:
    """session.update with tracing on reaches the provider with tracing null (the echo shows what arrived)."""
    with _connect(gateway) as ws:
        ws.send(json.dumps({"type": "session.update", "session": {"tracing": "auto", "instructions": "x"}}))
        echoed = ws.recv(timeout=10)
    sent = json.loads(echoed.removeprefix("echo:"))
    assert sent["session"]["tracing"] is None
    assert sent["session"]["instructions"] == "x"


def test_unapproved_tool_websocket_is_refused(gateway: GatewayProcess) -> None:
    """bob's production has not approved Gemini: the Live API handshake gets the provider's 403."""
    from websockets.exceptions import InvalidStatus

    url = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, proxy=gateway.proxy_url_for("bob", "bob-demo"), ssl=gateway.ssl_context(), open_timeout=20)
    assert refused.value.response.status_code == 403
    assert b"tool.unapproved" in refused.value.response.body
