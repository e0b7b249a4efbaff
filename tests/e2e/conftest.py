"""End-to-end fixtures: a throwaway PKI, the fake AI provider over TLS, and the real gateway.

One fake provider and one gateway per session; the fake's request records are cleared before
every test so each test sees only what its own requests delivered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _make_tests_support_importable() -> None:
    """`tests.support` must import whichever way pytest is started, and even when a third-party
    distribution in the venv ships its own top-level `tests` package (confusables 1.2 does): a
    regular package elsewhere on sys.path beats our namespace directory, so add ours to its path."""
    if str(_REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(_REPO_ROOT))
    import tests

    ours = str(_REPO_ROOT / "tests")
    path = getattr(tests, "__path__", None)
    if path is not None and ours not in list(path):
        path.append(ours)


_make_tests_support_importable()

from tests.support.fake_provider import FakeProviderProcess  # noqa: E402
from tests.support.gateway_process import GatewayProcess  # noqa: E402
from tests.support.pki import TestPKI, make_pki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("fake-pki"))


@pytest.fixture(scope="session")
def fake(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProviderProcess]:
    log = tmp_path_factory.mktemp("fake-log") / "fake.log"
    with FakeProviderProcess(pki.leaf_cert, pki.leaf_key, pki.ca_cert, log_path=log) as proc:
        yield proc


@pytest.fixture(scope="session")
def gateway(
    fake: FakeProviderProcess, pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    data_dir = tmp_path_factory.mktemp("gw") / "data"
    with GatewayProcess(fake_address=fake.address, upstream_ca=pki.ca_cert, data_dir=data_dir) as gw:
        yield gw


@pytest.fixture
def start_gateway(fake: FakeProviderProcess, pki: TestPKI, tmp_path: Path):
    """Factory for an extra, test-scoped gateway (e.g. with fault-injection environment variables)."""
    started: list[GatewayProcess] = []

    def start(env: dict[str, str] | None = None) -> GatewayProcess:
        gw = GatewayProcess(
            fake_address=fake.address,
            upstream_ca=pki.ca_cert,
            data_dir=tmp_path / f"gw{len(started)}" / "data",
            env=env,
        )
        started.append(gw)
        return gw.start()

    yield start
    for gw in started:
        gw.stop(check=True)


@pytest.fixture(autouse=True)
def _clear_fake_records(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        if "gateway" in request.fixturenames:
            request.getfixturevalue("gateway")  # set up first, so its start-up can't leave records
        request.getfixturevalue("fake").clear()
