"""References: what the provider would fetch or look up instead of receiving it in the request.

A remote URL in `image_url.url` or `fileData.fileUri` is content the provider downloads itself, so a
check of the request alone would miss it. Greenroom fetches it first (bounded in size and time,
never to this machine or private networks) and inspects the bytes like an upload; or refuses it, per
production. Provider file ids are checked against what was uploaded through the gateway: the
`FileLedger` remembers each id with the production that uploaded it; an id uploaded by another
production is refused, an id never seen goes to the production's `unknown_file_ids` action.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from gateway.config.models import Action, Production, Tool
from gateway.content import ContentLimits, RequestContent, extract_inputs
from gateway.content.embedded import find_references
from gateway.content.inputs import Inputs, Reference
from gateway.decision import Reason
from gateway.errors import TooLargeError, UninspectableError

__all__ = ["FetchSettings", "FileLedger", "FileRecord", "RemoteFetcher", "reference_reasons", "uploaded_file_ids"]

_MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class FetchSettings:
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 5.0
    overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """host → (ip, port) for staging and tests (the same as --upstream-override); trusted as configured."""
    ca_file: str | None = None
    """CA bundle for TLS verification (the gateway's upstream bundle)."""


class RemoteFetcher:
    """Downloads what a request references, as the provider would, with hard bounds and SSRF guards."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._context = ssl.create_default_context(cafile=settings.ca_file)

    def fetch(self, url: str, location: str, limits: ContentLimits) -> Inputs:
        """What the referenced file carries, decoded like an upload; raise the gateway's errors on failure."""
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            status, headers, body = self._get(current, location)
            if status in (301, 302, 303, 307, 308) and headers.get("location"):
                current = urljoin(current, headers["location"])
                continue
            if status != 200:
                raise UninspectableError(f"the referenced URL answered {status}", location=location)
            content = RequestContent(method="GET", path=f"/ref:{location}", body=body,
                                     content_type=_binary_type(headers.get("content-type", "")))
            return _relocated(extract_inputs(content, limits), f"ref:{location}")
        raise UninspectableError("the referenced URL redirects too often", location=location)

    def _get(self, url: str, location: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UninspectableError(f"references with scheme {parts.scheme!r} cannot be inspected", location=location)
        host = parts.hostname.lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._address(host, port, location)
        connection = _pinned_connection(parts.scheme, host, port, address, self._context, self.settings.timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            connection.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "Greenroom-inspector/1",
                                                     "Accept-Encoding": "identity"})
            response = connection.getresponse()
            body = _read_capped(response, self.settings.max_bytes, location)
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, body
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            raise UninspectableError(f"the referenced URL could not be fetched ({type(exc).__name__})",
                                     location=location) from exc
        finally:
            connection.close()

    def _address(self, host: str, port: int, location: str) -> tuple[str, int]:
        """Resolve once and connect to that address (no DNS rebinding between check and use)."""
        if host in self.settings.overrides:
            return self.settings.overrides[host]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise UninspectableError("the referenced host does not resolve", location=location) from exc
        for info in infos:
            ip = ipaddress.ip_address(info[4][0])
            if not ip.is_global:
                raise UninspectableError("the reference points into a private network", location=location)
        return str(infos[0][4][0]), port


def _pinned_connection(
    scheme: str, host: str, port: int, address: tuple[str, int], context: ssl.SSLContext, timeout: float
) -> http.client.HTTPConnection:
    """An HTTP(S) connection to `address` that still presents and verifies `host` (SNI, certificate)."""

    class Pinned(http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection):  # type: ignore[misc]
        def connect(self) -> None:
            sock = socket.create_connection(address, timeout)
            self.sock = context.wrap_socket(sock, server_hostname=host) if scheme == "https" else sock

    if scheme == "https":
        return Pinned(host, port, timeout=timeout, context=context)
    return Pinned(host, port, timeout=timeout)


def _binary_type(declared: str) -> str:
    """Fetched files are decoded by what they are (sniffed), not by what the server says, except text."""
    media = declared.split(";", 1)[0].strip().lower()
    return declared if media.startswith("text/") or media.endswith("json") else "application/octet-stream"


def _relocated(inputs: Inputs, prefix: str) -> Inputs:
    texts = tuple(replace(t, location=prefix + t.location.removeprefix("body")) for t in inputs.texts)
    media = tuple(replace(m, location=prefix + m.location.removeprefix("body")) for m in inputs.media)
    return Inputs(texts, media, ())


def _read_capped(response: http.client.HTTPResponse, cap: int, location: str) -> bytes:
    declared = response.getheader("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise TooLargeError(f"the referenced file is {declared} bytes; the limit is {cap}", location=location)
    chunks = []
    total = 0
    while chunk := response.read(64 * 1024):
        total += len(chunk)
        if total > cap:
            raise TooLargeError(f"the referenced file exceeds {cap} bytes", location=location)
        chunks.append(chunk)
    return b"".join(chunks)


# --- provider file ids ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    tool: str
    production: str
    event_id: str
    created: float


class FileLedger:
    """Which production uploaded which provider file id (a small SQLite file in the data dir)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS provider_files (tool TEXT NOT NULL, file_id TEXT NOT NULL, "
            "production TEXT NOT NULL, event_id TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (tool, file_id))"
        )

    def remember(self, tool: str, file_id: str, production: str, event_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO provider_files VALUES (?, ?, ?, ?, ?)",
                (tool, file_id, production, event_id, time.time()),
            )

    def lookup(self, tool: str, file_id: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT file_id, tool, production, event_id, created FROM provider_files "
                "WHERE tool = ? AND file_id = ?",
                (tool, file_id),
            ).fetchone()
        return FileRecord(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def uploaded_file_ids(body: Any) -> list[str]:
    """The file ids a provider's upload response assigns (OpenAI/Anthropic `id`, Gemini `file.name`, Runway uri)."""
    candidates: list[Any] = []
    if isinstance(body, dict):
        candidates += [body.get("id"), body.get("name"), body.get("uri"), body.get("runwayUri")]
        nested = body.get("file")
        if isinstance(nested, dict):
            candidates += [nested.get("id"), nested.get("name"), nested.get("uri")]
    found: list[str] = []
    for value in candidates:
        if isinstance(value, str):
            found += [v for kind, v in find_references(value) if kind == "file_id" and v not in found]
    return found


def reference_reasons(
    inputs: Inputs,
    production: Production,
    tool: Tool,
    ledger: FileLedger | None,
    fetcher: RemoteFetcher | None,
    limits: ContentLimits,
) -> tuple[list[Reason], Inputs]:
    """Reasons about each reference, and what the fetched references carry (to inspect like uploads)."""
    reasons: list[Reason] = []
    fetched = Inputs()
    policy = production.references
    own_file_ids = {r.value for r in inputs.references if r.kind == "file_id"}
    for reference in inputs.references:
        if reference.kind == "file_id":
            reasons += _file_reason(reference, production, tool.id, ledger)
        elif _is_own_file_api(reference.value, tool, own_file_ids):
            continue  # e.g. Gemini fileUri: the file id inside it is checked as a file reference
        elif policy.remote_urls == "block":
            reasons.append(Reason("content.remote_reference", Action.BLOCK,
                                  "the request asks the provider to fetch a remote file", location=reference.location,
                                  advice="Upload the file itself so Greenroom can check it, instead of a link."))
        elif policy.remote_urls == "fetch":
            if fetcher is None:
                raise UninspectableError("remote references cannot be fetched here", location=reference.location)
            fetched = fetched.merged(fetcher.fetch(reference.value, reference.location, limits))
    return reasons, fetched


def _is_own_file_api(url: str, tool: Tool, file_ids: set[str]) -> bool:
    """A URL on the tool's own hosts that names one of the request's file ids is a file reference."""
    host = (urlsplit(url).hostname or "").lower()
    on_tool = any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in tool.hosts)
    return on_tool and any(file_id in url for file_id in file_ids)


def _file_reason(reference: Reference, production: Production, tool: str, ledger: FileLedger | None) -> list[Reason]:
    record = ledger.lookup(tool, reference.value) if ledger is not None else None
    if record is None:
        action = production.references.unknown_file_ids
        if action == Action.ALLOW:
            return []
        return [Reason("content.unknown_file", action, "the request refers to a file not uploaded through Greenroom",
                       location=reference.location,
                       advice="Upload the file again through the gateway, or ask an approver to approve this use.")]
    if record.production != production.id:
        return [Reason("content.foreign_file", Action.BLOCK, "the request refers to another production's file",
                       location=reference.location, entity=record.event_id)]
    return []
