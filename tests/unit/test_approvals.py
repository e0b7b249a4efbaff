"""Written approval: binding to production, rule and exact content; expiry; who may decide; the
trail; webhooks signed and delivered off the request path."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gateway.approvals import (
    ApprovalStateError,
    ApprovalStatus,
    ApprovalStore,
    NotAnApproverError,
    NotRequesterError,
    UnknownApprovalError,
    WebhookDispatcher,
    approval_link,
    granted_reason,
    hold_rule,
    open_approvals,
    sign_webhook,
)
from gateway.audit.sqlite import SqliteDatabase
from gateway.config import load_config
from gateway.config.models import Action, WebhookSettings
from gateway.decision import Decision, Reason

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "config" / "demo").config
A = hashlib.sha256(b"a prompt with jane@example.com").hexdigest()
B = hashlib.sha256(b"a picture").hexdigest()
C = hashlib.sha256(b"different content").hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> ApprovalStore:
    s = ApprovalStore(SqliteDatabase(tmp_path / "approvals.sqlite3"), config=CONFIG, clock=clock)
    yield s
    s.close()


def hold(store: ApprovalStore, prints=(A, B), user="alice", production="northern-lights", rule="pii.email"):
    return store.request_hold("evt_1", production, user, rule, "openai-api", "chat", prints, "pii.email at messages[0]")


@pytest.mark.parametrize(
    ("retried", "rule", "production", "granted"),
    [
        ((A, B), "pii.email", "northern-lights", True),
        ((B, A), "pii.email", "northern-lights", True),
        ((A, B, B), "pii.email", "northern-lights", True),
        ((A,), "pii.email", "northern-lights", False),
        ((A, B, C), "pii.email", "northern-lights", False),
        ((A, C), "pii.email", "northern-lights", False),
        ((A, B), "pii.phone", "northern-lights", False),
        ((A, B), "pii.email", "harbor-nights", False),
    ],
    ids=["same", "reordered", "duplicate-input", "subset", "superset", "changed", "other-rule", "other-production"],
)
def test_grant_is_bound_to_production_rule_and_exact_content(store, retried, rule, production, granted) -> None:
    """The same content retried passes; any different content, rule or production still holds."""
    approval = hold(store)
    store.approve(approval.id, "erin", "interviewee consented to being named")
    found = store.find_grant(production, rule, retried)
    assert (found is not None) is granted
    if granted:
        assert found.id == approval.id and found.decided_by == "erin"


def test_granted_reason_names_approver_and_time(store, clock) -> None:
    approval = hold(store)
    reason = granted_reason(store.approve(approval.id, "erin", "ok"))
    assert (reason.rule, reason.action, reason.entity) == ("approval.granted", Action.ALLOW, approval.id)
    assert reason.message == "approved by erin at 2027-01-15T08:00:00Z"


def test_pending_and_denied_grant_nothing(store) -> None:
    approval = hold(store)
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is None
    store.deny(approval.id, "erin", "use the anonymised transcript")
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is None
    assert store.get(approval.id).status is ApprovalStatus.DENIED


def test_expired_approval_holds_again(store, clock) -> None:
    """Past its expiry an approval grants nothing and lists as expired."""
    approval = hold(store)
    store.approve(approval.id, "erin", "for this week's cut", expires=clock.now + 3600)
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is not None
    clock.now += 3601
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is None
    assert store.get(approval.id).status is ApprovalStatus.EXPIRED
    assert [a.id for a in store.list(status="expired")] == [approval.id]
    again = hold(store)
    assert again.id != approval.id and again.status is ApprovalStatus.PENDING


def test_expiry_in_the_past_is_refused(store, clock) -> None:
    approval = hold(store)
    with pytest.raises(ApprovalStateError, match="past"):
        store.approve(approval.id, "erin", "ok", expires=clock.now - 1)


@pytest.mark.parametrize("who", ["dave", "carol", "alice", "mallory"])
def test_only_an_approver_of_the_production_decides(store, who) -> None:
    """dave approves harbor-nights, not northern-lights; reviewers and staff approve nothing; nothing changes."""
    approval = hold(store)
    with pytest.raises(NotAnApproverError, match="erin"):
        store.approve(approval.id, who, "looks fine")
    with pytest.raises(NotAnApproverError):
        store.deny(approval.id, who, "no")
    assert store.get(approval.id).status is ApprovalStatus.PENDING
    assert [e.action for e in store.trail(approval.id)] == ["hold"]


def test_without_configuration_the_approvers_at_hold_time_decide(tmp_path, clock) -> None:
    path = tmp_path / "approvals.sqlite3"
    with ApprovalStore(SqliteDatabase(path), config=CONFIG, clock=clock) as s:
        approval = hold(s)
    with ApprovalStore(SqliteDatabase(path), clock=clock) as s:
        with pytest.raises(NotAnApproverError):
            s.approve(approval.id, "dave", "ok")
        assert s.approve(approval.id, "erin", "ok").status is ApprovalStatus.APPROVED


def test_hold_is_idempotent_while_pending(store) -> None:
    """The same user's same request held twice is one approval; another user's is another."""
    first = hold(store)
    assert hold(store, prints=(B, A)).id == first.id
    assert hold(store, user="erin").id != first.id
    assert hold(store, prints=(C,)).id != first.id
    store.deny(first.id, "erin", "no")
    assert hold(store).id != first.id


def test_concurrent_holds_make_one_approval(store) -> None:
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(hold(store).id)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 8


def test_decisions_are_final_and_need_a_reason(store) -> None:
    approval = hold(store)
    with pytest.raises(ApprovalStateError, match="reason"):
        store.approve(approval.id, "erin", "   ")
    store.approve(approval.id, "erin", "fine")
    with pytest.raises(ApprovalStateError, match="already approved"):
        store.deny(approval.id, "erin", "changed my mind")
    with pytest.raises(UnknownApprovalError):
        store.approve("apr_nope", "erin", "fine")


def test_only_the_requester_states_the_purpose(store) -> None:
    approval = hold(store)
    with pytest.raises(NotRequesterError):
        store.set_purpose(approval.id, "bob", "mine now")
    assert store.set_purpose(approval.id, "alice", "episode 3 interview summary").purpose.startswith("episode")
    assert store.get(approval.id).purpose == "episode 3 interview summary"


def test_trail_records_who_when_why_and_is_hash_chained(store, tmp_path, clock) -> None:
    approval = hold(store)
    store.set_purpose(approval.id, "alice", "research")
    clock.now += 60
    store.approve(approval.id, "erin", "cleared with legal", expires=clock.now + 86400)
    trail = store.trail(approval.id)
    assert [(e.action, e.actor) for e in trail] == [("hold", "alice"), ("purpose", "alice"), ("approved", "erin")]
    assert trail[-1].body["reason"] == "cleared with legal" and trail[-1].ts == clock.now
    assert store.verify() == []


def test_a_status_forged_in_the_database_grants_nothing(store, tmp_path) -> None:
    """Setting status=approved behind the store's back is not a grant, and verify names it."""
    approval = hold(store)
    with sqlite3.connect(tmp_path / "approvals.sqlite3") as db:
        db.execute("UPDATE approvals SET status = 'approved', decided_by = 'erin' WHERE id = ?", (approval.id,))
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is None
    assert any(approval.id in p for p in store.verify())


def test_an_altered_trail_row_is_detected(store, tmp_path) -> None:
    approval = hold(store)
    store.approve(approval.id, "erin", "fine")
    with sqlite3.connect(tmp_path / "approvals.sqlite3") as db:
        db.execute("UPDATE approval_trail SET body = replace(body, 'fine', 'FINE') WHERE action = 'approved'")
    problems = store.verify()
    assert any("altered" in p for p in problems)
    assert store.find_grant("northern-lights", "pii.email", (A, B)) is None


def test_list_filters(store) -> None:
    a = hold(store)
    b = hold(store, production="harbor-nights", user="bob", rule="likeness.face")
    store.approve(b.id, "dave", "consent on file")
    assert {x.id for x in store.list()} == {a.id, b.id}
    assert [x.id for x in store.list(production="harbor-nights")] == [b.id]
    assert [x.id for x in store.list(production={"northern-lights"})] == [a.id]
    assert [x.id for x in store.list(status="pending")] == [a.id]
    assert [x.id for x in store.list(user="bob")] == [b.id]
    assert store.list(production=set()) == []


def test_hold_rule_and_link() -> None:
    decision = Decision.of([
        Reason("pii.phone", Action.HOLD),
        Reason("pii.email", Action.HOLD),
        Reason("tool.unlisted_endpoint", Action.NOTIFY),
    ])  # fmt: skip
    assert hold_rule(decision) == "pii.email+pii.phone"
    assert approval_link("http://127.0.0.1:8700/", "apr_x") == "http://127.0.0.1:8700/approvals/apr_x"


def test_request_hold_and_find_grant_are_fast(store) -> None:
    """The proxy calls these inline: well under a few milliseconds each on SQLite."""
    approval = hold(store)
    store.approve(approval.id, "erin", "ok")
    started = time.perf_counter()
    for _ in range(200):
        assert store.find_grant("northern-lights", "pii.email", (A, B)) is not None
    assert (time.perf_counter() - started) / 200 < 0.005


def test_open_approvals_uses_its_own_file(tmp_path) -> None:
    with open_approvals(tmp_path, CONFIG, env={}) as s:
        hold(s)
    assert (tmp_path / "approvals.sqlite3").is_file()
    assert not (tmp_path / "audit.sqlite3").exists()


# --- webhooks -------------------------------------------------------------------------------------


def test_webhook_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = b'{"event":"approval.hold"}'
    expected = hmac.new(b"s" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook("s" * 16, "1700000000", body) == "sha256=" + expected
    assert sign_webhook("t" * 16, "1700000000", body) != "sha256=" + expected


def test_webhooks_fire_on_hold_approval_and_denial_signed_and_retried(tmp_path, clock) -> None:
    """Deliveries carry a verifiable signature; a failure is retried; send never waits for the receiver."""
    received: list[tuple[str, bytes, dict]] = []
    attempts = {"n": 0}
    gate = threading.Event()

    def post(url, body, headers, timeout):
        gate.wait(5)
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionRefusedError
        received.append((url, body, dict(headers)))
        return 204

    hook = WebhookSettings(url="https://hooks.example/a", secret_env="HOOK_SECRET")
    env = {"HOOK_SECRET": "x" * 20}
    dispatcher = WebhookDispatcher([hook], env=env, review_url="http://r", backoff=0.01, post=post)
    s = ApprovalStore(SqliteDatabase(tmp_path / "a.sqlite3"), config=CONFIG, webhooks=dispatcher, clock=clock)
    started = time.perf_counter()
    a = hold(s)
    s.approve(a.id, "erin", "ok")
    b = hold(s, prints=(C,))
    s.deny(b.id, "erin", "no")
    assert time.perf_counter() - started < 1.0  # the receiver is blocked; the store is not
    gate.set()
    s.close()
    assert [json.loads(body)["event"] for _, body, _ in received] == [
        "approval.hold", "approval.approved", "approval.hold", "approval.denied",
    ]  # fmt: skip
    for _url, body, headers in received:
        assert headers["X-Greenroom-Signature"] == sign_webhook("x" * 20, headers["X-Greenroom-Timestamp"], body)
    first = json.loads(received[0][1])
    assert first["link"] == f"http://r/approvals/{a.id}" and first["approval"]["production"] == "northern-lights"
    assert dispatcher.delivered == 4 and attempts["n"] == 5


def test_webhook_secret_must_be_available() -> None:
    hook = WebhookSettings(url="https://hooks.example/a", secret_env="MISSING")
    with pytest.raises(Exception, match="MISSING"):
        WebhookDispatcher([hook], env={})
    with pytest.raises(ValueError, match="exactly one"):
        WebhookSettings(url="https://hooks.example/a")


def test_example_documents_every_webhook_option() -> None:
    text = (ROOT / "config" / "example" / "gateway.yaml").read_text()
    assert [f for f in WebhookSettings.model_fields if not re.search(rf"(?<![\w-]){f}:", text)] == []


# --- PostgreSQL (the audit store's database, when it is configured) --------------------------------

PG_BASE = os.environ.get("GREENROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_store(clock: Clock):
    """An approval store in a fresh schema of the local PostgreSQL (the same one the audit tests use)."""
    import psycopg

    from gateway.audit.postgres import PostgresDatabase

    schema = f"gr_apr_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = ApprovalStore(PostgresDatabase(f"{PG_BASE}?options=-csearch_path%3D{schema}"), config=CONFIG, clock=clock)
    yield store
    store.close()
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_binding_expiry_idempotence_and_trail(pg_store, clock) -> None:
    """The same workflow on PostgreSQL: one pending hold under concurrency, exact binding, expiry, chain."""
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(hold(pg_store).id)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    with pytest.raises(NotAnApproverError):
        pg_store.approve(ids[0], "dave", "no")
    pg_store.approve(ids[0], "erin", "ok", expires=clock.now + 60)
    assert pg_store.find_grant("northern-lights", "pii.email", (B, A)) is not None
    assert pg_store.find_grant("northern-lights", "pii.email", (A, C)) is None
    clock.now += 61
    assert pg_store.find_grant("northern-lights", "pii.email", (A, B)) is None
    assert pg_store.get(ids[0]).status is ApprovalStatus.EXPIRED
    assert pg_store.verify() == []
