"""The pure-core boundary: nothing under gateway/ imports mitmproxy (ruff's banned-api rule, TID251)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not RUFF.exists():
        pytest.fail(f"ruff is not installed next to {sys.executable}; install the dev extras")
    return subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "--output-format", "concise", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )


def test_gateway_imports_no_mitmproxy() -> None:
    """`ruff check --select TID251 gateway` finds no banned import."""
    result = ruff("gateway")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TID251" not in result.stdout


@pytest.mark.parametrize(
    "source",
    ["import mitmproxy\n", "from mitmproxy import http\n", "import mitmproxy.http as h\n",
     "from mitmproxy.addons import proxyauth\n"],
)
def test_rule_is_active_for_gateway(source: str) -> None:
    """The same check reports a mitmproxy import in a gateway/ file, so the test above can fail."""
    result = ruff("--stdin-filename", "gateway/_probe.py", "-", stdin=source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout
    assert "gateway/_probe.py" in result.stdout


def test_rule_is_lifted_for_addons() -> None:
    """addons/ is the adapter layer: it may import mitmproxy."""
    result = ruff("--stdin-filename", "addons/_probe.py", "-", stdin="import mitmproxy\n")
    assert result.returncode == 0, result.stdout + result.stderr
