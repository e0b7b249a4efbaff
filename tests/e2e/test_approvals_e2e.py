"""Written approval through the real gateway: a hold names its approval request; an approver of the
production approves it; the same request, retried, passes — and different content still holds."""

from __future__ import annotations

import json
import ssl
import subprocess
from typing import Any

import httpx
import pytest

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import GatewayProcess, greenroom_bin

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-demo")


def client(gw: GatewayProcess) -> httpx.Client:
    return httpx.Client(proxy=gw.proxy_url_for(*ALICE), verify=ssl.create_default_context(cafile=gw.ca_cert),
                        trust_env=False, timeout=30, headers={"Authorization": "Bearer sk-test"})


def held_request(file_id: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise the archive interview."},
        {"type": "file", "file": {"file_id": file_id}}]}]}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([greenroom_bin(), *args], capture_output=True, text=True, timeout=60)


def test_hold_approve_retry(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with client(gateway) as c:
        first = c.post("https://api.openai.com/v1/chat/completions", json=held_request("file-archive0001"))
    assert first.status_code == 403 and first.headers["X-Greenroom-Decision"] == "hold"
    approval_id = first.headers["X-Greenroom-Approval"]
    assert approval_id in first.json()["error"]["message"]
    assert f"/approvals/{approval_id}" in first.json()["error"]["message"]

    listed = json.loads(cli("approvals", "list", "--data-dir", str(gateway.data_dir), "--format", "json").stdout)
    pending = next(a for a in listed if a["id"] == approval_id)
    assert pending["status"] == "pending" and pending["production"] == "northern-lights"
    assert pending["user"] == "alice" and pending["rule"] == "content.unknown_file"
    assert pending["event_id"] == first.headers["X-Greenroom-Event"]

    # dave approves harbor-nights, not northern-lights: refused, nothing changes
    refused = cli("approvals", "approve", approval_id, "--data-dir", str(gateway.data_dir), "--config",
                  str(gateway.config_dir), "--approver", "dave", "--reason", "not mine")
    assert refused.returncode != 0
    with client(gateway) as c:
        still = c.post("https://api.openai.com/v1/chat/completions", json=held_request("file-archive0001"))
    assert still.status_code == 403

    approved = cli("approvals", "approve", approval_id, "--data-dir", str(gateway.data_dir), "--config",
                   str(gateway.config_dir), "--approver", "erin", "--reason", "archive licensed, see memo 12")
    assert approved.returncode == 0, approved.stderr
    fake.clear()
    with client(gateway) as c:
        retried = c.post("https://api.openai.com/v1/chat/completions", json=held_request("file-archive0001"))
        other = c.post("https://api.openai.com/v1/chat/completions", json=held_request("file-archive0002"))
    assert retried.status_code == 200, retried.text
    assert len(fake.records("api.openai.com")) == 1
    assert other.status_code == 403 and other.headers["X-Greenroom-Decision"] == "hold"

    out = cli("audit", "export", "--data-dir", str(gateway.data_dir)).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    granted = [e for e in events if any(r["rule"] == "approval.granted" for r in e["reasons"])]
    assert granted and granted[-1]["decision"] == "allow"
