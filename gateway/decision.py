"""Decisions and the reasons behind them.

A policy violation is not an exception: `decide()` returns a `Decision` whose reasons each carry a
stable rule id (`tool.unapproved`, `likeness.face`, `content.uninspectable`, ...), the matched
entity, where it was found, a score and which check said so. Precedence: block > hold > redact >
notify > allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.config.models import Action
from gateway.detect.finding import Finding

__all__ = ["Action", "Decision", "Reason", "RewriteRecord", "combine"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision was taken. Never holds content: entity is an id, location a path."""

    rule: str
    action: Action
    message: str = ""
    entity: str = ""
    location: str = ""
    score: float | None = None
    detector: str = ""
    advice: str = ""
    """what the user can do about it, when the rule's default next step is not specific enough."""
    finding: Finding | None = field(default=None, compare=False, repr=False)
    """the detector finding behind the reason (spans for redaction); not part of the record."""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"rule": self.rule, "action": self.action.value}
        for key in ("message", "entity", "location", "detector"):
            if value := getattr(self, key):
                out[key] = value
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return out


@dataclass(frozen=True, slots=True)
class RewriteRecord:
    """One change Greenroom made to a request before forwarding it (values are never recorded)."""

    rule: str
    target: str
    """where: `body.store`, `query.enable_logging`, `header.openai-organization`."""
    change: str
    """`set`, `added`, `removed` or `deduplicated`."""

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "target": self.target, "change": self.change}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one request: the most severe action among its reasons."""

    action: Action
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def stops(self) -> bool:
        """True when the request must not be forwarded (hold or block)."""
        return self.action in (Action.HOLD, Action.BLOCK)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons)

    @property
    def deciding(self) -> tuple[Reason, ...]:
        """The reasons whose action is the decision's action (what the user must be told)."""
        return tuple(r for r in self.reasons if r.action == self.action)

    @classmethod
    def allow(cls) -> Decision:
        return cls(Action.ALLOW)

    @classmethod
    def of(cls, reasons: Iterable[Reason]) -> Decision:
        return combine(reasons)


def combine(reasons: Iterable[Reason]) -> Decision:
    """The decision for a set of reasons: the most severe action wins; allow when there are none."""
    ordered = tuple(reasons)
    if not ordered:
        return Decision(Action.ALLOW)
    action = max((r.action for r in ordered), key=lambda a: a.severity)
    return Decision(action, ordered)
