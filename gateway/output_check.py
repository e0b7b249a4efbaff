"""What AI tools send back: check generated media, fingerprint it, never keep it.

For a whole (non-streamed) answer: every generated image, audio and video item goes through the same
face, voice and IP detectors as inputs. A generated likeness of registered talent without consent for
this production, or a near-copy of registered third-party IP, is withheld (`output.likeness`,
`output.ip`) unless the production chose `notify`. Media that cannot be examined is withheld too
(`output.uninspectable`). Every item is fingerprinted (sha256, PDQ, audio) for `provenance scan`; the
bytes are never written anywhere. Optionally, returned images are marked "AI-generated, temporary".
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.config.models import Action, Capability, Production
from gateway.content import ContentLimits, Inputs
from gateway.decision import Reason
from gateway.detection import Detection
from gateway.errors import InspectionError
from gateway.fingerprint import OutputFingerprint, fingerprint_output
from gateway.marking import mark_response
from gateway.outputs import OutputItem, extract_outputs
from gateway.policy import consent_for

__all__ = ["OutputCheck", "check_items", "check_response"]


@dataclass(frozen=True, slots=True)
class OutputCheck:
    """The verdict on an answer's generated media, and what to deliver."""

    reasons: tuple[Reason, ...] = ()
    fingerprints: tuple[tuple[OutputItem, OutputFingerprint], ...] = field(default=(), repr=False)
    body: bytes | None = field(default=None, repr=False)
    """a marked body to deliver instead (None: the provider's bytes, unchanged)."""
    items: int = 0

    @property
    def withhold(self) -> bool:
        return any(r.action == Action.BLOCK for r in self.reasons)


def check_response(
    content_type: str,
    body: bytes,
    provider_format: str,
    production: Production,
    capability: Capability,
    detection: Detection | None,
    limits: ContentLimits,
    *,
    event_id: str,
    tool: str,
) -> OutputCheck:
    """Check, fingerprint (and mark) every generated item in a whole answer; never raises for bad media."""
    try:
        items = extract_outputs(content_type, body, provider_format, limits)
    except InspectionError as exc:
        return OutputCheck((Reason("output.uninspectable", Action.BLOCK, str(exc), location=exc.location),))
    if not items:
        return OutputCheck()
    check = check_items(items, production, capability, detection, limits)
    if check.withhold or not production.outputs.mark:
        return check
    marked = mark_response(content_type, body, provider_format, event_id=event_id, tool=tool, ts=time.time(),
                           limits=limits)
    return OutputCheck(check.reasons, check.fingerprints, marked.body if marked.marked else None, check.items)


def check_items(
    items: Sequence[OutputItem],
    production: Production,
    capability: Capability,
    detection: Detection | None,
    limits: ContentLimits,
) -> OutputCheck:
    complete = [item for item in items if not item.partial] or list(items)
    reasons: list[Reason] = []
    prints: list[tuple[OutputItem, OutputFingerprint]] = []
    try:
        if detection is not None:
            inputs = Inputs(media=tuple(item.as_media_item() for item in complete))
            reasons += _output_reasons(detection, inputs, production, capability)
        prints = [(item, fingerprint_output(item, limits)) for item in complete]
    except InspectionError as exc:
        reasons.append(Reason("output.uninspectable", Action.BLOCK, str(exc), location=exc.location))
    return OutputCheck(tuple(reasons), tuple(prints), None, len(complete))


def _output_reasons(
    detection: Detection, inputs: Inputs, production: Production, capability: Capability
) -> list[Reason]:
    today = dt.date.today()
    action = Action.BLOCK if production.outputs.action == "withhold" else Action.NOTIFY
    reasons: list[Reason] = []
    for finding in detection.findings(inputs, production, capability):
        if finding.kind in ("face", "voice"):
            scope = "likeness" if finding.kind == "face" else "voice"
            consent = consent_for(production, finding.entity, scope, today) or \
                consent_for(production, finding.entity, "digital_replica", today)
            if consent is None and "review" not in finding.detail:
                reasons.append(Reason("output.likeness", action,
                                      f"the generated {finding.kind} resembles a registered performer without "
                                      "consent for this production", entity=finding.entity,
                                      location=finding.location, score=finding.score, detector=finding.detector,
                                      finding=finding))
        elif finding.kind == "ip_image" and finding.entity not in production.licensed_ip:
            reasons.append(Reason("output.ip", action, "the generated image is a near-copy of registered "
                                  "third-party IP", entity=finding.entity, location=finding.location,
                                  score=finding.score, detector=finding.detector, finding=finding))
    return reasons
