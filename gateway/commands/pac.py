"""`greenroom pac`: a proxy auto-config file that sends only AI tool hosts through the gateway."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config import load_config
from gateway.pac import build_pac
from gateway.tools.catalog import Catalog

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pac",
        help="print a PAC file routing only AI tool hosts through the gateway",
        description="Print a proxy auto-config (PAC) file generated from the tool catalog: AI tool hosts go "
        "through the gateway, everything else goes DIRECT. Serve it to workstations (browser policy, MDM, WPAD).",
    )
    parser.add_argument("--config", type=Path, required=True, help="configuration directory (its tools/ count)")
    parser.add_argument(
        "--proxy",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="gateway address as workstations reach it; repeat for failover between gateways, in order",
    )
    parser.add_argument(
        "--fallback",
        choices=("direct", "block"),
        default="block",
        help="when no gateway answers: block (default, fail closed) or go direct (pilots only)",
    )
    parser.add_argument("--output", type=Path, help="write the PAC file here instead of standard output")
    parser.set_defaults(handler=_pac)


def _pac(args: argparse.Namespace) -> int:
    catalog = Catalog(load_config(args.config).config.tools)
    pac = build_pac(catalog.host_patterns, args.proxy, args.fallback, source=f"the catalog of {args.config}")
    if args.output:
        args.output.write_text(pac, encoding="utf-8")
    else:
        sys.stdout.write(pac)
    return 0
