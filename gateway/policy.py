"""Production policy: who may use which tool for what, and what the user is told when stopped.

`access_reasons()` needs only the request line and the principal, so the proxy can refuse an
unapproved tool before reading a byte of the body. `decide()` combines those with everything found
while inspecting the body. Every reason carries a stable rule id; `NEXT_STEPS` says what a person
can do about each.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.config.models import Action, Production
from gateway.decision import Decision, Reason, combine
from gateway.identity import Principal
from gateway.tools.catalog import Classification

__all__ = ["NEXT_STEPS", "access_reasons", "decide", "next_step"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

NEXT_STEPS: dict[str, str] = {
    "identity.no_production": "Ask your production's AI lead to add you to the production in Greenroom.",
    "tool.unapproved": "Use a tool your production has approved, or ask your production's AI lead to approve "
    "this one.",
    "tool.capability_unapproved": "Your production approved this tool for other uses only; ask the AI lead to "
    "approve this use.",
    "tool.consumer_endpoint": "Sign in with the studio's enterprise workspace; consumer and anonymous use is "
    "not allowed for production work.",
    "tool.unlisted_endpoint": "This endpoint is not in Greenroom's tool catalog; ask the security team to "
    "review it.",
    "retention.trace_ingest": "Disable SDK tracing (OPENAI_AGENTS_DISABLE_TRACING=1); traces would store "
    "production inputs at the provider.",
    "retention.server_state": "Send the full history with each request instead of storing it at the provider.",
    "retention.training": "Training on production inputs needs a separate data agreement; contact the "
    "security team.",
    "retention.telemetry": "Turn off the tool's telemetry; it would send usage and content to the provider.",
    "retention.realtime_tracing": "Leave session tracing off; it stores the session at the provider.",
    "tool.unknown": "Use a tool from the studio's catalog (`greenroom tools list`).",
    "identity.unauthenticated": "Send your Greenroom token (X-Greenroom-Token) or proxy credentials.",
    "audit.unavailable": "Try again shortly; the gateway could not record the request, so it was not sent.",
    "retention.unenforceable": "Send the request as JSON so Greenroom can enforce the retention settings.",
    "content.too_large": "Send a smaller request or split the upload; the limit protects the gateway.",
    "content.too_deep": "Flatten the request; its nesting is deeper than Greenroom inspects.",
    "content.uninspectable": "Send the content in a standard, unencrypted format so Greenroom can inspect it.",
    "gateway.error": "Try again; if it keeps happening, send the reference to the security team.",
    "gateway.draining": "The gateway is restarting; try again in a few seconds.",
}


def next_step(rule: str, message: str = "") -> str:
    """What the user should do about `rule` (a rule's own message takes precedence)."""
    if message:
        return message
    prefix = rule.split(".", 1)[0]
    return NEXT_STEPS.get(rule) or NEXT_STEPS.get(prefix + ".error", "Contact your production's AI lead.")


def access_reasons(
    principal: Principal, production: Production | None, classification: Classification, method: str
) -> list[Reason]:
    """Reasons that follow from who is asking and which tool and endpoint: no body needed."""
    tool, endpoint = classification.tool, classification.endpoint
    if production is None:
        return [Reason("identity.no_production", Action.BLOCK,
                       principal.production_problem or f"user {principal.user} has no production")]
    if endpoint is not None and endpoint.consumer:
        return [Reason("tool.consumer_endpoint", Action.BLOCK,
                       f"{tool.name} {endpoint.id} is a consumer or anonymous surface",
                       entity=tool.id, location=f"endpoint:{endpoint.id}", advice=endpoint.block_message)]
    grant = production.tools.get(tool.id)
    if grant is None:
        return [Reason("tool.unapproved", Action.BLOCK,
                       f"{tool.name} is not approved for production {production.id}", entity=tool.id)]
    reasons: list[Reason] = []
    if grant.capabilities is not None and classification.capability not in grant.capabilities:
        reasons.append(Reason("tool.capability_unapproved", Action.BLOCK,
                              f"{tool.name} is not approved for {classification.capability.value} "
                              f"in production {production.id}", entity=tool.id))
    if endpoint is not None and endpoint.block_rule:
        reasons.append(Reason(endpoint.block_rule, Action.BLOCK,
                              f"{tool.name} {endpoint.id} is refused by studio policy",
                              entity=tool.id, location=f"endpoint:{endpoint.id}", advice=endpoint.block_message))
    if endpoint is None and method.upper() not in _SAFE_METHODS \
            and production.unknown_endpoint_action != Action.ALLOW:
        reasons.append(Reason("tool.unlisted_endpoint", production.unknown_endpoint_action,
                              f"{tool.name} endpoint is not in the catalog", entity=tool.id))
    return reasons


def decide(access: Iterable[Reason], findings: Iterable[Reason]) -> Decision:
    """The request's decision: the most severe of every reason found."""
    return combine([*access, *findings])
