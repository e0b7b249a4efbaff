"""`greenroom review`: the review web UI, in its own process, on loopback (default port 8700)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gateway.approvals import open_approvals
from gateway.audit import open_store
from gateway.audit.store import REPLICA_ID_ENV, default_replica_id
from gateway.config import load_config
from gateway.vault import Vault, master_key_provider

__all__ = ["register"]

DEFAULT_PORT = 8700


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("review", help="serve the review web UI (security reviewers and approvers)")
    parser.add_argument("--config", type=Path, required=True, help="configuration directory (users, productions)")
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="gateway data dir (default ./var)")
    parser.add_argument("--listen-port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--listen-host", default="127.0.0.1", help="address (default 127.0.0.1; put a TLS proxy in front for others)"
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.review import create_app

    config = load_config(args.config).config
    settings = config.settings.audit
    args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    replica = os.environ.get(REPLICA_ID_ENV) or settings.replica_id or default_replica_id(args.data_dir)
    audit = open_store(args.data_dir, settings, replica_id=replica + "/review")
    try:
        approvals = open_approvals(args.data_dir, config, audit=audit)
        try:
            vault = Vault(master_key_provider(args.data_dir), audit)
            app = create_app(config, audit, vault, approvals, args.data_dir)
            print(f"greenroom review: http://{args.listen_host}:{args.listen_port}/", flush=True)
            uvicorn.run(
                app,
                host=args.listen_host,
                port=args.listen_port,
                log_level="warning",
                server_header=False,
                proxy_headers=False,
            )
        finally:
            approvals.close()
    finally:
        audit.close()
    return 0
