"""`greenroom provenance scan`: find AI outputs recorded by the gateway in a folder of deliverables.

    greenroom provenance scan PATH... --data-dir DIR [--config DIR] [--production ID]
                              [--format text|json|html] [--video-interval SECONDS]

Walks files and folders; fingerprints every image, audio and video file (frames sampled every
`--video-interval` seconds, the soundtrack fingerprinted) and looks each one up in the output
ledger (gateway.provenance): exact copies by SHA-256, near copies (re-encoded, resized, cropped,
colour-graded, mirrored) by PDQ and the audio fingerprint.

Exit status, for delivery pipelines: 0 nothing matches a recorded output; 1 at least one file
matches (each listed with its event id); 2 an error, or a media file that could not be checked
(fail closed: a file we cannot read is not a file we cleared). Files that are not media (sidecars,
documents) are counted and skipped. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.audit.store import AUDIT_DSN_ENV
from gateway.commands.audit import add_store_arguments
from gateway.config import load_config
from gateway.config.models import AuditSettings
from gateway.content.limits import ContentLimits
from gateway.errors import AuditError, ConfigError, InspectionError

if TYPE_CHECKING:  # the matching stack (OpenCV, faiss, PyAV) loads only when a scan runs
    from gateway.provenance import LedgerView, OutputMatch

__all__ = ["FileResult", "ScanReport", "register", "scan"]

FORMATS = ("text", "json", "html")
_GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    matches: tuple[OutputMatch, ...] = ()
    problem: str = ""
    """why a media file could not be checked (empty when it was)."""


@dataclass(slots=True)
class ScanReport:
    files: int = 0
    media: int = 0
    matched: list[FileResult] = field(default_factory=list)
    unchecked: list[FileResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.matched else 2 if self.unchecked else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "media": self.media,
            "matches": [
                {"path": r.path, **m.as_dict(), "date": _iso(m.record.ts)} for r in self.matched for m in r.matches
            ],
            "unchecked": [{"path": r.path, "problem": r.problem} for r in self.unchecked],
        }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("provenance", help="find AI outputs recorded by the gateway in deliverables")
    sub = parser.add_subparsers(dest="provenance_command", metavar="ACTION", required=True)
    scan_parser = sub.add_parser(
        "scan", help="report files matching a recorded AI output (exit 1 if any, 0 if none, 2 if unchecked)"
    )
    scan_parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders to scan")
    add_store_arguments(scan_parser)
    scan_parser.add_argument("--production", help="only outputs recorded for this production")
    scan_parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    scan_parser.add_argument(
        "--video-interval", type=float, default=1.0, metavar="SECONDS",
        help="seconds between sampled video frames (default 1)",
    )  # fmt: skip
    scan_parser.set_defaults(handler=_scan)


def _scan(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
    if args.video_interval <= 0:
        raise ConfigError("--video-interval must be positive")
    settings = load_config(args.config).config.settings.audit if args.config else AuditSettings()
    _require_store(args.data_dir, settings)
    from gateway.provenance import OutputLedger

    with OutputLedger.open(args.data_dir, settings) as ledger:
        view = ledger.view(args.production)
    limits = ContentLimits(
        max_decoded_bytes=4 * _GIB,
        max_audio_seconds=6 * 3600.0,
        max_frames=200_000,
        video_sample_seconds=args.video_interval,
    )
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    report = scan(args.paths, view, limits, progress)
    _write(report, args.format, sys.stdout)
    return report.exit_code


def scan(
    paths: list[Path], view: LedgerView, limits: ContentLimits | None = None, progress: _Progress | None = None
) -> ScanReport:
    """Fingerprint every media file under `paths` and look it up in `view`."""
    from gateway.fingerprint import fingerprint_file

    files = list(_walk(paths))
    report = ScanReport(files=len(files))
    for number, path in enumerate(files):
        if progress:
            progress.update(number, len(files), path)
        try:
            fingerprint = fingerprint_file(path, limits)
        except InspectionError as exc:
            report.media += 1
            report.unchecked.append(FileResult(str(path), problem=str(exc) or type(exc).__name__))
            continue
        if fingerprint is None:
            continue
        report.media += 1
        matches = view.match(fingerprint)
        if matches:
            report.matched.append(FileResult(str(path), tuple(matches)))
    if progress:
        progress.done(len(files))
    return report


def _walk(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                candidate = Path(root) / name
                if candidate.is_file():
                    yield candidate


def _require_store(data_dir: Path, settings: AuditSettings) -> None:
    uses_postgres = bool(os.environ.get(AUDIT_DSN_ENV)) or settings.store == "postgres"
    if not uses_postgres and not (data_dir / "audit.sqlite3").is_file():
        raise AuditError(f"{data_dir}: no audit store (audit.sqlite3) here; pass the gateway's --data-dir")


class _Progress:
    """A one-line progress bar on a terminal: `[#####.....]  12/340  path`."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width

    def update(self, done: int, total: int, path: Path) -> None:
        filled = self._width * done // max(total, 1)
        name = str(path)
        if len(name) > 40:
            name = "…" + name[-39:]
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r[{bar}] {done}/{total} {name}\x1b[K")
        self._stream.flush()

    def done(self, total: int) -> None:
        self._stream.write(f"\r[{'#' * self._width}] {total}/{total}\x1b[K\n")
        self._stream.flush()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(match: OutputMatch) -> str:
    record = match.record
    if match.measure == "sha256":
        how = "exact copy (same bytes)"
    elif match.measure == "pdq":
        how = f"near copy (image, {match.distance:.0f}/256 bits; {match.detail})"
    else:
        how = f"near copy (audio; {match.detail})"
    return (
        f"{how}: event {record.event_id}, tool {record.tool}, user {record.user}, "
        f"production {record.production}, {_iso(record.ts)}, {record.kind} output #{record.index}"
    )


def _write(report: ScanReport, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return
    if fmt == "html":
        out.write(_html(report))
        return
    for result in report.matched:
        out.write(f"MATCH {result.path}\n")
        for match in result.matches:
            out.write(f"  {_describe(match)}\n")
    for result in report.unchecked:
        out.write(f"UNCHECKED {result.path}: {result.problem}\n")
    out.write(
        f"scanned {report.files} files ({report.media} media): {len(report.matched)} matching an AI output, "
        f"{len(report.unchecked)} could not be checked\n"
    )


def _html(report: ScanReport) -> str:
    rows = []
    for result in report.matched:
        for match in result.matches:
            record = match.record
            cells = (
                result.path, record.event_id, record.tool, record.user, record.production, _iso(record.ts),
                match.match, f"{match.measure} {match.distance:g}", match.detail,
            )  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    unchecked = "".join(
        f"<li>{html.escape(r.path)}: {html.escape(r.problem)}</li>" for r in report.unchecked
    )
    status = "AI outputs found" if report.matched else "unchecked files" if report.unchecked else "no AI outputs"
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Greenroom provenance scan</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px}</style></head><body>"
        f"<h1>Provenance scan: {html.escape(status)}</h1>"
        f"<p>{report.files} files scanned, {report.media} media, {len(report.matched)} matching a recorded AI "
        f"output, {len(report.unchecked)} could not be checked.</p>"
        "<table><thead><tr><th>file</th><th>event</th><th>tool</th><th>user</th><th>production</th><th>date</th>"
        "<th>match</th><th>distance</th><th>detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (f"<h2>Could not be checked</h2><ul>{unchecked}</ul>" if unchecked else "")
        + "</body></html>\n"
    )
