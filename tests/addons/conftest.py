"""A small configuration directory for addon tests (cheap password hashes, two productions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.passwords import hash_password, hash_token
from gateway.runtime import Runtime

USERS = f"""
users:
  - name: alice
    password_hash: "{hash_password("alice-pw", log2_n=10)}"
    productions: [doc]
    token_hashes: ["{hash_token("grt_alice")}"]
  - name: bob
    password_hash: "{hash_password("bob-pw", log2_n=10)}"
    productions: [drama]
  - name: carol
    password_hash: "{hash_password("carol-pw", log2_n=10)}"
    role: reviewer
"""

DOC = """
id: doc
name: A documentary
kind: documentary
tools:
  openai-api: {tenant: org-doc}
  anthropic-api: {tenant: 11111111-2222-4333-8444-555555555555}
  gemini-api: {}
"""

DRAMA = """
id: drama
name: A drama
kind: scripted
tools:
  openai-api: {tenant: org-drama, capabilities: [chat, embeddings]}
  elevenlabs-api: {}
"""

SETTINGS = """
limits:
  max_body_bytes: 65536
  inline_inspect_bytes: 1024
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    (root / "productions").mkdir(parents=True)
    (root / "users.yaml").write_text(USERS)
    (root / "gateway.yaml").write_text(SETTINGS)
    (root / "productions" / "doc.yaml").write_text(DOC)
    (root / "productions" / "drama.yaml").write_text(DRAMA)
    return root


@pytest.fixture
def runtime(config_dir: Path, tmp_path: Path) -> Runtime:
    return Runtime(config_dir, tmp_path / "data", detection=False)  # detectors: tests/unit/detect and e2e
