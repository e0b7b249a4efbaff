"""The `greenroom` command.

Each group of subcommands lives in its own module under `gateway/commands/` and exposes
`register(subparsers)`; a command's handler returns the process exit code. Errors we raise on
purpose (GreenroomError) are printed as one clear message and exit 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import structlog

from gateway.errors import GreenroomError
from gateway.logsetup import configure_logging

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES = (
    "gateway.commands.serve",
    "gateway.commands.ca",
    "gateway.commands.config",
    "gateway.commands.tools",
    "gateway.commands.policy",
    "gateway.commands.audit",
    "gateway.commands.keys",
    "gateway.commands.pac",
    "gateway.commands.approvals",
    "gateway.commands.report",
    "gateway.commands.review",
    "gateway.commands.registry",
    "gateway.commands.provenance",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenroom", description="Greenroom: a secure AI sandbox gateway for film and TV productions."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = structlog.get_config()
    if args.command != "serve":  # commands print their results on stdout; logs go to stderr, warnings up
        configure_logging("warning", sys.stderr, cache=False)
    try:
        return int(args.handler(args) or 0)
    except GreenroomError as exc:
        print(f"greenroom: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `greenroom audit export | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        structlog.configure(**saved)  # in-process callers (tests, embedding) keep their own logging


if __name__ == "__main__":
    raise SystemExit(main())
