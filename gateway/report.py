"""The AI-use disclosure report: what a production sends its streamer to say how generative AI was used.

`build_report()` reads the audit store and the approval store for one production (optionally from
a date on) and returns a `Report`: the tools used and how much, stated purposes, decisions by type,
likeness / IP / personal-data events, approvals with their reasons, and the consents relied on.
`render()` writes it as HTML, Markdown, CSV or JSON. Nothing in it is content: rule ids, entity
ids, counts and the written words of requesters and approvers.

Administrative entries of the audit trail (decryptions, key changes, approval decisions recorded
by the CLI and the review UI) are not AI use and are left out of the figures.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from gateway.approvals import Approval, ApprovalStore
from gateway.audit.store import StoredEvent
from gateway.config.models import Action, GatewayConfig

__all__ = ["FORMATS", "SENSITIVE_PREFIXES", "Report", "build_report", "is_admin_event", "render"]

FORMATS = ("html", "md", "csv", "json")
SENSITIVE_PREFIXES = {"likeness.": "likeness", "ip.": "ip", "pii.": "personal_data"}
_ADMIN_MODES = frozenset({"cli", "approval", "review"})


@dataclass(frozen=True, slots=True)
class ToolUsage:
    tool: str
    name: str
    requests: int
    users: int
    decisions: dict[str, int]
    request_bytes: int
    input_tokens: int
    output_tokens: int
    first: str
    last: str
    note: str


@dataclass(frozen=True, slots=True)
class SensitiveEvent:
    event_id: str
    ts: str
    user: str
    tool: str
    category: str
    rule: str
    entity: str
    action: str
    decision: str
    approval_id: str


@dataclass(frozen=True, slots=True)
class ConsentUse:
    talent: str
    name: str
    scopes: list[str]
    valid_from: str | None
    until: str | None
    document: str
    relied_on: int
    """requests whose allow/notify reasons cite this consent."""


@dataclass(frozen=True, slots=True)
class Report:
    production: str
    name: str
    kind: str
    generated: str
    since: str | None
    requests: int
    users: list[str]
    decisions: dict[str, int]
    tools: list[ToolUsage]
    sensitive: list[SensitiveEvent]
    sensitive_counts: dict[str, int]
    purposes: list[dict[str, object]]
    approvals: list[dict[str, object]]
    consents: list[ConsentUse]
    licensed_ip: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class _Tally:
    first: float
    last: float
    requests: int = 0
    users: set[str] = field(default_factory=set)
    decisions: Counter[str] = field(default_factory=Counter)
    request_bytes: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def is_admin_event(stored: StoredEvent) -> bool:
    """True for entries Greenroom itself writes (decryptions, key changes, approvals), not AI use."""
    return stored.event.mode in _ADMIN_MODES or stored.event.tool == "greenroom"


def category(rule: str) -> str | None:
    """`likeness`, `ip` or `personal_data` for a sensitive rule id, else None."""
    return next((name for prefix, name in SENSITIVE_PREFIXES.items() if rule.startswith(prefix)), None)


def build_report(
    config: GatewayConfig,
    events: Iterable[StoredEvent],
    approvals: ApprovalStore | Iterable[Approval],
    production: str,
    since: float | None = None,
    now: float | None = None,
) -> Report:
    """The disclosure report of one production (events are expected to be that production's)."""
    prod = config.production(production)
    tool_names = {t.id: t.name for t in config.tools}
    decisions: Counter[str] = Counter({a.value: 0 for a in Action})
    users: set[str] = set()
    per_tool: dict[str, _Tally] = {}
    sensitive: list[SensitiveEvent] = []
    cited: Counter[str] = Counter()
    requests = 0
    for stored in events:
        event = stored.event
        if event.production != production or is_admin_event(stored):
            continue
        if since is not None and event.ts < since:
            continue
        requests += 1
        action = event.decision.action.value
        decisions[action] += 1
        users.add(event.user)
        usage = per_tool.setdefault(event.tool, _Tally(first=event.ts, last=event.ts))
        usage.requests += 1
        usage.users.add(event.user)
        usage.decisions[action] += 1
        usage.request_bytes += event.request_bytes
        if stored.outcome is not None:
            usage.input_tokens += stored.outcome.input_tokens or 0
            usage.output_tokens += stored.outcome.output_tokens or 0
        usage.first = min(usage.first, event.ts)
        usage.last = max(usage.last, event.ts)
        for reason in event.decision.reasons:
            kind = category(reason.rule)
            if kind is not None:
                sensitive.append(
                    SensitiveEvent(
                        event.id, _iso(event.ts), event.user, event.tool, kind, reason.rule, reason.entity,
                        reason.action.value, action, event.approval_id,
                    )
                )  # fmt: skip
            if reason.action in (Action.ALLOW, Action.NOTIFY) and _cites_consent(reason.rule, reason.message):
                cited[reason.entity] += 1
    tools = [
        ToolUsage(
            tool=tool,
            name=tool_names.get(tool, tool),
            requests=u.requests,
            users=len(u.users),
            decisions=dict(sorted(u.decisions.items())),
            request_bytes=u.request_bytes,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            first=_iso(u.first),
            last=_iso(u.last),
            note=prod.tools[tool].note if prod is not None and tool in prod.tools else "",
        )
        for tool, u in sorted(per_tool.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    ]
    listed = approvals.list(production=production) if isinstance(approvals, ApprovalStore) else list(approvals)
    listed = [a for a in listed if a.production == production and (since is None or a.created >= since)]
    listed.sort(key=lambda a: a.created)
    talent_names = {t.id: t.name for t in config.registry.talent}
    consents = [
        ConsentUse(
            talent=c.talent,
            name=talent_names.get(c.talent, c.talent),
            scopes=list(c.scopes),
            valid_from=c.valid_from.isoformat() if c.valid_from else None,
            until=c.until.isoformat() if c.until else None,
            document=c.document,
            relied_on=cited.get(c.talent, 0),
        )
        for c in (prod.consents if prod is not None else [])
    ]
    return Report(
        production=production,
        name=prod.name if prod is not None else production,
        kind=prod.kind.value if prod is not None else "",
        generated=_iso(time.time() if now is None else now),
        since=_iso(since) if since is not None else None,
        requests=requests,
        users=sorted(users),
        decisions=dict(decisions),
        tools=tools,
        sensitive=sensitive,
        sensitive_counts={
            name: sum(1 for s in sensitive if s.category == name) for name in SENSITIVE_PREFIXES.values()
        },
        purposes=[
            {
                "approval": a.id,
                "user": a.user,
                "rule": a.rule,
                "tool": a.tool,
                "purpose": a.purpose,
                "status": a.status.value,
            }
            for a in listed
            if a.purpose
        ],
        approvals=[
            {
                "id": a.id,
                "status": a.status.value,
                "user": a.user,
                "rule": a.rule,
                "tool": a.tool,
                "created": _iso(a.created),
                "decided_by": a.decided_by,
                "decided_at": _iso(a.decided_at),
                "reason": a.reason,
                "expires": _iso(a.expires),
                "purpose": a.purpose,
                "event_id": a.event_id,
            }
            for a in listed
        ],
        consents=consents,
        licensed_ip=list(prod.licensed_ip) if prod is not None else [],
    )


def _cites_consent(rule: str, message: str) -> bool:
    return "consent" in rule or "consent" in message.lower()


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- rendering ------------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    """The report as `html`, `md`, `csv` or `json`."""
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "md":
        return _markdown(report)
    if fmt == "html":
        return _html(report)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def _sections(report: Report) -> list[tuple[str, list[str], list[list[object]]]]:
    """(title, header, rows) of every table, shared by the Markdown, HTML and CSV writers."""
    actions = [a.value for a in Action]
    return [
        ("Tools used", ["tool", "requests", "users", *actions, "request bytes", "input tokens", "output tokens",
                        "first", "last", "approved for"],
         [[t.name + f" ({t.tool})", t.requests, t.users, *[t.decisions.get(a, 0) for a in actions], t.request_bytes,
           t.input_tokens, t.output_tokens, t.first, t.last, t.note] for t in report.tools]),
        ("Decisions by type", ["decision", "requests"], [[k, v] for k, v in report.decisions.items()]),
        ("Stated purposes", ["approval", "user", "tool", "rule", "purpose", "status"],
         [[p["approval"], p["user"], p["tool"], p["rule"], p["purpose"], p["status"]] for p in report.purposes]),
        ("Likeness, IP and personal-data events", ["event", "time", "user", "tool", "category", "rule", "entity",
                                                   "action", "decision", "approval"],
         [[s.event_id, s.ts, s.user, s.tool, s.category, s.rule, s.entity, s.action, s.decision, s.approval_id]
          for s in report.sensitive]),
        ("Approvals", ["approval", "status", "user", "tool", "rule", "requested", "purpose", "decided by", "decided",
                       "reason", "expires"],
         [[a["id"], a["status"], a["user"], a["tool"], a["rule"], a["created"], a["purpose"], a["decided_by"],
           a["decided_at"], a["reason"], a["expires"]] for a in report.approvals]),
        ("Consents relied on", ["talent", "scopes", "valid from", "until", "document", "requests citing it"],
         [[f"{c.name} ({c.talent})", ", ".join(c.scopes), c.valid_from or "", c.until or "", c.document, c.relied_on]
          for c in report.consents]),
    ]  # fmt: skip


def _summary(report: Report) -> list[tuple[str, object]]:
    return [
        ("Production", f"{report.name} ({report.production}, {report.kind})"),
        ("Period", f"from {report.since}" if report.since else "all recorded use"),
        ("Generated", report.generated),
        ("AI requests", report.requests),
        ("People", len(report.users)),
        ("Likeness events", report.sensitive_counts.get("likeness", 0)),
        ("IP events", report.sensitive_counts.get("ip", 0)),
        ("Personal-data events", report.sensitive_counts.get("personal_data", 0)),
        ("Licensed IP", ", ".join(report.licensed_ip) or "none"),
    ]


def _md_cell(value: object) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _markdown(report: Report) -> str:
    lines = [f"# Generative AI use: {report.name}", ""]
    lines += [f"- **{k}**: {_md_cell(v)}" for k, v in _summary(report)]
    for title, header, rows in _sections(report):
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("None.")
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "field", "value"])
    for key, value in _summary(report):
        writer.writerow(["summary", key, value])
    for title, header, rows in _sections(report):
        writer.writerow([])
        writer.writerow([title, *header])
        for row in rows:
            writer.writerow([title, *[_csv_cell(c) for c in row]])
    return out.getvalue()


def _csv_cell(value: object) -> object:
    """Defuse spreadsheet formulas in written text (a purpose starting with `=`)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2330}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e5ea}
th{background:#f3f4f7}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}"""


def _html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Generative AI use: {e(report.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Generative AI use: {e(report.name)}</h1><dl>",
    ]
    parts += [f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in _summary(report)]
    parts.append("</dl>")
    for title, header, rows in _sections(report):
        parts.append(f"<h2>{e(title)}</h2>")
        if not rows:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(str(c if c is not None else ''))}</td>" for c in row) + "</tr>"
                  for row in rows]  # fmt: skip
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
