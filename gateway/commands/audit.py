"""`greenroom audit export|verify|show`: read, check and review the audit trail.

The store is the one the gateway writes: `<config>/gateway.yaml` (`audit:`) when `--config` is
given, env GREENROOM_AUDIT_DSN for PostgreSQL, otherwise `<data-dir>/audit.sqlite3`. Commands
that act on the trail (decrypting, key changes) are themselves recorded, under the replica id
`<gateway replica>/cli`, before they act.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.audit import AuditEvent, AuditStore, StoredEvent, new_event_id, open_store
from gateway.audit.decryption import OpenedCapture, decrypt_captures
from gateway.audit.store import AUDIT_DSN_ENV, REPLICA_ID_ENV, default_replica_id
from gateway.config import load_config
from gateway.config.models import Action, AuditSettings, GatewayConfig
from gateway.decision import Decision, Reason
from gateway.errors import AuditError
from gateway.vault import CaptureKind, Vault, master_key_provider

__all__ = ["add_store_arguments", "admin_event", "open_audit", "parse_since", "register"]

_CSV_FIELDS = (
    "id", "ts", "user", "production", "tool", "endpoint", "capability", "method", "host", "path", "mode",
    "client", "decision", "rules", "approval_id", "request_bytes", "status", "duration_ms", "response_bytes",
    "streamed", "error", "replica", "seq", "hash",
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="export, verify and review the audit trail")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    export = sub.add_parser("export", help="write events as JSON lines or CSV (never inputs)")
    add_store_arguments(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    export.add_argument("--since", type=parse_since, help="only events at or after this ISO 8601 time")
    export.add_argument("--production", help="only events of this production")
    export.set_defaults(handler=_export)

    verify = sub.add_parser("verify", help="check every hash chain and signed checkpoint; 1 if altered")
    add_store_arguments(verify)
    verify.set_defaults(handler=_verify)

    show = sub.add_parser("show", help="print one event; --decrypt adds its captured inputs (audited)")
    show.add_argument("event_id", metavar="EVENT_ID", help="the event id (evt_...)")
    add_store_arguments(show)
    show.add_argument("--decrypt", action="store_true", help="decrypt and print the captured inputs")
    show.add_argument("--user", help="who is decrypting (recorded; default: the login name)")
    show.set_defaults(handler=_show)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """`--data-dir` and `--config`, shared by the audit and keys commands."""
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="gateway data dir (default ./var)")
    parser.add_argument("--config", type=Path, help="configuration directory (gateway.yaml picks the store)")


def parse_since(value: str) -> float:
    """A `--since` argument: an ISO 8601 date (midnight UTC) or time (UTC unless it says otherwise), as a Unix time."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or time: {value!r} (e.g. 2026-01-31 or 2026-01-31T09:00Z)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


# --- opening the store ----------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> GatewayConfig | None:
    return load_config(args.config).config if args.config else None


@contextmanager
def open_audit(args: argparse.Namespace) -> Iterator[tuple[AuditStore, Vault, GatewayConfig | None]]:
    """The store, the vault and the configuration (when --config was given), closed afterwards."""
    config = _config(args)
    settings = config.settings.audit if config else AuditSettings()
    data_dir: Path = args.data_dir
    _require_store(data_dir, settings)
    gateway_replica = os.environ.get(REPLICA_ID_ENV) or settings.replica_id or default_replica_id(data_dir)
    store = open_store(data_dir, settings, replica_id=gateway_replica + "/cli")
    try:
        yield store, Vault(master_key_provider(data_dir), store), config
    finally:
        store.close()


def _require_store(data_dir: Path, settings: AuditSettings) -> None:
    uses_postgres = bool(os.environ.get(AUDIT_DSN_ENV)) or settings.store == "postgres"
    if not uses_postgres and not (data_dir / "audit.sqlite3").is_file():
        raise AuditError(f"{data_dir}: no audit store (audit.sqlite3) here; pass the gateway's --data-dir")


def admin_event(action: str, production: str, target: str, user: str | None = None) -> AuditEvent:
    """An audit event for an administrative act (decrypting, rotating or shredding keys)."""
    return AuditEvent(
        id=new_event_id(),
        ts=time.time(),
        user=user or getpass.getuser(),
        production=production,
        tool="greenroom",
        endpoint=action,
        capability="other",
        method="CLI",
        host=socket.gethostname(),
        path=f"/{action.replace('.', '/')}/{target}",
        mode="cli",
        client="cli",
        decision=Decision.of([Reason(action, Action.NOTIFY, entity=target, detector="greenroom cli")]),
    )


# --- export ---------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, _vault, _config):
        events = store.iter_events(since=args.since, production=args.production)
        if args.format == "csv":
            _write_csv(events)
        else:
            for stored in events:
                line = json.dumps(stored.as_export(), ensure_ascii=False, separators=(",", ":"))
                sys.stdout.write(line + "\n")
    return 0


def _write_csv(events: Iterator[StoredEvent]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for stored in events:
        row = stored.as_export()
        outcome = row.pop("outcome") or {}
        assert isinstance(outcome, dict)
        row["rules"] = ";".join(stored.event.decision.rules)
        for key in ("status", "duration_ms", "response_bytes", "streamed", "error"):
            row[key] = outcome.get(key, "")
        writer.writerow(row)


# --- verify ---------------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, _vault, _config):
        report = store.verify()
    for replica, count in report.unanchored:
        if count > 0:
            print(f"note: {count} newest entries of replica {replica} are not yet under a signed checkpoint")
    if report.ok:
        print(
            f"OK: {report.entries} entries in {len(report.replicas)} chain(s), "
            f"{report.checkpoints} signed checkpoint(s), all intact"
        )
        return 0
    print(f"ALTERED: first bad event: {report.first}", file=sys.stderr)
    for problem in report.problems[:50]:
        print(f"  {problem}", file=sys.stderr)
    if len(report.problems) > 50:
        print(f"  ... and {len(report.problems) - 50} more", file=sys.stderr)
    return 1


# --- show -----------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    with open_audit(args) as (store, vault, _config):
        stored = store.get(args.event_id)
        if stored is None:
            print(f"greenroom: no event {args.event_id}", file=sys.stderr)
            return 1
        out = stored.as_export()
        status = 0
        if args.decrypt:
            out["inputs"], status = _decrypt(store, vault, stored, args.user)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return status


def _decrypt(
    store: AuditStore, vault: Vault, stored: StoredEvent, user: str | None
) -> tuple[list[dict[str, object]], int]:
    """Record the decryption first (no record, no plaintext), then open each capture; 1 if any stayed closed."""
    record = admin_event("audit.decrypt", stored.event.production, stored.event.id, user)
    opened = decrypt_captures(store, vault, stored.event.id, record)
    return [_exported(o) for o in opened], 1 if any(o.error is not None for o in opened) else 0


def _exported(opened: OpenedCapture) -> dict[str, object]:
    """A capture as `show --decrypt` prints it: its text, its bytes in base64, or the error."""
    capture = opened.capture
    item: dict[str, object] = {
        "kind": capture.kind.value, "location": capture.location, "content_type": capture.content_type,
    }  # fmt: skip
    if opened.plaintext is None:
        item["error"] = str(opened.error)
    elif capture.kind is CaptureKind.TEXT:
        item["text"] = opened.plaintext.decode("utf-8", "replace")
    else:
        item["base64"] = base64.b64encode(opened.plaintext).decode("ascii")
    return item
