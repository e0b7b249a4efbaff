"""A seeded data dir, the review UI as a real `greenroom review` process, and a real headless
Chromium (Debian's `chromium`, driven by Playwright; `.ci/run` installs it). Screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "review"))
from browser_helpers import ARTIFACTS
from review_seed import DEMO, Seeded, seed  # a sibling helper: the same seed as the unit tests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GREENROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("review") / "var")


@pytest.fixture(scope="module")
def review_url(seeded: Seeded) -> Iterator[str]:
    """`greenroom review` on a free loopback port, until the module's tests are done."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENROOM_")}
    log = (seeded.data_dir / "review.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "review", "--config", str(DEMO), "--data-dir", str(seeded.data_dir),
         "--listen-port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"greenroom review did not start: {(seeded.data_dir / 'review.log').read_text()}")
        time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, review_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context (no cookies) per test; a screenshot of where it ended up, always."""
    context = browser.new_context(base_url=review_url, viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
