"""The disclosure report: its figures from known events and approvals, its four formats, and the
`greenroom report` / `greenroom approvals` commands over a seeded data dir."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from gateway.approvals import Approval, ApprovalStatus
from gateway.audit import AuditEvent, Outcome, StoredEvent
from gateway.cli import main
from gateway.config import load_config
from gateway.config.models import Action
from gateway.decision import Decision, Reason
from gateway.report import build_report, render

sys.path.insert(0, str(Path(__file__).resolve().parent / "review"))
from review_seed import seed  # a sibling test helper; `tests` is shadowed by a site package)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "config" / "demo").config
T0 = 1_790_000_000.0


def stored(i: int, user: str, tool: str, reasons: list[Reason], production: str = "harbor-nights", **kw) -> StoredEvent:
    event = AuditEvent(
        id=f"evt_{i:026d}", ts=T0 + i * 60, user=user, production=production, tool=tool, endpoint="x",
        capability="chat", method="POST", host="h", path="/p", mode=kw.pop("mode", "proxy"), client="c",
        decision=Decision.of(reasons), request_bytes=100, approval_id=kw.pop("approval_id", ""),
    )  # fmt: skip
    outcome = Outcome(200, 10.0, 10, False, input_tokens=5, output_tokens=7) if kw.pop("done", True) else None
    return StoredEvent(event, "r", i, "h", outcome=outcome)


EVENTS = [
    stored(1, "bob", "openai-api", []),
    stored(2, "bob", "openai-api", [Reason("pii.email", Action.REDACT, entity="email")]),
    stored(
        3,
        "bob",
        "elevenlabs-api",
        [Reason("likeness.voice", Action.HOLD, entity="eileen-collins")],
        approval_id="apr_1",
    ),
    stored(4, "dan", "openai-api", [Reason("likeness.consented", Action.NOTIFY, entity="eileen-collins")]),
    stored(5, "dan", "openai-api", [Reason("ip.image", Action.BLOCK, entity="blue-meridian")], done=False),
    stored(6, "carol", "greenroom", [Reason("audit.decrypt", Action.NOTIFY)], mode="review"),
    stored(7, "alice", "openai-api", [], production="northern-lights"),
]
APPROVALS = [
    Approval("apr_1", "evt_3", "harbor-nights", "bob", "likeness.voice", "elevenlabs-api", "text_to_speech", ("f",),
             "s", ApprovalStatus.APPROVED, T0 + 200, purpose="temp VO for the animatic", decided_by="dave",
             decided_at=T0 + 300, reason="consent covers temp VO"),
    Approval("apr_2", "evt_9", "northern-lights", "alice", "pii.email", "openai-api", "chat", ("g",), "s",
             ApprovalStatus.PENDING, T0 + 400, purpose="other production"),
]  # fmt: skip


def test_report_figures() -> None:
    """Counts by tool and decision; admin entries and other productions left out; sensitive events by
    prefix; approvals with reasons; consents with how often they were relied on."""
    report = build_report(CONFIG, EVENTS, APPROVALS, "harbor-nights", now=T0 + 1000)
    assert report.requests == 5 and report.users == ["bob", "dan"]
    assert report.decisions == {"allow": 1, "notify": 1, "redact": 1, "hold": 1, "block": 1}
    openai = next(t for t in report.tools if t.tool == "openai-api")
    assert (openai.requests, openai.users, openai.request_bytes) == (4, 2, 400)
    assert (openai.input_tokens, openai.output_tokens) == (15, 21)
    assert openai.decisions == {"allow": 1, "block": 1, "notify": 1, "redact": 1}
    assert openai.note.startswith("Script notes")
    assert [t.tool for t in report.tools] == ["openai-api", "elevenlabs-api"]
    assert report.sensitive_counts == {"likeness": 2, "ip": 1, "personal_data": 1}
    assert [(s.rule, s.category) for s in report.sensitive] == [
        ("pii.email", "personal_data"), ("likeness.voice", "likeness"), ("likeness.consented", "likeness"),
        ("ip.image", "ip"),
    ]  # fmt: skip
    assert report.purposes == [{
        "approval": "apr_1", "user": "bob", "rule": "likeness.voice", "tool": "elevenlabs-api",
        "purpose": "temp VO for the animatic", "status": "approved",
    }]  # fmt: skip
    assert [(a["id"], a["decided_by"], a["reason"]) for a in report.approvals] == [
        ("apr_1", "dave", "consent covers temp VO")
    ]
    (consent,) = report.consents
    assert (consent.talent, consent.relied_on, consent.until) == ("eileen-collins", 1, "2027-12-31")


def test_report_since() -> None:
    report = build_report(CONFIG, EVENTS, APPROVALS, "harbor-nights", since=T0 + 150)
    assert report.requests == 3 and report.decisions["allow"] == 0
    assert [a["id"] for a in report.approvals] == ["apr_1"]


@pytest.mark.parametrize("fmt", ["html", "md", "csv", "json"])
def test_report_formats(fmt) -> None:
    text = render(build_report(CONFIG, EVENTS, APPROVALS, "harbor-nights"), fmt)
    assert "consent covers temp VO" in text and "temp VO for the animatic" in text
    if fmt == "json":
        assert json.loads(text)["decisions"]["block"] == 1
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert ["summary", "AI requests", "5"] in rows
    elif fmt == "html":
        assert text.startswith("<!doctype html>") and "<script" not in text
    else:
        assert "| OpenAI API (openai-api) | 4 | 2 |" in text


def test_report_escapes_what_people_wrote() -> None:
    approval = Approval(
        "apr_3", "evt_3", "harbor-nights", "bob", "pii.email", "openai-api", "chat", ("f",), "s",
        ApprovalStatus.PENDING, T0, purpose="<script>alert(1)</script> =HYPERLINK(\"x\")",
    )  # fmt: skip
    report = build_report(CONFIG, EVENTS, [approval], "harbor-nights")
    assert "<script>" not in render(report, "html")
    assert "'=HYPERLINK" not in render(report, "csv")  # the cell starts with '<', not a formula
    formula = build_report(CONFIG, EVENTS, [Approval(**{**{f: getattr(approval, f) for f in approval.__slots__},
                                                       "purpose": "=cmd"})], "harbor-nights")  # fmt: skip
    assert "'=cmd" in render(formula, "csv")


# --- commands -------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path):
    return seed(tmp_path / "var")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_approvals_list_json(data_dir, capsys) -> None:
    code, out, _ = run(capsys, "approvals", "list", "--data-dir", str(data_dir.data_dir), "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert {a["id"] for a in listed} == {data_dir.held_approval, data_dir.harbor_approval}
    for item in listed:
        assert {"id", "status", "production", "user", "rule", "event_id", "created"} <= item.keys()
        assert item["status"] == "pending"
    code, out, _ = run(
        capsys, "approvals", "list", "--data-dir", str(data_dir.data_dir), "--format", "json",
        "--production", "harbor-nights",
    )  # fmt: skip
    assert [a["id"] for a in json.loads(out)] == [data_dir.harbor_approval]


def test_approve_by_a_non_approver_fails_and_changes_nothing(data_dir, capsys) -> None:
    d = str(data_dir.data_dir)
    code, _, err = run(capsys, "approvals", "approve", data_dir.held_approval, "--data-dir", d,
                       "--approver", "dave", "--reason", "fine")  # fmt: skip
    assert code != 0 and "not an approver" in err
    _, out, _ = run(capsys, "approvals", "list", "--data-dir", d, "--format", "json")
    assert {a["status"] for a in json.loads(out)} == {"pending"}


def test_request_approve_then_the_same_content_is_granted(data_dir, capsys) -> None:
    from gateway.approvals import open_approvals

    d = str(data_dir.data_dir)
    code, out, _ = run(capsys, "approvals", "request", data_dir.held_approval, "--data-dir", d,
                       "--purpose", "episode 3 research")  # fmt: skip
    assert code == 0 and "purpose recorded" in out
    code, out, _ = run(capsys, "approvals", "approve", data_dir.held_approval, "--data-dir", d,
                       "--config", str(ROOT / "config" / "demo"), "--approver", "erin", "--reason", "cleared",
                       "--expires", "30d")  # fmt: skip
    assert code == 0 and "approved by erin" in out
    with open_approvals(data_dir.data_dir, CONFIG, webhooks=False) as approvals:
        grant = approvals.find_grant("northern-lights", "pii.email", data_dir.held_prints)
        assert grant is not None and grant.purpose == "episode 3 research"
        assert approvals.find_grant("northern-lights", "pii.email", ("0" * 64,)) is None
    code, out, _ = run(capsys, "approvals", "deny", data_dir.harbor_approval, "--data-dir", d,
                       "--approver", "dave", "--reason", "no consent for this")  # fmt: skip
    assert code == 0
    _, out, _ = run(capsys, "approvals", "list", "--data-dir", d)
    assert "approved by erin: cleared" in out and "denied by dave: no consent for this" in out


def test_decisions_are_recorded_in_the_audit_trail(data_dir, capsys) -> None:
    from gateway.audit import open_store

    d = str(data_dir.data_dir)
    run(capsys, "approvals", "deny", data_dir.harbor_approval, "--data-dir", d, "--approver", "dave", "--reason", "no")
    with open_store(data_dir.data_dir, replica_id="x") as store:
        recorded = [e.event for e in store.iter_events() if e.event.endpoint == "approval.denied"]
        assert [(e.user, e.approval_id) for e in recorded] == [("dave", data_dir.harbor_approval)]
        assert store.verify().ok


@pytest.mark.parametrize("fmt", ["html", "md", "csv", "json"])
def test_report_command(data_dir, capsys, fmt) -> None:
    code, out, _ = run(capsys, "report", "--config", str(ROOT / "config" / "demo"), "--data-dir",
                       str(data_dir.data_dir), "--production", "harbor-nights", "--format", fmt)  # fmt: skip
    assert code == 0 and "harbor-nights" in out
    if fmt == "json":
        report = json.loads(out)
        assert report["decisions"]["hold"] == 1 and report["sensitive_counts"]["likeness"] >= 1
        assert [a["id"] for a in report["approvals"]] == [data_dir.harbor_approval]


def test_report_command_since_and_unknown_production(data_dir, capsys) -> None:
    args = ["report", "--config", str(ROOT / "config" / "demo"), "--data-dir", str(data_dir.data_dir)]
    code, out, _ = run(capsys, *args, "--production", "harbor-nights", "--format", "json", "--since", "2999-01-01")
    assert code == 0 and json.loads(out)["requests"] == 0
    code, _, err = run(capsys, *args, "--production", "nope")
    assert code == 2 and "no production" in err
