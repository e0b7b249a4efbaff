"""gateway/refusal.py: provider-native refusals that official SDKs raise as their own errors."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from gateway.config.models import Action, ErrorFormat
from gateway.refusal import Refusal, proxy_auth_required, render_refusal

RULE = "likeness.face"
EVENT = "evt_01HZX"
NEXT = "Ask your production's AI lead for written approval."


def refuse(error_format: ErrorFormat, **overrides: Any) -> Refusal:
    fields: dict[str, Any] = {
        "status": 403, "decision": Action.BLOCK, "rules": (RULE,), "summary": "a registered face was found",
        "next_step": NEXT, "event_id": EVENT,
    }
    fields.update(overrides)
    return render_refusal(error_format, **fields)


def body(refusal: Refusal) -> dict[str, Any]:
    return json.loads(refusal.body)


def headers(refusal: Refusal) -> dict[str, str]:
    return {k.lower(): v for k, v in refusal.headers}


# Where the human-readable message sits in each format, and the shape around it.
MESSAGE_AT = {
    ErrorFormat.OPENAI: lambda b: b["error"]["message"],
    ErrorFormat.ANTHROPIC: lambda b: b["error"]["message"],
    ErrorFormat.GEMINI: lambda b: b["error"]["message"],
    ErrorFormat.ELEVENLABS: lambda b: b["detail"]["message"],
    ErrorFormat.STABILITY: lambda b: b["errors"][0],
    ErrorFormat.RUNWAY: lambda b: b["error"],
    ErrorFormat.MISTRAL: lambda b: b["message"],
    ErrorFormat.CHATGPT_WEB: lambda b: b["detail"],
    ErrorFormat.GENERIC: lambda b: b["error"]["message"],
}


def test_every_format_has_a_message_location() -> None:
    """The table above covers every ErrorFormat (a new format must be added here too)."""
    assert set(MESSAGE_AT) == set(ErrorFormat)


@pytest.mark.parametrize(
    ("error_format", "shape"),
    [
        (ErrorFormat.OPENAI, lambda b: (
            set(b["error"]) == {"message", "type", "param", "code"}
            and b["error"]["type"] == "permission_error" and b["error"]["param"] is None
            and b["error"]["code"] == RULE)),
        (ErrorFormat.ANTHROPIC, lambda b: (
            b["type"] == "error" and b["error"]["type"] == "permission_error" and b["request_id"] == EVENT)),
        (ErrorFormat.GEMINI, lambda b: (
            b["error"]["code"] == 403 and b["error"]["status"] == "PERMISSION_DENIED"
            and b["error"]["details"][0]["reason"] == "LIKENESS_FACE"
            and b["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
            and b["error"]["details"][0]["metadata"] == {"event_id": EVENT, "rule": RULE})),
        (ErrorFormat.ELEVENLABS, lambda b: (
            set(b["detail"]) == {"status", "message"} and b["detail"]["status"] == "studio_policy_blocked")),
        (ErrorFormat.STABILITY, lambda b: b["id"] == EVENT and b["name"] == "forbidden" and len(b["errors"]) == 1),
        (ErrorFormat.RUNWAY, lambda b: isinstance(b["error"], str)),
        (ErrorFormat.MISTRAL, lambda b: (
            b["object"] == "error" and b["type"] == "permission_error" and b["code"] == RULE)),
        (ErrorFormat.CHATGPT_WEB, lambda b: isinstance(b["detail"], str)),
        (ErrorFormat.GENERIC, lambda b: b["error"]["rule"] == RULE and b["error"]["event_id"] == EVENT),
    ],
)
def test_body_shape(error_format: ErrorFormat, shape: Any) -> None:
    """Each format's body has the shape its provider's SDK parses, plus a `greenroom` summary."""
    refusal = refuse(error_format)
    parsed = body(refusal)
    assert refusal.status == 403
    assert shape(parsed)
    assert parsed["greenroom"] == {"decision": "block", "rules": [RULE], "event_id": EVENT}
    assert headers(refusal)["content-type"] == "application/json"


@pytest.mark.parametrize("error_format", list(ErrorFormat))
def test_headers_and_message(error_format: ErrorFormat) -> None:
    """Every refusal says: do not retry, the decision, the event; its message names rule, next step and event."""
    refusal = refuse(error_format)
    got = headers(refusal)
    assert got["x-should-retry"] == "false"
    assert got["x-greenroom-decision"] == "block"
    assert got["x-greenroom-event"] == EVENT
    assert got["cache-control"] == "no-store"
    assert "x-greenroom-approval" not in got
    message = MESSAGE_AT[error_format](body(refusal))
    assert message.startswith("Greenroom blocked this request (likeness.face): a registered face was found.")
    assert NEXT in message
    assert f"event {EVENT}" in message


@pytest.mark.parametrize("error_format", list(ErrorFormat))
def test_hold_wording_and_approval(error_format: ErrorFormat) -> None:
    """A hold says it waits for written approval and gives the approval id and review link."""
    refusal = refuse(error_format, decision=Action.HOLD, approval_id="apr_42", review_url="https://review.example")
    message = MESSAGE_AT[error_format](body(refusal))
    assert "held for written approval" in message
    assert "blocked" not in message
    assert "Approval request apr_42: https://review.example/approvals/apr_42." in message
    assert headers(refusal)["x-greenroom-approval"] == "apr_42"
    assert headers(refusal)["x-greenroom-decision"] == "hold"
    assert body(refusal)["greenroom"]["approval_id"] == "apr_42"


def test_message_without_rules_names_gateway_error() -> None:
    """No rule at all still names a rule id (gateway.error) rather than an empty one."""
    parsed = body(refuse(ErrorFormat.OPENAI, rules=()))
    assert parsed["error"]["code"] == "gateway.error"
    assert "(gateway.error)" in parsed["error"]["message"]


@pytest.mark.parametrize(
    ("error_format", "kind"),
    [
        (ErrorFormat.OPENAI, lambda b: b["error"]["type"] == "invalid_request_error"),
        (ErrorFormat.ANTHROPIC, lambda b: b["error"]["type"] == "request_too_large"),
        (ErrorFormat.GEMINI, lambda b: b["error"]["status"] == "INVALID_ARGUMENT" and b["error"]["code"] == 413),
        (ErrorFormat.STABILITY, lambda b: b["name"] == "payload_too_large"),
    ],
)
def test_too_large_types(error_format: ErrorFormat, kind: Any) -> None:
    """A 413 uses each provider's own too-large error type."""
    refusal = refuse(error_format, status=413, rules=("content.too_large",))
    assert refusal.status == 413
    assert kind(body(refusal))


def test_html_variant_escapes_markup() -> None:
    """A browser gets an HTML page with the same facts; nothing from the refusal is rendered as markup."""
    refusal = refuse(
        ErrorFormat.CHATGPT_WEB, wants_html=True, summary="<script>alert(1)</script>",
        next_step='Ask <b>"lead"</b>', decision=Action.HOLD, approval_id="apr_<1>",
        review_url='https://r.example/"><img src=x>',
    )
    page = refusal.body.decode()
    assert headers(refusal)["content-type"].startswith("text/html")
    assert "<script>" not in page and "<b>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Held for written approval" in page
    assert EVENT in page and RULE in page
    assert 'href="https://r.example/&quot;&gt;&lt;img src=x&gt;/approvals/apr_&lt;1&gt;"' in page


def test_proxy_auth_required() -> None:
    """407 asks for Basic credentials and forwards nothing."""
    refusal = proxy_auth_required("Studio")
    assert refusal.status == 407
    assert headers(refusal)["proxy-authenticate"] == 'Basic realm="Studio", charset="UTF-8"'
    assert b"407" in refusal.body


# --- the official SDKs raise their own permission errors --------------------------------------------


def transport(refusal: Refusal, http: Any = httpx) -> Any:
    """A mock transport answering every request with `refusal` (anthropic >= 2 runs on httpx2)."""
    calls: list[Any] = []

    def handler(request: Any) -> Any:
        calls.append(request)
        return http.Response(refusal.status, headers=list(refusal.headers), content=refusal.body)

    mock = http.MockTransport(handler)
    mock.calls = calls
    return mock


def test_openai_sdk_raises_permission_denied() -> None:
    """openai-python raises PermissionDeniedError with the rule as `.code`, without retrying."""
    mock = transport(refuse(ErrorFormat.OPENAI))
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1",
                           http_client=httpx.Client(transport=mock), max_retries=2)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 403
    assert info.value.code == RULE
    assert info.value.type == "permission_error"
    assert f"event {EVENT}" in info.value.message
    assert len(mock.calls) == 1


def test_anthropic_sdk_raises_permission_denied() -> None:
    """anthropic-python raises PermissionDeniedError carrying the message, without retrying."""
    mock = transport(refuse(ErrorFormat.ANTHROPIC), httpx2)
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url="https://api.anthropic.com",
                                 http_client=httpx2.Client(transport=mock), max_retries=2)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model="claude-greenroom-test", max_tokens=10,
                               messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 403
    assert info.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert RULE in str(info.value) and EVENT in str(info.value)
    assert len(mock.calls) == 1


def test_openai_sdk_hold_does_not_retry_even_on_503() -> None:
    """x-should-retry: false stops Stainless SDK retries even for a normally-retried status."""
    mock = transport(refuse(ErrorFormat.OPENAI, status=503, rules=("gateway.draining",)))
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1",
                           http_client=httpx.Client(transport=mock), max_retries=3)
    with pytest.raises(openai.InternalServerError):
        client.models.list()
    assert len(mock.calls) == 1
