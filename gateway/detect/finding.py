"""What detectors report: findings, never content.

A `Finding` names a registered entity (talent id, IP id) or a kind of personal data, where it was
found (the Inputs location) and how sure the detector is. The policy turns findings into reasons
by the production's consents and licences; detectors know nothing of productions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.content.inputs import Inputs

__all__ = ["DetectionContext", "Detector", "Finding", "FindingKind"]

FindingKind = Literal[
    "face",          # a registered talent's face (entity = talent id)
    "face_unidentifiable",  # a face too small or unclear to identify (entity = "")
    "voice",         # a registered talent's voice (entity = talent id)
    "voice_unknown", # a human voice that matches no registered talent (entity = "")
    "talent_name",   # a registered talent's name or alias in text (entity = talent id)
    "ip_image",      # a registered IP image: still, poster, logo, key frame (entity = IP id)
    "ip_script",     # registered script/document text (entity = IP id)
    "ip_reference",  # a registered IP title, character or term in text (entity = IP id)
    "pii",           # personal data (entity = kind: email, phone, government_id, card, iban, address)
    "confidential",  # a production's confidential term (entity = the term's kind: title, character, ...)
]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    entity: str
    location: str
    score: float
    detector: str
    span: tuple[int, int] | None = None
    """character offsets in the text item at `location`, for redaction; None for media."""
    detail: str = ""
    """content-free detail for reviewers (e.g. `face 142px`, `pdq 12 bits`, `orb 57 inliers`)."""


@dataclass(frozen=True, slots=True)
class DetectionContext:
    """What a detector may need besides the inputs (no policy: consents are applied later)."""

    capability: str
    production: str
    confidential_terms: Sequence[str] = field(default_factory=tuple)


class Detector(Protocol):
    name: str

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        """Every finding in `inputs`; raise only the gateway's own errors (the request is then blocked)."""
        ...
