"""References through the real gateway: remote URLs are fetched and inspected (or refused), provider
file ids are checked against what the production uploaded through the gateway."""

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
BOB = ("bob", "bob-demo")


def client(gw: GatewayProcess, user: tuple[str, str]) -> httpx.Client:
    return httpx.Client(proxy=gw.proxy_url_for(*user), verify=ssl.create_default_context(cafile=gw.ca_cert),
                        trust_env=False, timeout=30, headers={"Authorization": "Bearer sk-test"})


def chat_with_image(url: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe this."}, {"type": "image_url", "image_url": {"url": url}}]}]}


def chat_with_file(file_id: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise."}, {"type": "file", "file": {"file_id": file_id}}]}]}


def export(gw: GatewayProcess) -> list[dict[str, Any]]:
    out = subprocess.run([greenroom_bin(), "audit", "export", "--data-dir", str(gw.data_dir)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("path", ["/media/landscape.png", "/media/redirect"])
def test_remote_image_is_fetched_and_inspected(gateway: GatewayProcess, fake: FakeProviderProcess, path: str) -> None:
    """An image URL the provider would download is fetched by the gateway first and its bytes are
    captured (encrypted) with the event, like an upload."""
    with client(gateway, ALICE) as c:
        r = c.post("https://api.openai.com/v1/chat/completions", json=chat_with_image(f"https://www.example.org{path}"))
    assert r.status_code == 200, r.text
    assert any(rec.path == "/media/landscape.png" for rec in fake.records("www.example.org"))
    event = next(e for e in reversed(export(gateway)) if e.get("endpoint") == "chat.completions")
    assert any(c["location"].startswith("ref:") and c["content_type"] == "image/png" for c in event["captures"])


def test_remote_registered_poster_is_blocked(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """A link to a registered third-party poster is fetched, recognised and refused (ip.image)."""
    with client(gateway, ALICE) as c:
        r = c.post("https://api.openai.com/v1/chat/completions",
                   json=chat_with_image("https://www.example.org/media/poster.png"))
    assert r.status_code == 403
    assert "ip.image" in r.json()["error"]["message"]
    assert not fake.records("api.openai.com")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "http://localhost/x.png", "http://169.254.169.254/latest",
                                 "http://10.0.0.5/x.png", "gs://bucket/object.png"])
def test_references_the_gateway_cannot_fetch_are_refused(gateway: GatewayProcess, fake: FakeProviderProcess,
                                                          url: str) -> None:
    """A reference into this machine or a private network (SSRF), or one that cannot be fetched, is refused."""
    with client(gateway, ALICE) as c:
        r = c.post("https://api.openai.com/v1/chat/completions", json=chat_with_image(url))
    assert r.status_code == 403
    assert "content.uninspectable" in r.json()["error"]["message"]
    assert not fake.records("api.openai.com")


def test_file_uploaded_through_the_gateway_can_be_referenced(
    gateway: GatewayProcess, fake: FakeProviderProcess
) -> None:
    """A file id returned for an upload through the gateway is known; referencing it passes."""
    with client(gateway, ALICE) as c:
        up = c.post("https://api.openai.com/v1/files", files={"file": ("notes.txt", b"interview notes", "text/plain")},
                    data={"purpose": "user_data"})
        assert up.status_code == 200, up.text
        file_id = up.json()["id"]
        r = c.post("https://api.openai.com/v1/chat/completions", json=chat_with_file(file_id))
    assert r.status_code == 200, r.text


def test_unknown_file_id_is_held(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """A file id never uploaded through the gateway goes to the production's unknown_file_ids action
    (hold by default): the request is stopped until written approval."""
    with client(gateway, ALICE) as c:
        r = c.post("https://api.openai.com/v1/chat/completions", json=chat_with_file("file-abc123def456"))
    assert r.status_code == 403
    assert r.headers["X-Greenroom-Decision"] == "hold"
    assert "content.unknown_file" in r.json()["error"]["message"]
    assert not fake.records("api.openai.com")


def test_another_productions_file_is_blocked(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """bob cannot reference a file that alice's production uploaded."""
    with client(gateway, ALICE) as c:
        file_id = c.post("https://api.openai.com/v1/files", files={"file": ("n.txt", b"x", "text/plain")},
                         data={"purpose": "user_data"}).json()["id"]
    with client(gateway, BOB) as c:
        r = c.post("https://api.openai.com/v1/chat/completions", json=chat_with_file(file_id))
    assert r.status_code == 403
    assert "content.foreign_file" in r.json()["error"]["message"]
