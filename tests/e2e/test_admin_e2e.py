"""The admin listener of the real gateway: health, readiness and Prometheus metrics."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e


def test_health_readiness_and_metrics(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with httpx.Client(proxy=gateway.proxy_url_for("alice", "alice-demo"), trust_env=False, timeout=30,
                      verify=ssl.create_default_context(cafile=gateway.ca_cert)) as c:
        c.post("https://api.openai.com/v1/chat/completions", json={"model": "m", "messages": []},
               headers={"Authorization": "Bearer sk"})
    admin = gateway.admin_url
    assert httpx.get(f"{admin}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{admin}/readyz", timeout=10)
    assert ready.status_code == 200
    for check in ("config ok", "store ok", "keys ok", "registry ok"):
        assert check in ready.text
    metrics = httpx.get(f"{admin}/metrics", timeout=10).text
    assert 'greenroom_requests_total{decision="allow",production="northern-lights",tool="openai-api"}' in metrics
    assert "greenroom_config_generation 1" in metrics
    assert "greenroom_request_duration_ms_bucket" in metrics


def test_admin_listener_is_not_reachable_through_the_proxy(gateway: GatewayProcess) -> None:
    """The proxy never forwards to this machine: the admin port cannot be reached through it."""
    port = gateway.admin_url.rsplit(":", 1)[1]
    with httpx.Client(proxy=gateway.proxy_url_for("alice", "alice-demo"), trust_env=False, timeout=30) as c:
        r = c.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 403
