"""deploy/systemd: the units parse, carry the hardening, and (where systemd is installed) verify.

`systemd-analyze verify` runs on copies whose ExecStart points at /bin/true (the real binary lives
in /opt/greenroom on a gateway host); any warning it prints, such as a misspelt key, fails the test.
`systemd-analyze security --offline` scores the exposure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
UNITS = ["greenroom.service", "greenroom@.service", "greenroom-review.service"]
GATEWAY_UNITS = ["greenroom.service", "greenroom@.service"]
DRAIN_SECONDS = 25  # addons/runner.py _DRAIN_SECONDS


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (keys may repeat), with backslash continuations joined."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|min)?", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "min" else 1)


HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "ReadWritePaths": "/var/lib/greenroom",
    "StateDirectory": "greenroom",
    "UMask": "0077",
}


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened(unit: str) -> None:
    """Dedicated user, read-only system, private tmp, no capabilities, system-service syscalls only."""
    service = parse_unit(SYSTEMD / unit)["Service"]
    assert service["User"] == ["greenroom"] and service["Group"] == ["greenroom"]
    assert "DynamicUser" not in service or service["DynamicUser"] == ["yes"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{unit}: {key}={service.get(key)}"
    assert "@system-service" in service["SystemCallFilter"]
    assert not service.get("AmbientCapabilities", [""])[0]


@pytest.mark.parametrize("unit", GATEWAY_UNITS)
def test_gateway_unit_reloads_and_drains(unit: str) -> None:
    """SIGHUP reloads; SIGTERM drains, and systemd waits longer than the drain before SIGKILL."""
    service = parse_unit(SYSTEMD / unit)["Service"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert _seconds(service["TimeoutStopSec"][0]) > DRAIN_SECONDS
    exec_start = service["ExecStart"][0]
    assert " serve --config /etc/greenroom --data-dir /var/lib/greenroom" in exec_start


def test_template_gives_each_instance_its_own_chain_and_ports() -> None:
    """Several processes per host: each its own replica id (audit chain) and ports."""
    service = parse_unit(SYSTEMD / "greenroom@.service")["Service"]
    assert "GREENROOM_REPLICA_ID=%H-%i" in service["Environment"]
    assert "/etc/greenroom/instance-%i.env" in service["EnvironmentFile"]
    assert "--listen-port ${GREENROOM_LISTEN_PORT}" in service["ExecStart"][0]
    assert "--admin-port ${GREENROOM_ADMIN_PORT}" in service["ExecStart"][0]


def test_sysusers_declares_the_service_user() -> None:
    line = (SYSTEMD / "greenroom.sysusers.conf").read_text().split("\n")
    assert any(entry.split()[:2] == ["u", "greenroom"] for entry in line if entry and not entry.startswith("#"))


@pytest.fixture(scope="module")
def verifiable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the units runnable by `systemd-analyze verify` (ExecStart → /bin/true)."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing; `make test` installs systemd"
    directory = tmp_path_factory.mktemp("units")
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text().replace("/opt/greenroom/venv/bin/greenroom", "/bin/true")
        (directory / unit.replace("@.", "@1.")).write_text(text)
    return directory


@pytest.mark.parametrize("unit", ["greenroom.service", "greenroom@1.service", "greenroom-review.service"])
def test_systemd_analyze_verify(verifiable: Path, unit: str) -> None:
    """No errors and no warnings (systemd only warns about unknown keys, so any output fails)."""
    result = subprocess.run(
        ["systemd-analyze", "verify", unit], cwd=verifiable, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", ["greenroom.service", "greenroom-review.service"])
def test_systemd_analyze_security_exposure(verifiable: Path, unit: str) -> None:
    """`systemd-analyze security` rates the unit's exposure low (0 best, 10 worst)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", unit],
        cwd=verifiable, capture_output=True, text=True, timeout=60, check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match is not None, f"systemd-analyze could not score the unit offline: {result.stderr.strip()[:200]}"
    assert float(match[1]) <= 2.0, result.stdout
