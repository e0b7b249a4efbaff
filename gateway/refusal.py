"""Responses Greenroom sends instead of the provider's: blocks, holds, 413s, 407s.

Each refusal uses the provider's own error body so official SDKs raise their own exception
(OpenAI/Anthropic `PermissionDeniedError`, google-genai `ClientError`, ElevenLabs `ApiError`),
with `x-should-retry: false` so Stainless SDKs do not retry. A browser navigation gets a small
HTML page with the same facts. Messages say which rule stopped the request, what to do next, and
the event id; never any of the request's content.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from gateway.config.models import Action, ErrorFormat

__all__ = ["Refusal", "proxy_auth_required", "render_refusal"]

_STATUS_TEXT = {403: "Forbidden", 407: "Proxy Authentication Required", 413: "Payload Too Large",
                503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A complete HTTP response: status, headers and body bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class RefusalFacts:
    status: int
    decision: Action
    rules: tuple[str, ...]
    summary: str
    next_step: str
    event_id: str
    approval_id: str = ""
    review_url: str = ""

    @property
    def message(self) -> str:
        rules = ", ".join(self.rules) or "gateway.error"
        verb = "held for written approval" if self.decision == Action.HOLD else "blocked"
        summary = self.summary.rstrip(". ") + "."
        parts = [f"Greenroom {verb} this request ({rules}): {summary}", self.next_step]
        if self.approval_id:
            parts.append(f"Approval request {self.approval_id}" +
                         (f": {self.review_url}/approvals/{self.approval_id}" if self.review_url else "") + ".")
        parts.append(f"Reference: event {self.event_id}.")
        return " ".join(p.strip() for p in parts if p.strip())


def render_refusal(
    error_format: ErrorFormat,
    *,
    status: int,
    decision: Action,
    rules: tuple[str, ...],
    summary: str,
    next_step: str,
    event_id: str,
    approval_id: str = "",
    review_url: str = "",
    wants_html: bool = False,
) -> Refusal:
    """The provider-native refusal for a stopped request."""
    facts = RefusalFacts(status, decision, rules, summary, next_step, event_id, approval_id, review_url)
    headers = [
        ("x-should-retry", "false"),
        ("X-Greenroom-Decision", decision.value),
        ("X-Greenroom-Event", event_id),
        ("cache-control", "no-store"),
    ]
    if approval_id:
        headers.append(("X-Greenroom-Approval", approval_id))
    if wants_html:
        return Refusal(status, (*headers, ("content-type", "text/html; charset=utf-8")), _html(facts))
    body = _BODIES[error_format](facts)
    body["greenroom"] = {
        "decision": decision.value,
        "rules": list(rules),
        "event_id": event_id,
        **({"approval_id": approval_id} if approval_id else {}),
    }
    return Refusal(
        status,
        (*headers, ("content-type", "application/json")),
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
    )


def proxy_auth_required(realm: str = "Greenroom") -> Refusal:
    """407 for a missing or wrong proxy credential (nothing is forwarded)."""
    body = (
        b"<html><head><title>407 Proxy Authentication Required</title></head><body>"
        b"<h1>407 Proxy Authentication Required</h1><p>Sign in to the Greenroom AI gateway with your "
        b"studio user name and password (HTTPS_PROXY=http://USER:PASSWORD@gateway:8080).</p></body></html>"
    )
    return Refusal(
        407,
        (
            ("Proxy-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'),
            ("content-type", "text/html; charset=utf-8"),
        ),
        body,
    )


def _primary_rule(facts: RefusalFacts) -> str:
    return facts.rules[0] if facts.rules else "gateway.error"


def _openai(facts: RefusalFacts) -> dict[str, object]:
    kind = "invalid_request_error" if facts.status == 413 else "permission_error"
    return {"error": {"message": facts.message, "type": kind, "param": None, "code": _primary_rule(facts)}}


def _anthropic(facts: RefusalFacts) -> dict[str, object]:
    kind = {413: "request_too_large", 503: "api_error"}.get(facts.status, "permission_error")
    return {"type": "error", "error": {"type": kind, "message": facts.message}, "request_id": facts.event_id}


def _gemini(facts: RefusalFacts) -> dict[str, object]:
    status = {413: "INVALID_ARGUMENT", 503: "UNAVAILABLE"}.get(facts.status, "PERMISSION_DENIED")
    return {
        "error": {
            "code": facts.status,
            "message": facts.message,
            "status": status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": _primary_rule(facts).upper().replace(".", "_"),
                    "domain": "greenroom",
                    "metadata": {"event_id": facts.event_id, "rule": _primary_rule(facts)},
                }
            ],
        }
    }


def _elevenlabs(facts: RefusalFacts) -> dict[str, object]:
    return {"detail": {"status": "studio_policy_blocked", "message": facts.message}}


def _stability(facts: RefusalFacts) -> dict[str, object]:
    return {"id": facts.event_id, "name": "forbidden" if facts.status == 403 else "payload_too_large",
            "errors": [facts.message]}


def _runway(facts: RefusalFacts) -> dict[str, object]:
    return {"error": facts.message}


def _mistral(facts: RefusalFacts) -> dict[str, object]:
    return {"object": "error", "message": facts.message, "type": "permission_error", "param": None,
            "code": _primary_rule(facts)}


def _chatgpt_web(facts: RefusalFacts) -> dict[str, object]:
    return {"detail": facts.message}


def _generic(facts: RefusalFacts) -> dict[str, object]:
    return {"error": {"message": facts.message, "rule": _primary_rule(facts), "event_id": facts.event_id}}


_BODIES = {
    ErrorFormat.OPENAI: _openai,
    ErrorFormat.ANTHROPIC: _anthropic,
    ErrorFormat.GEMINI: _gemini,
    ErrorFormat.ELEVENLABS: _elevenlabs,
    ErrorFormat.STABILITY: _stability,
    ErrorFormat.RUNWAY: _runway,
    ErrorFormat.MISTRAL: _mistral,
    ErrorFormat.CHATGPT_WEB: _chatgpt_web,
    ErrorFormat.GENERIC: _generic,
}


def _html(facts: RefusalFacts) -> bytes:
    title = "Held for written approval" if facts.decision == Action.HOLD else "Blocked by studio AI policy"
    rows = [("Rule", ", ".join(facts.rules) or "gateway.error"), ("Why", facts.summary),
            ("What to do", facts.next_step), ("Event", facts.event_id)]
    if facts.approval_id:
        rows.append(("Approval request", facts.approval_id))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows if v)
    link = ""
    if facts.approval_id and facts.review_url:
        href = html.escape(f"{facts.review_url}/approvals/{facts.approval_id}", quote=True)
        link = f'<p><a href="{href}">Request written approval</a></p>'
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} — Greenroom</title>"
        "<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:3rem auto;color:#222}"
        "th{text-align:left;padding-right:1rem;vertical-align:top}h1{font-size:1.4rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><table>{cells}</table>{link}"
        "<p>Greenroom enforces your production's generative-AI rules.</p></body></html>"
    )
    return page.encode("utf-8")
