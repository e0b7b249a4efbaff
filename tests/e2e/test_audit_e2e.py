"""The audit trail through the real gateway: nothing in clear on disk, nothing answered lost to a
kill -9, and several replicas sharing one PostgreSQL store, each chain verifying."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import GatewayProcess, greenroom_bin
from tests.support.pki import TestPKI

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-demo")
PG = "postgresql://postgres@127.0.0.1:5432/test"


def client(gw: GatewayProcess, user: tuple[str, str] = ALICE) -> httpx.Client:
    return httpx.Client(proxy=gw.proxy_url_for(*user), verify=ssl.create_default_context(cafile=gw.ca_cert),
                        trust_env=False, timeout=30, headers={"Authorization": "Bearer sk-test"})


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([greenroom_bin(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def export(data_dir: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out = cli("audit", "export", "--data-dir", str(data_dir), env=env)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def canary_png(tag: bytes) -> bytes:
    image = Image.frombytes("RGB", (48, 48), (tag * (48 * 48 * 3 // len(tag) + 1))[: 48 * 48 * 3])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {needle[:16]!r}" for needle in needles if needle in data]
    return hits


def test_no_plaintext_canary_on_disk_or_in_logs(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    """Canary text and a canary image, allowed and blocked, are captured (decryptable by the CLI) yet
    appear nowhere in clear under the data dir or in the gateway's log."""
    text = f"CANARY-{secrets.token_hex(8)}"
    image = canary_png(secrets.token_bytes(16))
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": data_url}}]}]}
    with client(gateway) as c:
        allowed = c.post("https://api.openai.com/v1/chat/completions", json=body)
        blocked = c.post("https://api.anthropic.com/v1/messages", json=body,
                         headers={"anthropic-version": "2023-06-01"}, auth=None)
    assert allowed.status_code == 200
    event_id = allowed.headers["X-Greenroom-Event"]
    shown = cli("audit", "show", event_id, "--data-dir", str(gateway.data_dir), "--decrypt")
    assert text in shown.stdout  # captured, and readable with the key
    time.sleep(1.0)  # background outcome writes
    needles = [text.encode(), image, base64.b64encode(image), image[40:120]]
    assert files_containing(gateway.data_dir, needles) == []
    assert all(needle not in gateway.log_path.read_bytes() for needle in needles)
    assert blocked.status_code in (200, 403)


def _load(gw: GatewayProcess, seconds: float, answered: list[str], stop: threading.Event, workers: int = 4) -> None:
    def work() -> None:
        with client(gw) as c:
            while not stop.is_set():
                try:
                    r = c.post("https://api.openai.com/v1/chat/completions",
                               json={"model": "m", "messages": [{"role": "user", "content": uuid.uuid4().hex}]})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    answered.append(r.headers["X-Greenroom-Event"])

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)


def test_kill_9_under_load_loses_nothing_answered(fake: FakeProviderProcess, pki: TestPKI, tmp_path: Path) -> None:
    """kill -9 during concurrent load, restart on the same data dir: every answered request is in the
    store and every chain verifies."""
    data_dir = tmp_path / "data"
    gw = GatewayProcess(fake_address=fake.address, upstream_ca=pki.ca_cert, data_dir=data_dir).start()
    answered: list[str] = []
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(gw, 30.0, answered, stop))
    loader.start()
    deadline = time.monotonic() + 30
    while len(answered) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    gw.proc.kill()  # SIGKILL: no drain, no final checkpoint
    gw.proc.wait(10)
    stop.set()
    loader.join(60)
    assert len(answered) >= 20
    restarted = GatewayProcess(fake_address=fake.address, upstream_ca=pki.ca_cert, data_dir=data_dir).start()
    try:
        with client(restarted) as c:
            assert c.post("https://api.openai.com/v1/chat/completions",
                          json={"model": "m", "messages": []}).status_code == 200
    finally:
        restarted.stop()
    verified = cli("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    stored = {e["id"] for e in export(data_dir)}
    assert set(answered) <= stored


@pytest.fixture
def pg_schema() -> Any:
    schema = f"gr_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{PG}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_three_replicas_share_postgresql(fake: FakeProviderProcess, pki: TestPKI, tmp_path: Path,
                                         pg_schema: str) -> None:
    """Three gateway processes on one PostgreSQL audit store: concurrent clients through all three; every
    replica's chain verifies and the events equal the answered requests."""
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"GREENROOM_AUDIT_DSN": pg_schema, "GREENROOM_MASTER_KEY": master}
    replicas = []
    try:
        for number in range(3):
            replica_env = {**env, "GREENROOM_REPLICA_ID": f"gw-{number}"}
            gw = GatewayProcess(fake_address=fake.address, upstream_ca=pki.ca_cert,
                                data_dir=tmp_path / f"gw{number}" / "data", env=replica_env)
            replicas.append(gw.start())
        answered: list[str] = []
        stop = threading.Event()
        loaders = [threading.Thread(target=_load, args=(gw, 6.0, answered, stop, 2)) for gw in replicas]
        for loader in loaders:
            loader.start()
        for loader in loaders:
            loader.join(60)
    finally:
        for gw in replicas:
            gw.stop()
    assert len(answered) >= 30
    verified = cli("audit", "verify", "--data-dir", str(tmp_path / "gw0" / "data"), env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    events = [e for e in export(tmp_path / "gw0" / "data", env=env) if e["endpoint"] == "chat.completions"]
    assert sorted(e["id"] for e in events) == sorted(answered)
    assert {e["replica"] for e in events} == {"gw-0", "gw-1", "gw-2"}
