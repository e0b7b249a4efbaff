"""`greenroom report`: a production's AI-use disclosure report (HTML, Markdown, CSV or JSON)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.commands.approvals import open_workflow
from gateway.commands.audit import open_audit, parse_since
from gateway.errors import ConfigError
from gateway.report import FORMATS, build_report, render

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="a production's generative-AI disclosure report")
    parser.add_argument("--config", type=Path, required=True, help="configuration directory")
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="gateway data dir (default ./var)")
    parser.add_argument("--production", required=True, help="the production id")
    parser.add_argument("--since", type=parse_since, help="only use at or after this date/time (ISO 8601)")
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    parser.add_argument("--output", type=Path, help="write to this file instead of standard output")
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, _vault, config):
        assert config is not None  # --config is required
        if config.production(args.production) is None:
            known = ", ".join(p.id for p in config.productions)
            raise ConfigError(f"no production {args.production!r} in {args.config} (known: {known})")
        events = list(store.iter_events(since=args.since, production=args.production))
    with open_workflow(args.data_dir, config, record=False) as (approvals, _audit):
        report = build_report(config, events, approvals, args.production, since=args.since)
    text = render(report, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
