"""`greenroom tools list`: the tool catalog as the gateway sees it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.config import load_config, load_tool_catalog

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tools", help="show the AI tool catalog")
    sub = parser.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list tools, hosts and endpoints")
    lst.add_argument("--config", type=Path, help="configuration directory (adds its tools/ overrides)")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    lst.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    tools = load_config(args.config).config.tools if args.config else load_tool_catalog()
    if args.format == "json":
        print(json.dumps([t.model_dump(mode="json") for t in tools], indent=2))
        return 0
    for tool in tools:
        print(f"{tool.id:<20} {tool.kind:<7} {', '.join(tool.hosts)}")
        for ep in tool.endpoints:
            flag = " [consumer]" if ep.consumer else (f" [blocked: {ep.block_rule}]" if ep.block_rule else "")
            print(f"    {','.join(ep.methods):<10} {ep.path:<50} {ep.capability.value}{flag}")
    return 0
