"""The whole written-approval loop with real parts: the official SDK through the real gateway is
held, an approver approves in the review UI in headless Chromium, the retried SDK call passes."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from browser_helpers import log_in, shot

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import REPO_ROOT, GatewayProcess
from tests.support.pki import make_pki

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HELD = [{"role": "user", "content": "Draft a release form for the interviewee, reachable at jo.doe@example.com."}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    """The fake provider, the gateway, and the review UI on the gateway's own data dir."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    root = tmp_path_factory.mktemp("stack")
    with FakeProviderProcess(pki.leaf_cert, pki.leaf_key, pki.ca_cert, log_path=root / "fake.log") as fake, \
            GatewayProcess(fake_address=fake.address, upstream_ca=pki.ca_cert, data_dir=root / "data") as gw:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREENROOM_")}
        log = (root / "review.log").open("wb")
        review = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "review", "--config", str(REPO_ROOT / "config" / "demo"),
             "--data-dir", str(gw.data_dir), "--listen-port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, review, root / "review.log")
            yield gw, url
        finally:
            review.terminate()
            review.wait(10)
            log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    raise RuntimeError(f"greenroom review did not start: {log.read_text()}")


def sdk(gw: GatewayProcess) -> openai.OpenAI:
    http_client = httpx.Client(proxy=gw.proxy_url_for("alice", "alice-demo"), trust_env=False, timeout=60,
                               verify=ssl.create_default_context(cafile=gw.ca_cert))
    return openai.OpenAI(api_key="sk-test", http_client=http_client, max_retries=0)


def test_hold_approved_in_the_ui_then_the_retry_passes(stack: tuple[GatewayProcess, str], browser) -> None:
    gateway, review_url = stack
    with pytest.raises(openai.PermissionDeniedError) as held:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=HELD)
    assert held.value.response.headers["X-Greenroom-Decision"] == "hold"
    approval_id = held.value.response.headers["X-Greenroom-Approval"]
    assert f"/approvals/{approval_id}" in str(held.value)

    context = browser.new_context(base_url=review_url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        log_in(page, "erin")  # approver of northern-lights
        page.goto(f"/approvals/{approval_id}")
        assert page.locator("#status").text_content() == "pending"
        page.fill("#approve-reason", "Release form drafting approved; address used only for the form")
        shot(page, "gateway-hold-before-approval")
        page.click("#approve")
        page.wait_for_load_state()
        assert page.locator("#status").text_content() == "approved"
        shot(page, "gateway-hold-approved")
    finally:
        context.close()

    answer = sdk(gateway).chat.completions.create(model="gpt-4o", messages=HELD)
    assert answer.choices[0].message.content
