"""The admin listener: /healthz, /readyz, /metrics on its own port (loopback by default).

It runs in the proxy's event loop but on a separate socket, so it is never reachable through the
proxy itself (the proxy only forwards to upstream hosts; the admin port is not one of them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

__all__ = ["AdminServer"]

log = structlog.get_logger("greenroom.admin")

Check = Callable[[], dict[str, bool]]


class AdminServer:
    def __init__(self, host: str, port: int, metrics_text: Callable[[], str], readiness: Check) -> None:
        self.host, self.port = host, port
        self._metrics = metrics_text
        self._readiness = readiness
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            status, ctype, body = self._route(path)
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            writer.close()
            return
        head = (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
                "cache-control: no-store\r\nconnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/readyz":
            checks = self._readiness()
            ok = all(checks.values())
            body = "".join(f"{name} {'ok' if good else 'FAILED'}\n" for name, good in checks.items())
            return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", body.encode()
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4", self._metrics().encode()
        return "404 Not Found", "text/plain", b"not found\n"
