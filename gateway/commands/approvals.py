"""`greenroom approvals list|approve|deny|request`: the written-approval workflow from the command line.

The store is the gateway's (see gateway/approvals.py: `<data-dir>/approvals.sqlite3`, or the audit
store's PostgreSQL). With `--config`, the production's current approvers decide; without it, the
approvers recorded when the request was held. Decisions are also recorded in the audit trail when
the data dir has one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.approvals import Approval, ApprovalError, ApprovalStatus, ApprovalStore, open_approvals
from gateway.audit import AuditStore, open_store
from gateway.audit.store import AUDIT_DSN_ENV, REPLICA_ID_ENV, default_replica_id
from gateway.commands.audit import add_store_arguments
from gateway.config import load_config
from gateway.config.models import AuditSettings, GatewayConfig

__all__ = ["open_workflow", "parse_expiry", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("approvals", help="list, approve and deny held requests (written approval)")
    sub = parser.add_subparsers(dest="approvals_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list approval requests, newest first")
    add_store_arguments(listing)
    listing.add_argument("--production", help="only this production")
    listing.add_argument("--status", choices=[s.value for s in ApprovalStatus], help="only this status")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    listing.set_defaults(handler=_list)

    for action, help_text in (("approve", "grant a held request in writing"), ("deny", "refuse it in writing")):
        decide = sub.add_parser(action, help=help_text)
        decide.add_argument("approval_id", metavar="APPROVAL_ID", help="the approval id (apr_...)")
        add_store_arguments(decide)
        decide.add_argument("--approver", required=True, help="who decides: an approver of the hold's production")
        decide.add_argument("--reason", required=True, help="the written reason (recorded, and in the report)")
        if action == "approve":
            decide.add_argument(
                "--expires", type=parse_expiry, help="end of the grant: ISO 8601 time or date, or a duration (7d, 12h)"
            )
        decide.set_defaults(handler=_decide, action=action)

    request = sub.add_parser("request", help="state the purpose of a held request")
    request.add_argument("approval_id", metavar="APPROVAL_ID", help="the approval id from the 403 message")
    add_store_arguments(request)
    request.add_argument("--purpose", required=True, help="what the request is for (shown to approvers)")
    request.add_argument("--user", help="the requester (default: the user whose request was held)")
    request.set_defaults(handler=_request)


def parse_expiry(value: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m` from now, or an ISO 8601 date (end of that day, UTC) or time."""
    current = time.time() if now is None else now
    if match := re.fullmatch(r"(\d+)([dhm])", value.strip()):
        return current + int(match[1]) * {"d": 86400, "h": 3600, "m": 60}[match[2]]
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            day = dt.date.fromisoformat(value.strip())
            return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC).timestamp()
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time, date or duration: {value!r} (e.g. 2026-12-31, 7d)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@contextmanager
def open_workflow(
    data_dir: Path, config: GatewayConfig | None, replica_suffix: str = "cli", *, record: bool = True
) -> Iterator[tuple[ApprovalStore, AuditStore | None]]:
    """The approval store, with the audit store (when the data dir has one) to record decisions in."""
    settings = config.settings.audit if config else AuditSettings()
    audit: AuditStore | None = None
    uses_postgres = bool(os.environ.get(AUDIT_DSN_ENV)) or settings.store == "postgres"
    if record and (uses_postgres or (data_dir / "audit.sqlite3").is_file()):
        replica = os.environ.get(REPLICA_ID_ENV) or settings.replica_id or default_replica_id(data_dir)
        audit = open_store(data_dir, settings, replica_id=f"{replica}/{replica_suffix}")
    try:
        approvals = open_approvals(data_dir, config, audit=audit)
    except BaseException:
        if audit is not None:
            audit.close()
        raise
    try:
        yield approvals, audit
    finally:
        approvals.close()
        if audit is not None:
            with contextlib.suppress(Exception):
                audit.close()


def _config(args: argparse.Namespace) -> GatewayConfig | None:
    return load_config(args.config).config if args.config else None


def _list(args: argparse.Namespace) -> int:
    with open_workflow(args.data_dir, _config(args), record=False) as (approvals, _audit):
        found = approvals.list(production=args.production, status=args.status)
    if args.format == "json":
        json.dump([a.as_dict() for a in found], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    if not found:
        print("no approval requests")
        return 0
    for a in found:
        print(_line(a))
    return 0


def _line(a: Approval) -> str:
    created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(a.created))
    line = f"{a.id}  {a.status.value:<8}  {created}  {a.production}  {a.user}  {a.rule}  {a.tool}  event {a.event_id}"
    if a.purpose:
        line += f"\n    purpose: {a.purpose}"
    if a.decided_by:
        line += f"\n    {a.status.value} by {a.decided_by}: {a.reason}"
        if a.expires:
            line += f" (until {time.strftime('%Y-%m-%d %H:%M', time.gmtime(a.expires))} UTC)"
    return line


def _decide(args: argparse.Namespace) -> int:
    with open_workflow(args.data_dir, _config(args)) as (approvals, _audit):
        try:
            if args.action == "approve":
                decided = approvals.approve(args.approval_id, args.approver, args.reason, args.expires)
            else:
                decided = approvals.deny(args.approval_id, args.approver, args.reason)
        except ApprovalError as exc:
            print(f"greenroom: {exc}", file=sys.stderr)
            return 1
    print(f"{decided.id}: {decided.status.value} by {decided.decided_by}")
    return 0


def _request(args: argparse.Namespace) -> int:
    with open_workflow(args.data_dir, _config(args)) as (approvals, _audit):
        try:
            user = args.user or approvals.get(args.approval_id).user
            updated = approvals.set_purpose(args.approval_id, user, args.purpose)
        except ApprovalError as exc:
            print(f"greenroom: {exc}", file=sys.stderr)
            return 1
    print(f"{updated.id}: purpose recorded; waiting for an approver of {updated.production}")
    return 0
