"""`greenroom serve`: run the gateway (see CONTRACT.md).

Its log lines (structlog's on stdout, mitmproxy's warnings on stderr) go through a queue and a writer
thread per stream (gateway.logsetup.queued_output), so a stream that blocks never stalls the proxy;
what is queued is written before the command returns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.logsetup import configure_logging, queued_output

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the gateway proxy")
    parser.add_argument("--config", type=Path, required=True, help="configuration directory (like config/demo)")
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="keys, CA, audit store (default ./var)")
    parser.add_argument("--listen-host", help="proxy listen address (default from gateway.yaml, 127.0.0.1)")
    parser.add_argument("--listen-port", type=int, help="explicit-proxy port (default from gateway.yaml, 8080)")
    parser.add_argument("--reverse-port", type=int,
                        help="reverse-mode port for base_url clients (default from gateway.yaml, 8443; -1 disables)")
    parser.add_argument("--admin-port", type=int, help="admin listener port for /healthz /readyz /metrics (0 disables)")
    parser.add_argument("--admin-host", help="admin listener address (default loopback)")
    parser.add_argument("--upstream-override", action="append", default=[], metavar="HOST=IP:PORT",
                        help="connect to IP:PORT instead of resolving HOST ('*' = every AI tool host); repeatable")
    parser.add_argument("--upstream-ca", type=Path, metavar="PEMFILE",
                        help="also trust this CA for upstream TLS (staging and tests)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from addons.runner import ServeOptions, serve  # mitmproxy lives behind the addons boundary

    with queued_output(sys.stdout) as stdout, queued_output(sys.stderr) as stderr:
        configure_logging(args.log_level, stdout, errors=stderr)
        return serve(
            ServeOptions(
                config_dir=args.config,
                data_dir=args.data_dir,
                listen_host=args.listen_host,
                listen_port=args.listen_port,
                reverse_port=None if args.reverse_port is None else args.reverse_port,
                admin_host=args.admin_host,
                admin_port=args.admin_port,
                upstream_overrides=tuple(args.upstream_override),
                upstream_ca=args.upstream_ca,
            )
        )
