#!/usr/bin/env python3
"""Blocklists from the Greenroom tool catalog, for closing the direct path to AI tools.

Workstations reach AI tools only through the gateway (PAC or HTTPS_PROXY: the gateway resolves the
names, not the workstation). So the studio resolver may refuse AI hostnames to workstations, and the
egress firewall may drop workstation traffic to the addresses behind them:

    python deploy/firewall/catalog_hosts.py --config /etc/greenroom --format rpz      > greenroom-ai.rpz
    python deploy/firewall/catalog_hosts.py --config /etc/greenroom --format unbound  > greenroom-ai.conf
    python deploy/firewall/catalog_hosts.py --config /etc/greenroom --format dnsmasq  > greenroom-ai.conf
    python deploy/firewall/catalog_hosts.py --config /etc/greenroom --format nft      > ai-hosts.nft  # resolves now

`hosts` prints the patterns one per line. `nft` resolves every exact host (wildcards cannot be
resolved) into `add element` lines for the ai_hosts_v4/v6 sets of greenroom-egress.nft; run it from
a timer, since provider addresses change (and CDN addresses are shared: prefer the DNS lists).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

Resolver = Callable[[str], Iterable[str]]


def catalog_patterns(config: Path | None) -> list[str]:
    """Every host and `*.suffix` pattern of the catalog (the configuration's tools/ included)."""
    from gateway.config import load_config, load_tool_catalog
    from gateway.tools.catalog import Catalog

    tools = load_config(config).config.tools if config else load_tool_catalog()
    return sorted(set(Catalog(tools).host_patterns))


def rpz(patterns: Iterable[str]) -> str:
    """A response-policy zone (BIND, Unbound, PowerDNS, Infoblox): NXDOMAIN for each pattern."""
    lines = [
        "; Greenroom: AI tool hosts answer NXDOMAIN to workstations (the gateway resolves them itself).",
        "$TTL 300",
        "@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 300",
        "@ IN NS localhost.",
    ]
    lines += [f"{p} CNAME ." for p in patterns]
    return "\n".join(lines) + "\n"


def unbound(patterns: Iterable[str]) -> str:
    """Unbound local-zones; exempt the gateways with an access-control-view."""
    out = ["# Greenroom: AI tool hosts answer NXDOMAIN (include in the workstations' view)."]
    for pattern in patterns:
        name = pattern.removeprefix("*.")
        out.append(f'local-zone: "{name}." always_nxdomain')
    return "\n".join(dict.fromkeys(out)) + "\n"


def dnsmasq(patterns: Iterable[str]) -> str:
    """dnsmasq: `address=/name/` answers NXDOMAIN for the name and every subdomain."""
    out = ["# Greenroom: AI tool hosts answer NXDOMAIN to workstations."]
    out += [f"address=/{p.removeprefix('*.')}/" for p in patterns]
    return "\n".join(dict.fromkeys(out)) + "\n"


def nft(patterns: Iterable[str], resolve: Resolver) -> str:
    """`add element` lines for greenroom-egress.nft's sets, from the addresses the names resolve to now."""
    v4: set[str] = set()
    v6: set[str] = set()
    skipped: list[str] = []
    for pattern in patterns:
        if pattern.startswith("*."):
            skipped.append(pattern)
            continue
        for address in resolve(pattern):
            (v6 if ":" in address else v4).add(address)
    lines = [f"# not resolvable (wildcard): {p}" for p in skipped]
    lines.append("flush set inet greenroom ai_hosts_v4")
    lines.append("flush set inet greenroom ai_hosts_v6")
    if v4:
        lines.append(f"add element inet greenroom ai_hosts_v4 {{ {', '.join(sorted(v4))} }}")
    if v6:
        lines.append(f"add element inet greenroom ai_hosts_v6 {{ {', '.join(sorted(v6))} }}")
    return "\n".join(lines) + "\n"


def system_resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return sorted({str(info[4][0]) for info in infos})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="configuration directory (default: the packaged catalog)")
    parser.add_argument("--format", choices=("hosts", "rpz", "unbound", "dnsmasq", "nft"), default="hosts")
    args = parser.parse_args(argv)
    patterns = catalog_patterns(args.config)
    if args.format == "hosts":
        sys.stdout.write("\n".join(patterns) + "\n")
    elif args.format == "rpz":
        sys.stdout.write(rpz(patterns))
    elif args.format == "unbound":
        sys.stdout.write(unbound(patterns))
    elif args.format == "dnsmasq":
        sys.stdout.write(dnsmasq(patterns))
    else:
        sys.stdout.write(nft(patterns, system_resolve))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
