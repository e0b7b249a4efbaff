"""Production policy: who may use which tool for what, and what the user is told when stopped.

`access_reasons()` needs only the request line and the principal, so the proxy can refuse an
unapproved tool before reading a byte of the body. `decide()` combines those with everything found
while inspecting the body. Every reason carries a stable rule id; `NEXT_STEPS` says what a person
can do about each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from gateway.config.models import Action, Capability, Consent, Production, ProductionKind
from gateway.decision import Decision, Reason, combine
from gateway.detect.finding import Finding
from gateway.identity import Principal
from gateway.tools.catalog import Classification

__all__ = ["GENERATION", "NEXT_STEPS", "access_reasons", "consent_for", "decide", "finding_reasons", "next_step"]

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


# --- findings → reasons (the production's consents, licences and settings) ---------------------------

GENERATION = frozenset({
    Capability.IMAGE_GENERATION, Capability.IMAGE_EDIT, Capability.VIDEO, Capability.VOICE_CLONE,
    Capability.TEXT_TO_SPEECH, Capability.SPEECH_TO_SPEECH,
})
"""Capabilities that generate likeness or media (names and titles in their prompts matter more)."""
VISUAL_GENERATION = frozenset({Capability.IMAGE_GENERATION, Capability.IMAGE_EDIT, Capability.VIDEO})
VOICE_USE = frozenset({Capability.VOICE_CLONE, Capability.SPEECH_TO_SPEECH})


def finding_reasons(
    findings: Iterable[Finding], production: Production, capability: Capability, today: dt.date
) -> list[Reason]:
    """What the production's rules say about each finding (consents and licences applied)."""
    reasons: list[Reason] = []
    for finding in findings:
        reasons += _RULES[finding.kind](finding, production, capability, today)
    if production.kind == ProductionKind.DOCUMENTARY and capability in VISUAL_GENERATION:
        people = [f for f in findings if f.kind in ("talent_name", "face")]
        if people:
            reasons.append(Reason("documentary.synthetic_person", Action.HOLD,
                                  "a documentary is generating imagery that depicts or names a real person",
                                  entity=people[0].entity, location=people[0].location, detector=people[0].detector,
                                  advice="An invented image of a real person needs written approval before use."))
    return reasons


def consent_for(production: Production, talent: str, scope: str, today: dt.date) -> Consent | None:
    """The production's consent of `talent` covering `scope` today, if any."""
    for consent in production.consents:
        if consent.talent != talent or scope not in consent.scopes:
            continue
        if (consent.valid_from and today < consent.valid_from) or (consent.until and today > consent.until):
            continue
        return consent
    return None


def _reason(rule: str, action: Action, message: str, finding: Finding, advice: str = "") -> Reason:
    return Reason(rule, action, message, entity=finding.entity, location=finding.location, score=finding.score,
                  detector=finding.detector, advice=advice, finding=finding)


def _cited(consent: Consent) -> str:
    return f"consent on file ({consent.document or 'no document reference'}, until {consent.until or 'open'})"


def _face(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    consent = consent_for(production, finding.entity, "likeness", today) or \
        consent_for(production, finding.entity, "digital_replica", today)
    if consent is not None:
        return [_reason("likeness.face", Action.NOTIFY, f"registered talent's face; {_cited(consent)}", finding)]
    review = "review" in finding.detail
    return [_reason("likeness.face", Action.HOLD if review else Action.BLOCK,
                    "a registered performer's face without consent for this production"
                    + (" (a possible match, for review)" if review else ""), finding,
                    "Remove the face, or ask the production to record the performer's consent.")]


def _face_unidentifiable(finding: Finding, production: Production, capability: Capability,
                         today: dt.date) -> list[Reason]:
    action = Action.HOLD if capability in VISUAL_GENERATION and production.kind == ProductionKind.DOCUMENTARY \
        else Action.NOTIFY
    return [_reason("likeness.face_unidentifiable", action, "a face too small or unclear to identify", finding)]


def _voice(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    consent = consent_for(production, finding.entity, "voice", today) or \
        consent_for(production, finding.entity, "digital_replica", today)
    if consent is not None:
        return [_reason("likeness.voice", Action.NOTIFY, f"registered talent's voice; {_cited(consent)}", finding)]
    if capability in VOICE_USE:
        review = "review" in finding.detail
        return [_reason("likeness.voice", Action.HOLD if review else Action.BLOCK,
                        "a registered performer's voice without voice consent for this production", finding,
                        "Use a voice the production has consent for.")]
    return [_reason("likeness.voice", Action.NOTIFY, "a registered performer's voice", finding)]


def _voice_unknown(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    if capability not in VOICE_USE or production.unknown_voices == Action.ALLOW:
        return []
    return [_reason("likeness.voice_unknown", production.unknown_voices,
                    "a voice that matches no registered performer is being cloned or converted", finding,
                    "Confirm whose voice this is and that they consented; an approver can then approve it.")]


def _talent_name(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    consent = consent_for(production, finding.entity, "likeness", today) or \
        consent_for(production, finding.entity, "digital_replica", today) or \
        consent_for(production, finding.entity, "voice", today)
    if consent is not None:
        return [_reason("likeness.name", Action.NOTIFY, f"registered talent named; {_cited(consent)}", finding)]
    if capability in GENERATION:
        return [_reason("likeness.name", Action.HOLD, "a registered performer is named in a generation prompt",
                        finding, "Generating a performer's likeness needs their consent or written approval.")]
    return [_reason("likeness.name", Action.NOTIFY, "a registered performer is named", finding)]


def _licensed(production: Production, ip: str) -> bool:
    return ip in production.licensed_ip


def _ip_image(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    if _licensed(production, finding.entity):
        return [_reason("ip.image", Action.NOTIFY, "licensed IP image", finding)]
    return [_reason("ip.image", Action.BLOCK, "a registered third-party image (still, poster, logo) without a licence",
                    finding, "Use material your production owns or has licensed.")]


def _ip_script(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    if _licensed(production, finding.entity):
        return [_reason("ip.script", Action.NOTIFY, "licensed script text", finding)]
    return [_reason("ip.script", Action.BLOCK, "registered third-party script or document text without a licence",
                    finding, "Use material your production owns or has licensed.")]


def _ip_reference(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    if _licensed(production, finding.entity):
        return [_reason("ip.reference", Action.NOTIFY, "licensed IP named", finding)]
    if capability in GENERATION:
        return [_reason("ip.reference", Action.HOLD, "a third-party title or character in a generation prompt", finding,
                        "Generating from third-party IP needs a licence or written approval.")]
    return [_reason("ip.reference", Action.NOTIFY, "a third-party title or character is named", finding)]


def _pii(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    policy = production.personal_data
    action = policy.action if finding.entity in policy.kinds else Action.NOTIFY
    return [_reason(f"pii.{finding.entity}", action, f"personal data ({finding.entity})", finding,
                    "Remove the personal data, or ask an approver to approve this use.")]


def _confidential(finding: Finding, production: Production, capability: Capability, today: dt.date) -> list[Reason]:
    actions = [t.action for t in production.confidential_terms if t.kind == finding.entity]
    action = max(actions, key=lambda a: a.severity) if actions else Action.REDACT
    return [_reason(f"confidential.{finding.entity}", action, f"a confidential {finding.entity} of the production",
                    finding)]


_RULES = {
    "face": _face,
    "face_unidentifiable": _face_unidentifiable,
    "voice": _voice,
    "voice_unknown": _voice_unknown,
    "talent_name": _talent_name,
    "ip_image": _ip_image,
    "ip_script": _ip_script,
    "ip_reference": _ip_reference,
    "pii": _pii,
    "confidential": _confidential,
}
