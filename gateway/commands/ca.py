"""`greenroom ca path`: where the CA certificate that clients must trust is (created if needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.ca import ensure_ca

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ca", help="the interception CA")
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    path = sub.add_parser("path", help="print the path of the CA certificate (PEM), creating the CA if needed")
    path.add_argument("--data-dir", type=Path, default=Path("var"), help="data directory (default ./var)")
    path.set_defaults(handler=_path)


def _path(args: argparse.Namespace) -> int:
    print(ensure_ca(args.data_dir).resolve())
    return 0
