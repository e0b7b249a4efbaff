"""Resumable uploads reassembled before they are inspected (Google's resumable protocol).

Gemini's Files API (and Gemini web's content-push host) upload a file in chunks to a session URL:
`X-Goog-Upload-Command: upload` with `X-Goog-Upload-Offset`, the last chunk `upload, finalize`. A
chunk after the first has no magic bytes and cannot be judged alone, and forwarding chunks one by
one would send bytes before the whole file was inspected. So Greenroom keeps the chunks itself
(answering each with `x-goog-upload-status: active`, as the server would) and, on `finalize`,
forwards the whole file as one `upload, finalize` at offset 0 — after inspecting it whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from gateway.errors import TooLargeError, UninspectableError

__all__ = ["Assembled", "ChunkHeld", "ResumableUploads", "parse_upload_command"]


@dataclass(frozen=True, slots=True)
class ChunkHeld:
    """A chunk kept by the gateway; answer the client locally with this many bytes received."""

    received: int


@dataclass(frozen=True, slots=True)
class Assembled:
    """The whole file, ready to be inspected and forwarded as one final chunk at offset 0."""

    data: bytes = field(repr=False)


@dataclass(slots=True)
class _Session:
    owner: str
    data: bytearray
    touched: float


def parse_upload_command(header: str | None) -> tuple[bool, bool]:
    """(is an upload chunk, is the final chunk) from `X-Goog-Upload-Command`."""
    commands = {c.strip().lower() for c in (header or "").split(",")}
    return "upload" in commands, "finalize" in commands


class ResumableUploads:
    """Chunks of in-progress sessions, bounded in total size and age. Thread-safe."""

    def __init__(self, max_bytes: int, ttl_seconds: float = 3600.0, max_sessions: int = 1000) -> None:
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._max_sessions = max_sessions
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def accept(self, session: str, owner: str, offset: int, chunk: bytes, final: bool) -> ChunkHeld | Assembled:
        """Add a chunk; raise the gateway's errors for a wrong offset, another owner or a file too large."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            state = self._sessions.get(session)
            if state is None:
                if offset != 0:
                    raise UninspectableError("upload chunk for an unknown session or offset", location="upload")
                if len(self._sessions) >= self._max_sessions:
                    raise TooLargeError("too many uploads in progress", location="upload")
                state = self._sessions[session] = _Session(owner, bytearray(), now)
            if state.owner != owner:
                raise UninspectableError("upload session belongs to another user", location="upload")
            if offset != len(state.data):
                raise UninspectableError(f"upload chunk at offset {offset}, expected {len(state.data)}",
                                         location="upload")
            if len(state.data) + len(chunk) > self._max_bytes:
                del self._sessions[session]
                raise TooLargeError(f"upload exceeds {self._max_bytes} bytes", location="upload")
            state.data += chunk
            state.touched = now
            if final:
                del self._sessions[session]
                return Assembled(bytes(state.data))
            return ChunkHeld(len(state.data))

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if now - s.touched > self._ttl]:
            del self._sessions[key]
