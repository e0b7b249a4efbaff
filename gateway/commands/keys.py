"""`greenroom keys rotate|shred|purge`: the lifecycle of production keys and captured inputs.

Each act is recorded in the audit trail before it is carried out.
"""

from __future__ import annotations

import argparse
import sys

from gateway.audit import Outcome
from gateway.config.models import GatewayConfig
from gateway.errors import ConfigError

from .audit import add_store_arguments, admin_event, open_audit

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="rotate or shred a production's key, purge old captures")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    rotate = sub.add_parser("rotate", help="new key version; rewrap every capture key (data stays as it is)")
    rotate.add_argument("--production", required=True, help="production id")
    rotate.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait this long for running gateways to switch to the new key before the old one is destroyed "
        "(default: their key cache lifetime; 0 when no gateway is running)",
    )
    add_store_arguments(rotate)
    rotate.set_defaults(handler=_rotate)

    shred = sub.add_parser("shred", help="destroy a production's key: its captures become unreadable forever")
    shred.add_argument("--production", required=True, help="production id")
    shred.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_store_arguments(shred)
    shred.set_defaults(handler=_shred)

    purge = sub.add_parser("purge", help="delete captures older than each production's retention_days")
    purge.add_argument("--production", help="only this production")
    purge.add_argument("--retention-days", type=int, help="override (default: retention_days from --config)")
    add_store_arguments(purge)
    purge.set_defaults(handler=_purge)


def _rotate(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, vault, _config):
        event = admin_event("keys.rotate", args.production, args.production)
        store.record(event)
        count = vault.rotate(args.production, settle_seconds=args.settle)
        store.complete(event, Outcome(200, 0.0, 0, False))
    print(f"{args.production}: new key version; {count} capture key(s) rewrapped; older versions destroyed")
    return 0


def _shred(args: argparse.Namespace) -> int:
    if not args.yes and not _confirm(args.production):
        print("greenroom: not confirmed; nothing was changed", file=sys.stderr)
        return 1
    with open_audit(args) as (store, vault, _config):
        event = admin_event("keys.shred", args.production, args.production)
        store.record(event)
        destroyed = vault.shred(args.production)
        store.complete(event, Outcome(200, 0.0, 0, False))
    print(f"{args.production}: {destroyed} key version(s) destroyed; its captures can no longer be read")
    return 0


def _confirm(production: str) -> bool:
    if not sys.stdin.isatty():
        print("greenroom: refusing to shred without a terminal to confirm; pass --yes", file=sys.stderr)
        return False
    print(f"This destroys the key of {production!r}: its captured inputs can never be read again.")
    answer = input(f"Type the production id ({production}) to confirm: ")
    return answer.strip() == production


def _purge(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, vault, config):
        plan = _retention_plan(args, config)
        for production, days in plan:
            event = admin_event("keys.purge", production or "*", f"{days}d")
            store.record(event)
            deleted = vault.purge(days, production)
            store.complete(event, Outcome(200, 0.0, 0, False))
            print(f"{production or 'all productions'}: {deleted} capture(s) older than {days} days deleted")
    return 0


def _retention_plan(args: argparse.Namespace, config: GatewayConfig | None) -> list[tuple[str | None, int]]:
    if args.retention_days is not None:
        return [(args.production, args.retention_days)]
    if config is None:
        raise ConfigError("pass --retention-days, or --config to use each production's retention_days")
    return [(p.id, p.retention_days) for p in config.productions if args.production in (None, p.id)]
