"""`greenroom config check|schema|hash-password|hash-token`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from gateway.config import GatewayConfig, load_config
from gateway.config.models import GatewaySettings, IntellectualProperty, Production, Talent, Tool, User
from gateway.passwords import hash_password, hash_token, new_token

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="check configuration, export its JSON Schema, hash secrets")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="validate a configuration directory; print every problem")
    check.add_argument("directory", type=Path, help="configuration directory (like config/demo)")
    check.set_defaults(handler=_check)

    schema = sub.add_parser("schema", help="print the JSON Schema of a configuration file kind, for editors")
    schema.add_argument(
        "kind", choices=sorted(_SCHEMAS), nargs="?", default="all", help="which file kind (default: all)"
    )
    schema.set_defaults(handler=_schema)

    hp = sub.add_parser("hash-password", help="hash a password for users.yaml (reads it from stdin or a prompt)")
    hp.set_defaults(handler=_hash_password)

    ht = sub.add_parser("hash-token", help="create a reverse-mode token and print it with its hash")
    ht.add_argument("--token", help="hash this token instead of creating one")
    ht.set_defaults(handler=_hash_token)


_SCHEMAS: dict[str, type[BaseModel]] = {
    "gateway": GatewaySettings,
    "users": User,
    "production": Production,
    "tool": Tool,
    "talent": Talent,
    "ip": IntellectualProperty,
    "all": GatewayConfig,
}


def _check(args: argparse.Namespace) -> int:
    loaded = load_config(args.directory)
    cfg = loaded.config
    print(
        f"{args.directory}: OK: {len(cfg.users)} users, {len(cfg.productions)} productions, "
        f"{len(cfg.tools)} tools, {len(cfg.registry.talent)} talent, {len(cfg.registry.ip)} IP "
        f"(digest {loaded.digest[:12]})"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    model = _SCHEMAS[args.kind]
    json.dump(model.model_json_schema(), sys.stdout, indent=2)
    print()
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("greenroom: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("greenroom: use at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _hash_token(args: argparse.Namespace) -> int:
    token = args.token or new_token()
    print(f"token: {token}\nhash:  {hash_token(token)}")
    return 0
