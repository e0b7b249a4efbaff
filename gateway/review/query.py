"""What the review UI asks of the audit trail: filtered event lists and dashboard figures.

These scan the store's events in time order (`AuditStore.iter_events`), bounded by the time filter:
simple and exact at the volumes one studio produces; a busier deployment would add indexes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from gateway.audit.store import StoredEvent
from gateway.report import is_admin_event

__all__ = ["Dashboard", "EventFilter", "dashboard", "filter_events"]


@dataclass(frozen=True, slots=True)
class EventFilter:
    production: str = ""
    user: str = ""
    tool: str = ""
    decision: str = ""
    rule: str = ""
    since: float | None = None
    until: float | None = None
    q: str = ""
    include_admin: bool = False

    def matches(self, stored: StoredEvent, scope: Collection[str] | None) -> bool:
        event = stored.event
        if scope is not None and event.production not in scope:
            return False
        if not self.include_admin and is_admin_event(stored):
            return False
        if self.production and event.production != self.production:
            return False
        if self.user and event.user != self.user:
            return False
        if self.tool and event.tool != self.tool:
            return False
        if self.decision and event.decision.action.value != self.decision:
            return False
        if self.rule and not any(_rule_matches(r, self.rule) for r in event.decision.rules):
            return False
        if self.since is not None and event.ts < self.since:
            return False
        if self.until is not None and event.ts >= self.until:
            return False
        if self.q:
            haystack = json.dumps(stored.as_export(), ensure_ascii=False).lower()
            if not all(term in haystack for term in self.q.lower().split()):
                return False
        return True


def _rule_matches(rule: str, wanted: str) -> bool:
    """`pii` and `pii.` match `pii.email`; `pii.email` matches only itself."""
    return rule == wanted or rule.startswith(wanted.rstrip(".") + ".")


def filter_events(
    events: Iterable[StoredEvent], where: EventFilter, scope: Collection[str] | None, limit: int = 200
) -> tuple[list[StoredEvent], int]:
    """The newest `limit` matching events (newest first) and how many matched in all."""
    matched = [e for e in events if where.matches(e, scope)]
    return list(reversed(matched[-limit:])), len(matched)


@dataclass(frozen=True, slots=True)
class Dashboard:
    buckets: list[str]
    by_decision: dict[str, list[int]]
    by_tool: dict[str, list[int]]
    by_production: dict[str, list[int]]
    top_rules: list[tuple[str, int]]
    top_users: list[tuple[str, int]]
    total: int
    decisions: dict[str, int]


def dashboard(
    events: Iterable[StoredEvent], scope: Collection[str] | None, since: float, now: float, hourly: bool
) -> Dashboard:
    """Requests per hour (a day or less) or per day, by decision, tool and production; top rules and users."""
    step = 3600 if hourly else 86400
    start = int(since // step) * step
    count = max(1, int((now - start) // step) + 1)
    fmt = "%H:00" if hourly else "%b %d"
    buckets = [dt.datetime.fromtimestamp(start + i * step, dt.UTC).strftime(fmt) for i in range(count)]
    decisions = ("allow", "notify", "redact", "hold", "block")
    by_decision = {d: [0] * count for d in decisions}
    by_tool: dict[str, list[int]] = {}
    by_production: dict[str, list[int]] = {}
    rules: Counter[str] = Counter()
    users: Counter[str] = Counter()
    total = 0
    for stored in events:
        event = stored.event
        if event.ts < since or is_admin_event(stored) or (scope is not None and event.production not in scope):
            continue
        index = min(int((event.ts - start) // step), count - 1)
        total += 1
        by_decision[event.decision.action.value][index] += 1
        by_tool.setdefault(event.tool, [0] * count)[index] += 1
        by_production.setdefault(event.production or "(none)", [0] * count)[index] += 1
        rules.update(set(event.decision.rules))
        users[event.user] += 1
    return Dashboard(
        buckets=buckets,
        by_decision=by_decision,
        by_tool=_top_series(by_tool),
        by_production=_top_series(by_production),
        top_rules=rules.most_common(10),
        top_users=users.most_common(10),
        total=total,
        decisions={d: sum(v) for d, v in by_decision.items()},
    )


def _top_series(series: dict[str, list[int]], keep: int = 8) -> dict[str, list[int]]:
    ranked = sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top = dict(ranked[:keep])
    rest = ranked[keep:]
    if rest:
        top["other"] = [sum(values) for values in zip(*(v for _, v in rest), strict=True)]
    return top


def parse_day(value: str, end: bool = False) -> float | None:
    """`YYYY-MM-DD` (or an ISO time) as a Unix time; the end of that day when `end`; None when empty."""
    value = value.strip()
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    if end and len(value) == 10:
        parsed += dt.timedelta(days=1)
    return parsed.timestamp()


def distinct(events: Sequence[StoredEvent], attribute: str) -> list[str]:
    return sorted({getattr(e.event, attribute) for e in events if getattr(e.event, attribute)})
