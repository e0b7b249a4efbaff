"""A seeded data dir and the review app over it, driven by Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_client import login
from review_seed import Seeded, demo_config, seed
from starlette.testclient import TestClient

from gateway.approvals import ApprovalStore, open_approvals
from gateway.audit import AuditStore, open_store
from gateway.config.models import GatewayConfig
from gateway.review import create_app
from gateway.vault import Vault, master_key_provider


@pytest.fixture(scope="session")
def config() -> GatewayConfig:
    return demo_config()


@pytest.fixture
def seeded(tmp_path: Path, config: GatewayConfig) -> Seeded:
    return seed(tmp_path / "var", config)


@pytest.fixture
def stores(seeded: Seeded, config: GatewayConfig) -> Iterator[tuple[AuditStore, ApprovalStore, Vault]]:
    audit = open_store(seeded.data_dir, config.settings.audit, replica_id="test-gateway/review")
    approvals = open_approvals(seeded.data_dir, config, audit=audit, webhooks=False)
    yield audit, approvals, Vault(master_key_provider(seeded.data_dir), audit)
    approvals.close()
    audit.close()


@pytest.fixture
def app(stores, seeded: Seeded, config: GatewayConfig):
    audit, approvals, vault = stores
    return create_app(config, audit, vault, approvals, seeded.data_dir)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8700")


@pytest.fixture
def as_user(client: TestClient):
    def _login(name: str) -> TestClient:
        response = login(client, name)
        assert response.status_code == 303, response.text
        return client

    return _login
