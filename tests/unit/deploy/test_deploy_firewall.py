"""deploy/firewall: blocklists generated from the catalog, and a ruleset that nftables accepts."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from gateway.config import load_tool_catalog
from gateway.tools.catalog import Catalog

FIREWALL = Path(__file__).resolve().parents[3] / "deploy" / "firewall"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalog_hosts", FIREWALL / "catalog_hosts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalog_hosts = _load()
PATTERNS = catalog_hosts.catalog_patterns(None)


def fake_resolve(host: str) -> list[str]:
    """Deterministic addresses: no DNS in tests."""
    return {"api.openai.com": ["104.18.6.192", "2606:4700::6812:6c0"], "claude.ai": ["160.79.104.10"]}.get(host, [])


def test_patterns_are_the_catalog() -> None:
    assert sorted(set(Catalog(load_tool_catalog()).host_patterns)) == PATTERNS
    assert "api.openai.com" in PATTERNS and "*.oaiusercontent.com" in PATTERNS


def test_rpz_blocks_every_pattern() -> None:
    """Every catalog host and wildcard answers NXDOMAIN (CNAME .) in the zone."""
    zone = catalog_hosts.rpz(PATTERNS)
    records = {line.split()[0] for line in zone.splitlines() if line.endswith("CNAME .")}
    assert records == set(PATTERNS)
    assert "$TTL" in zone and " SOA " in zone


@pytest.mark.parametrize(
    ("fmt", "exact", "wildcard"),
    [
        (
            "unbound",
            'local-zone: "api.openai.com." always_nxdomain',
            'local-zone: "oaiusercontent.com." always_nxdomain',
        ),
        ("dnsmasq", "address=/api.openai.com/", "address=/oaiusercontent.com/"),
    ],
)
def test_resolver_lists(fmt: str, exact: str, wildcard: str) -> None:
    text = getattr(catalog_hosts, fmt)(PATTERNS)
    lines = text.splitlines()
    assert exact in lines and wildcard in lines
    assert len(lines) == len(set(lines))


def test_nft_elements_split_families_and_skip_wildcards() -> None:
    text = catalog_hosts.nft(PATTERNS, fake_resolve)
    assert "add element inet greenroom ai_hosts_v4 { 104.18.6.192, 160.79.104.10 }" in text
    assert "add element inet greenroom ai_hosts_v6 { 2606:4700::6812:6c0 }" in text
    assert "# not resolvable (wildcard): *.oaiusercontent.com" in text


def test_command_prints_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalog_hosts.main(["--format", "hosts"]) == 0
    assert capsys.readouterr().out.split() == PATTERNS


def _nft_works() -> bool:
    nft = shutil.which("nft")
    if nft is None:
        return False
    probe = subprocess.run([nft, "-c", "add table inet probe"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


def test_nftables_accepts_ruleset_and_generated_elements(tmp_path: Path) -> None:
    """`nft -c` (check only, nothing applied) accepts the ruleset followed by a generated refresh.

    `make test` installs nftables (scripts/system-deps.sh); a machine that cannot run it fails here."""
    assert _nft_works(), "nft is missing or cannot check rulesets; run scripts/system-deps.sh as root"
    ruleset = tmp_path / "all.nft"
    ruleset.write_text((FIREWALL / "greenroom-egress.nft").read_text() + catalog_hosts.nft(PATTERNS, fake_resolve))
    result = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def test_ruleset_closes_each_bypass() -> None:
    """QUIC, foreign DNS, DoT, DoH and direct AI egress each have a reject rule (IPv4 and IPv6)."""
    text = (FIREWALL / "greenroom-egress.nft").read_text()
    for family in ("ip saddr @workstations_v4", "ip6 saddr @workstations_v6"):
        rules = [line.strip() for line in text.splitlines() if line.strip().startswith(family)]
        assert any("udp dport { 80, 443, 853 }" in r and "reject" in r for r in rules)
        assert any("th dport 53" in r and "!= @resolvers_v" in r for r in rules)
        assert any("tcp dport 853" in r for r in rules)
        assert any("@doh_v" in r and "tcp dport 443" in r for r in rules)
        assert any("@ai_hosts_v" in r for r in rules)
    assert text.index("ip saddr @gateways_v4 accept") < text.index("@ai_hosts_v4 tcp dport")


def test_iptables_script_matches_the_nft_doh_list() -> None:
    """The iptables variant blocks the same IPv4 DoH resolvers (single addresses) and parses."""
    nft = (FIREWALL / "greenroom-egress.nft").read_text()
    doh_block = nft[nft.index("set doh_v4"):nft.index("set doh_v6")]
    nft_singles = {a for a in re.findall(r"\b(\d+\.\d+\.\d+\.\d+)\b(?!/)", doh_block)}
    script = (FIREWALL / "greenroom-iptables.sh").read_text()
    iptables_doh = set(re.search(r'DOH="([^"]+)"', script)[1].split())  # type: ignore[index]
    assert iptables_doh <= nft_singles
    assert {"1.1.1.1", "8.8.8.8", "9.9.9.9"} <= iptables_doh
    result = subprocess.run(["sh", "-n", str(FIREWALL / "greenroom-iptables.sh")], capture_output=True, check=False)
    assert result.returncode == 0
