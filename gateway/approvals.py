"""Written approval: holds that an approver of the production lifts, in writing, for exactly that content.

    hold (the proxy)         request_hold(...)  → Approval(status=pending), id + link in the 403
    purpose (the requester)  set_purpose(...)
    decision (an approver)   approve(...) | deny(...)   with a written reason, optionally an expiry
    retry (the proxy)        find_grant(production, rule, fingerprints) → the approval, or None

An approval is bound to the production, the rule and the exact set of content fingerprints
(sha256 of each captured input): the same request retried passes, different content still holds.
An approved grant past its `expires` is reported as `expired` and grants nothing.

Where it is kept. Approvals live beside the audit store, not inside its schema: in
`<data-dir>/approvals.sqlite3`, or in the audit store's PostgreSQL database when that is
configured (tables `approvals`, `approval_trail`, `approvals_schema_version`). The audit store is
an append-only set of hash chains whose schema version other components pin; approvals are
mutable records (pending → approved), so they get their own schema and migrations, and on SQLite
their own file (no contention with the audit writer's group commits).

Tamper evidence. Every state change (hold, purpose, approval, denial) appends a row to
`approval_trail`, one hash chain over the whole store: `hash = sha256(prev_hash ‖ body)`, the body
naming who, when, what and why. `find_grant` only honours an approval whose deciding trail row is
present and says the same thing, and `verify()` recomputes the chain and replays it against the
`approvals` rows. When an audit sink is given (the CLI and the review UI pass theirs), each
decision is also recorded as an audit event, under the audit store's signed checkpoints.

Webhooks (gateway.yaml `webhooks:`) are JSON POSTs signed with HMAC-SHA256 over
`<timestamp>.<body>`, delivered from a background thread with retries: never on the request path.

    ApprovalError            raised when the approval store cannot be used
     ├── UnknownApprovalError  raised when no approval has the given id
     ├── NotAnApproverError    raised when someone who is not an approver of the production decides
     ├── NotRequesterError     raised when someone other than the requester states the purpose
     └── ApprovalStateError    raised when the approval was already decided (or the request is invalid)
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import structlog

from gateway.audit.event import AuditEvent, new_event_id
from gateway.audit.schema import Database
from gateway.config.models import Action, AuditSettings, GatewayConfig, WebhookSettings
from gateway.decision import Decision, Reason
from gateway.errors import AuditError, DuplicateEntryError, GreenroomError

__all__ = [
    "GRANTED_RULE",
    "Approval",
    "ApprovalError",
    "ApprovalStateError",
    "ApprovalStatus",
    "ApprovalStore",
    "NotAnApproverError",
    "NotRequesterError",
    "TrailEntry",
    "UnknownApprovalError",
    "WebhookDispatcher",
    "approval_link",
    "binding_key",
    "granted_reason",
    "hold_rule",
    "open_approvals",
    "sign_webhook",
]

GRANTED_RULE = "approval.granted"
"""The rule id of the reason the proxy adds when a grant lets a held request through."""

_log = structlog.get_logger("greenroom.approvals")
_GENESIS = hashlib.sha256(b"greenroom approval trail v1").hexdigest()


class ApprovalError(GreenroomError):
    """Raised when the approval store cannot be opened, read or written."""


class UnknownApprovalError(ApprovalError):
    """Raised when no approval has the given id."""


class NotAnApproverError(ApprovalError):
    """Raised when a user who is not an approver of the hold's production tries to decide it."""


class NotRequesterError(ApprovalError):
    """Raised when someone other than the user whose request was held states its purpose."""


class ApprovalStateError(ApprovalError):
    """Raised when an approval was already decided, or a decision is malformed (no reason, past expiry)."""


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Approval:
    """One hold and what became of it. Holds no content: fingerprints are sha256 digests."""

    id: str
    event_id: str
    production: str
    user: str
    rule: str
    tool: str
    capability: str
    fingerprints: tuple[str, ...]
    summary: str
    """what triggered the hold, content-free (rule ids, entity ids, locations)."""
    status: ApprovalStatus
    created: float
    purpose: str = ""
    purpose_at: float | None = None
    decided_by: str = ""
    decided_at: float | None = None
    reason: str = ""
    expires: float | None = None
    approvers: tuple[str, ...] = ()
    """the production's approvers when the hold was made (used when no configuration is at hand)."""

    @property
    def binding(self) -> str:
        return binding_key(self.production, self.rule, self.fingerprints)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status.value,
            "production": self.production,
            "user": self.user,
            "rule": self.rule,
            "tool": self.tool,
            "capability": self.capability,
            "event_id": self.event_id,
            "created": _iso(self.created),
            "summary": self.summary,
            "purpose": self.purpose,
            "decided_by": self.decided_by or None,
            "decided_at": _iso(self.decided_at),
            "reason": self.reason or None,
            "expires": _iso(self.expires),
            "fingerprints": list(self.fingerprints),
        }


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One recorded state change."""

    seq: int
    approval_id: str
    ts: float
    action: str
    """`hold`, `purpose`, `approved` or `denied`."""
    actor: str
    body: dict[str, Any]
    prev_hash: str
    hash: str


class AuditRecorder(Protocol):
    def record(self, event: AuditEvent, captures: Sequence[Any] = ()) -> None: ...


def binding_key(production: str, rule: str, fingerprints: Iterable[str]) -> str:
    """What a grant is bound to: production, rule and the exact set of content fingerprints."""
    material = json.dumps([production, rule, sorted(set(fingerprints))], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def hold_rule(decision: Decision) -> str:
    """The rule an approval for this decision is bound to: its holding rules, sorted, joined by `+`."""
    rules = sorted({r.rule for r in decision.reasons if r.action is Action.HOLD})
    return "+".join(rules)


def granted_reason(approval: Approval) -> Reason:
    """The reason the proxy records when a grant lets a held request through: `approval.granted`
    (action allow), naming the approval, the approver and when they approved."""
    return Reason(
        GRANTED_RULE,
        Action.ALLOW,
        message=f"approved by {approval.decided_by} at {_iso(approval.decided_at)}",
        entity=approval.id,
        detector="approvals",
    )


def approval_link(review_url: str, approval_id: str) -> str:
    """Where the requester states a purpose and an approver decides: `<review_url>/approvals/<id>`."""
    return f"{review_url.rstrip('/')}/approvals/{approval_id}"


def new_approval_id() -> str:
    return "apr_" + new_event_id()[4:]


# --- schema ---------------------------------------------------------------------------------------

_V1 = (
    """CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        production TEXT NOT NULL,
        username TEXT NOT NULL,
        rule TEXT NOT NULL,
        tool TEXT NOT NULL,
        capability TEXT NOT NULL,
        fingerprints TEXT NOT NULL,
        binding TEXT NOT NULL,
        hold_key TEXT NOT NULL,
        summary TEXT NOT NULL,
        approvers TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
        created {real} NOT NULL,
        purpose TEXT NOT NULL,
        purpose_at {real},
        decided_by TEXT NOT NULL,
        decided_at {real},
        reason TEXT NOT NULL,
        expires {real},
        decision_hash TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX approvals_one_pending ON approvals (hold_key) WHERE status = 'pending'",
    "CREATE INDEX approvals_binding ON approvals (binding, status)",
    "CREATE INDEX approvals_production ON approvals (production, created)",
    """CREATE TABLE approval_trail (
        seq BIGINT PRIMARY KEY,
        approval_id TEXT NOT NULL,
        ts {real} NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    )""",
    "CREATE INDEX approval_trail_approval ON approval_trail (approval_id, seq)",
)
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1),)
_REAL = {"sqlite": "REAL", "postgres": "DOUBLE PRECISION"}


def _migrate(db: Database) -> None:
    with db.transaction() as session:
        db.lock_migrations(session)
        real = _REAL[db.dialect]
        session.execute(
            "CREATE TABLE IF NOT EXISTS approvals_schema_version "
            f"(version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
        )
        current = session.fetchall("SELECT COALESCE(MAX(version), 0) FROM approvals_schema_version")[0][0]
        latest = _MIGRATIONS[-1][0]
        if current > latest:
            raise ApprovalError(
                f"{db.description}: approvals schema v{current} is newer than this Greenroom (v{latest})"
            )
        for version, statements in _MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                session.execute(statement.format(real=real))
            session.execute(
                "INSERT INTO approvals_schema_version (version, applied_at) VALUES (?, ?)", (version, time.time())
            )


_COLUMNS = (
    "id, event_id, production, username, rule, tool, capability, fingerprints, summary, approvers, status, "
    "created, purpose, purpose_at, decided_by, decided_at, reason, expires, decision_hash"
)


# --- the store ------------------------------------------------------------------------------------


class ApprovalStore:
    """Holds, purposes and written decisions. Thread-safe; `request_hold` and `find_grant` are one or two
    indexed statements each, cheap enough for the proxy to call inline."""

    def __init__(
        self,
        db: Database,
        *,
        config: GatewayConfig | None = None,
        audit: AuditRecorder | None = None,
        webhooks: WebhookDispatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self._config = config
        self._audit = audit
        self._webhooks = webhooks
        self._clock = clock
        try:
            _migrate(db)
        except AuditError as exc:
            raise ApprovalError(f"cannot prepare the approval store: {exc}") from exc

    def close(self) -> None:
        if self._webhooks is not None:
            self._webhooks.close()
        self.db.close()

    def __enter__(self) -> ApprovalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the proxy's two calls ------------------------------------------------------------------

    def request_hold(
        self,
        event_id: str,
        production: str,
        user: str,
        rule: str,
        tool: str,
        capability: str,
        fingerprints: Sequence[str],
        summary: str,
    ) -> Approval:
        """A pending approval for this hold; the same one again while the same user's same request
        (production, rule, content) is still pending."""
        if not rule:
            raise ApprovalStateError("a hold needs the rule that held it")
        prints = tuple(sorted(set(fingerprints)))
        binding = binding_key(production, rule, prints)
        hold_key = hashlib.sha256(f"{binding}\0{user}".encode()).hexdigest()
        existing = self._pending_by_key(hold_key)
        if existing is not None:
            return existing
        now = self._clock()
        approval = Approval(
            id=new_approval_id(),
            event_id=event_id,
            production=production,
            user=user,
            rule=rule,
            tool=tool,
            capability=capability,
            fingerprints=prints,
            summary=summary,
            status=ApprovalStatus.PENDING,
            created=now,
            approvers=self._approvers(production, None),
        )
        body = {
            "approval": approval.id, "action": "hold", "actor": user, "ts": now, "event_id": event_id,
            "production": production, "rule": rule, "binding": binding, "summary": summary,
        }  # fmt: skip
        try:
            with self._write() as session:
                session.execute(
                    f"INSERT INTO approvals ({_COLUMNS}, binding, hold_key) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL, '', NULL, '', NULL, '', ?, ?)",
                    (
                        approval.id, event_id, production, user, rule, tool, capability, json.dumps(prints),
                        summary, json.dumps(approval.approvers), approval.status.value, now, binding, hold_key,
                    ),
                )  # fmt: skip
                self._append(session, approval.id, "hold", user, now, body)
        except DuplicateEntryError:
            again = self._pending_by_key(hold_key)  # another thread or replica made it first
            if again is None:
                raise
            return again
        _log.info("approval_requested", approval=approval.id, event_id=event_id, production=production, rule=rule)
        self._notify("hold", approval)
        return approval

    def find_grant(self, production: str, rule: str, fingerprints: Sequence[str]) -> Approval | None:
        """The approval that lets this content through now: approved, not expired, bound to this
        production, this rule and exactly these fingerprints. None otherwise."""
        binding = binding_key(production, rule, fingerprints)
        now = self._clock()
        with self._read() as session:
            rows = session.fetchall(
                f"SELECT {_COLUMNS} FROM approvals WHERE binding = ? AND status = 'approved' "  # noqa: S608
                "AND (expires IS NULL OR expires > ?) ORDER BY decided_at DESC",
                (binding, now),
            )
            for row in rows:
                approval = _approval(row, now)
                trail = session.fetchall(
                    "SELECT body, prev_hash FROM approval_trail WHERE hash = ? AND approval_id = ?",
                    (row[-1], approval.id),
                )
                intact = bool(trail) and _chain(trail[0][1], trail[0][0]) == row[-1]
                if intact and _grants(json.loads(trail[0][0]), approval, binding):
                    return approval
                _log.error("approval_trail_mismatch", approval=approval.id)
        return None

    # --- the requester and the approvers --------------------------------------------------------

    def set_purpose(self, approval_id: str, user: str, purpose: str) -> Approval:
        """The requester states what the held request is for (shown to approvers, in the report)."""
        purpose = purpose.strip()
        if not purpose:
            raise ApprovalStateError("state the purpose in a few words")
        now = self._clock()
        with self._write() as session:
            approval = self._locked(session, approval_id)
            if approval.user != user:
                raise NotRequesterError(f"only {approval.user} can state the purpose of {approval_id}")
            if approval.status is not ApprovalStatus.PENDING:
                raise ApprovalStateError(f"{approval_id} is already {approval.status.value}")
            session.execute(
                "UPDATE approvals SET purpose = ?, purpose_at = ? WHERE id = ?", (purpose, now, approval_id)
            )
            body = {"approval": approval_id, "action": "purpose", "actor": user, "ts": now, "purpose": purpose}
            self._append(session, approval_id, "purpose", user, now, body)
        updated = replace(approval, purpose=purpose, purpose_at=now)
        self._record_audit("approval.purpose", updated, user)
        self._notify("purpose", updated)
        return updated

    def approve(self, approval_id: str, approver: str, reason: str, expires: float | None = None) -> Approval:
        """Grant in writing. Only an approver of the hold's production may; `expires` is a Unix time."""
        return self._decide(approval_id, approver, reason, ApprovalStatus.APPROVED, expires)

    def deny(self, approval_id: str, approver: str, reason: str) -> Approval:
        """Refuse in writing. Only an approver of the hold's production may."""
        return self._decide(approval_id, approver, reason, ApprovalStatus.DENIED, None)

    def _decide(
        self, approval_id: str, approver: str, reason: str, status: ApprovalStatus, expires: float | None
    ) -> Approval:
        reason = reason.strip()
        if not reason:
            raise ApprovalStateError("a decision needs a written reason")
        now = self._clock()
        if expires is not None and expires <= now:
            raise ApprovalStateError("the expiry is in the past")
        with self._write() as session:
            approval = self._locked(session, approval_id)
            if approver not in self._approvers(approval.production, approval):
                raise NotAnApproverError(
                    f"{approver} is not an approver of production {approval.production}; "
                    f"its approvers: {', '.join(self._approvers(approval.production, approval)) or 'none'}"
                )
            if approval.status is not ApprovalStatus.PENDING:
                raise ApprovalStateError(f"{approval_id} is already {approval.status.value}")
            body = {
                "approval": approval_id, "action": status.value, "actor": approver, "ts": now, "reason": reason,
                "expires": expires, "binding": approval.binding,
            }  # fmt: skip
            digest = self._append(session, approval_id, status.value, approver, now, body)
            changed = session.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, reason = ?, expires = ?, "
                "decision_hash = ? WHERE id = ? AND status = 'pending'",
                (status.value, approver, now, reason, expires, digest, approval_id),
            )
            if changed != 1:
                raise ApprovalStateError(f"{approval_id} was decided meanwhile")
        decided = replace(approval, status=status, decided_by=approver, decided_at=now, reason=reason, expires=expires)
        _log.info(f"approval_{status.value}", approval=approval_id, approver=approver, production=approval.production)
        self._record_audit(f"approval.{status.value}", decided, approver)
        self._notify(status.value, decided)
        return decided

    # --- reading --------------------------------------------------------------------------------

    def get(self, approval_id: str) -> Approval:
        with self._read() as session:
            rows = session.fetchall(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (approval_id,))  # noqa: S608
        if not rows:
            raise UnknownApprovalError(f"no approval {approval_id}")
        return _approval(rows[0], self._clock())

    def list(
        self,
        production: str | Collection[str] | None = None,
        status: ApprovalStatus | str | None = None,
        user: str | None = None,
    ) -> list[Approval]:
        """Approvals, newest first; `status` filters on the effective status (`expired` included)."""
        where, params = ["1 = 1"], []
        if isinstance(production, str):
            where.append("production = ?")
            params.append(production)
        elif production is not None:
            productions = sorted(production)
            if not productions:
                return []
            where.append(f"production IN ({', '.join('?' for _ in productions)})")
            params.extend(productions)
        if user is not None:
            where.append("username = ?")
            params.append(user)
        with self._read() as session:
            rows = session.fetchall(
                f"SELECT {_COLUMNS} FROM approvals WHERE {' AND '.join(where)} ORDER BY created DESC, id", params  # noqa: S608
            )
        now = self._clock()
        approvals = [_approval(r, now) for r in rows]
        if status is not None:
            wanted = ApprovalStatus(status)
            approvals = [a for a in approvals if a.status is wanted]
        return approvals

    def trail(self, approval_id: str | None = None) -> builtins.list[TrailEntry]:
        """Recorded state changes in order (of one approval, or all)."""
        sql = "SELECT seq, approval_id, ts, action, actor, body, prev_hash, hash FROM approval_trail"
        params: tuple[Any, ...] = ()
        if approval_id is not None:
            sql += " WHERE approval_id = ?"
            params = (approval_id,)
        with self._read() as session:
            rows = session.fetchall(sql + " ORDER BY seq", params)
        return [TrailEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def verify(self) -> builtins.list[str]:
        """Problems with the trail: a broken chain, or an approval whose row disagrees with its trail."""
        problems: builtins.list[str] = []
        prev, expected_seq = _GENESIS, 1
        latest: dict[str, dict[str, Any]] = {}
        for entry in self.trail():
            raw = json.dumps(entry.body, sort_keys=True, separators=(",", ":"))
            if entry.seq != expected_seq:
                problems.append(f"trail row {expected_seq} is missing (next is {entry.seq})")
            if entry.prev_hash != prev or entry.hash != _chain(prev, raw):
                problems.append(f"trail row {entry.seq} ({entry.approval_id}) was altered")
            prev, expected_seq = entry.hash, entry.seq + 1
            if entry.action in ("hold", "approved", "denied"):
                latest[entry.approval_id] = entry.body
        with self._read() as session:
            rows = session.fetchall("SELECT id, status, decision_hash FROM approvals ORDER BY id")
        hashes = {e.hash for e in self.trail()}
        for approval_id, stored, decision_hash in rows:
            last = latest.get(approval_id)
            if last is None:
                problems.append(f"{approval_id} has no recorded hold")
                continue
            recorded = "pending" if last["action"] == "hold" else last["action"]
            if recorded != stored or (stored != "pending" and decision_hash not in hashes):
                problems.append(f"{approval_id} is {stored} but its trail says {recorded}")
        return problems

    # --- internals ------------------------------------------------------------------------------

    def _approvers(self, production: str, approval: Approval | None) -> tuple[str, ...]:
        if self._config is not None:
            prod = self._config.production(production)
            return tuple(prod.approvers) if prod is not None else ()
        return approval.approvers if approval is not None else ()

    def _pending_by_key(self, hold_key: str) -> Approval | None:
        with self._read() as session:
            rows = session.fetchall(
                f"SELECT {_COLUMNS} FROM approvals WHERE hold_key = ? AND status = 'pending'", (hold_key,)  # noqa: S608
            )
        return _approval(rows[0], self._clock()) if rows else None

    def _locked(self, session: Any, approval_id: str) -> Approval:
        suffix = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        rows = session.fetchall(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?{suffix}", (approval_id,))  # noqa: S608
        if not rows:
            raise UnknownApprovalError(f"no approval {approval_id}")
        return _approval(rows[0], self._clock())

    def _append(self, session: Any, approval_id: str, action: str, actor: str, ts: float, body: dict[str, Any]) -> str:
        if self.db.dialect == "postgres":
            session.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.greenroom_approvals'))")
        rows = session.fetchall("SELECT seq, hash FROM approval_trail ORDER BY seq DESC LIMIT 1")
        seq, prev = (rows[0][0], rows[0][1]) if rows else (0, _GENESIS)
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = _chain(prev, raw)
        session.execute(
            "INSERT INTO approval_trail (seq, approval_id, ts, action, actor, body, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq + 1, approval_id, ts, action, actor, raw, prev, digest),
        )
        return digest

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        try:
            with self.db.transaction() as session:
                yield session
        except DuplicateEntryError:
            raise
        except AuditError as exc:
            raise ApprovalError(f"approval store: {exc}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        try:
            with self.db.transaction(write=False) as session:
                yield session
        except AuditError as exc:
            raise ApprovalError(f"approval store: {exc}") from exc

    def _record_audit(self, action: str, approval: Approval, actor: str) -> None:
        if self._audit is None:
            return
        event = AuditEvent(
            id=new_event_id(),
            ts=self._clock(),
            user=actor,
            production=approval.production,
            tool="greenroom",
            endpoint=action,
            capability="other",
            method="APPROVAL",
            host="",
            path=f"/approvals/{approval.id}",
            mode="approval",
            client="approvals",
            decision=Decision.of([Reason(action, Action.NOTIFY, entity=approval.id, detector="approvals")]),
            approval_id=approval.id,
            input_digests=approval.fingerprints,
        )
        self._audit.record(event)

    def _notify(self, kind: str, approval: Approval) -> None:
        if self._webhooks is not None:
            self._webhooks.send(kind, approval)


def _chain(prev: str, raw: str) -> str:
    return hashlib.sha256(f"{prev}\n{raw}".encode()).hexdigest()


def _grants(body: Mapping[str, Any], approval: Approval, binding: str) -> bool:
    return (
        body.get("action") == "approved"
        and body.get("approval") == approval.id
        and body.get("binding") == binding
        and body.get("expires") == approval.expires
        and body.get("actor") == approval.decided_by
        and body.get("reason") == approval.reason
    )


def _approval(row: Sequence[Any], now: float) -> Approval:
    (
        id_, event_id, production, user, rule, tool, capability, prints, summary, approvers, status, created,
        purpose, purpose_at, decided_by, decided_at, reason, expires, _decision_hash,
    ) = row  # fmt: skip
    state = ApprovalStatus(status)
    if state is ApprovalStatus.APPROVED and expires is not None and expires <= now:
        state = ApprovalStatus.EXPIRED
    return Approval(
        id=id_, event_id=event_id, production=production, user=user, rule=rule, tool=tool, capability=capability,
        fingerprints=tuple(json.loads(prints)), summary=summary, status=state, created=created, purpose=purpose,
        purpose_at=purpose_at, decided_by=decided_by, decided_at=decided_at, reason=reason, expires=expires,
        approvers=tuple(json.loads(approvers)),
    )  # fmt: skip


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# --- webhooks -------------------------------------------------------------------------------------


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` under the shared secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True, slots=True)
class _Delivery:
    hook: WebhookSettings
    secret: str
    kind: str
    body: bytes
    delivery_id: str


class WebhookDispatcher:
    """Delivers signed webhook POSTs from one background thread, with retries and backoff.

    `send()` never blocks: it queues (a bounded queue; when full the delivery is dropped and logged).
    """

    def __init__(
        self,
        hooks: Sequence[WebhookSettings],
        *,
        env: Mapping[str, str] | None = None,
        review_url: str = "",
        backoff: float = 1.0,
        post: Callable[[str, bytes, Mapping[str, str], float], int] | None = None,
        max_queue: int = 1000,
    ) -> None:
        environ = os.environ if env is None else env
        self._hooks: list[tuple[WebhookSettings, str]] = []
        for hook in hooks:
            secret = hook.secret if hook.secret is not None else environ.get(hook.secret_env or "", "")
            if not secret:
                raise ApprovalError(f"webhook {hook.url}: environment variable {hook.secret_env} is not set")
            self._hooks.append((hook, secret))
        self._review_url = review_url
        self._backoff = backoff
        self._post = post or _http_post
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def send(self, kind: str, approval: Approval) -> None:
        wanted = [(h, s) for h, s in self._hooks if kind in h.events]
        if not wanted:
            return
        payload = {"event": f"approval.{kind}", "sent": _iso(time.time()), "approval": approval.as_dict()}
        if self._review_url:
            payload["link"] = approval_link(self._review_url, approval.id)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        self._start()
        for hook, secret in wanted:
            try:
                self._queue.put_nowait(_Delivery(hook, secret, kind, body, new_event_id()[4:]))
            except queue.Full:
                self.failed += 1
                _log.error("webhook_dropped", url=hook.url, approval=approval.id, reason="queue full")

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within `timeout`), then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="greenroom-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(item)

    def _deliver(self, item: _Delivery) -> None:
        for attempt in range(item.hook.retries + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "greenroom-webhook/1",
                "X-Greenroom-Event": f"approval.{item.kind}",
                "X-Greenroom-Delivery": item.delivery_id,
                "X-Greenroom-Timestamp": timestamp,
                "X-Greenroom-Signature": sign_webhook(item.secret, timestamp, item.body),
            }
            try:
                status = self._post(item.hook.url, item.body, headers, item.hook.timeout_seconds)
            except OSError as exc:
                status, error = 0, type(exc).__name__
            else:
                error = f"HTTP {status}"
            if 200 <= status < 300:
                self.delivered += 1
                _log.info("webhook_delivered", url=item.hook.url, delivery=item.delivery_id, attempt=attempt + 1)
                return
            _log.warning(
                "webhook_failed", url=item.hook.url, delivery=item.delivery_id, attempt=attempt + 1, error=error
            )
            if attempt < item.hook.retries:
                time.sleep(self._backoff * (2**attempt))
        self.failed += 1


def _http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# --- opening --------------------------------------------------------------------------------------


def open_approvals(
    data_dir: str | Path,
    config: GatewayConfig | None = None,
    *,
    audit: AuditRecorder | None = None,
    env: Mapping[str, str] | None = None,
    webhooks: bool = True,
) -> ApprovalStore:
    """The approval store of a data dir: PostgreSQL when the audit store is, else `approvals.sqlite3`."""
    from gateway.audit.store import AUDIT_DSN_ENV

    environ = os.environ if env is None else env
    settings = config.settings.audit if config is not None else AuditSettings()
    dsn = environ.get(AUDIT_DSN_ENV) or (settings.dsn if settings.store == "postgres" else None)
    db: Database
    try:
        if dsn:
            from gateway.audit.postgres import PostgresDatabase

            db = PostgresDatabase(dsn)
        else:
            from gateway.audit.sqlite import SqliteDatabase

            db = SqliteDatabase(Path(data_dir) / "approvals.sqlite3")
    except AuditError as exc:
        raise ApprovalError(f"cannot open the approval store: {exc}") from exc
    dispatcher = None
    if webhooks and config is not None and config.settings.webhooks:
        dispatcher = WebhookDispatcher(config.settings.webhooks, env=environ, review_url=config.settings.review_url)
    try:
        return ApprovalStore(db, config=config, audit=audit, webhooks=dispatcher)
    except BaseException:
        db.close()
        raise
