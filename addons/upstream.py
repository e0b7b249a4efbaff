"""Upstream routing for staging and tests: `--upstream-override HOST=IP:PORT`.

The TCP connection goes to IP:PORT while SNI, Host and certificate checks stay those of HOST.
`*` as HOST applies to every AI tool host in the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.proxy import server_hooks

__all__ = ["Override", "UpstreamOverride", "parse_overrides"]


@dataclass(frozen=True, slots=True)
class Override:
    host: str
    ip: str
    port: int


def parse_overrides(specs: Sequence[str]) -> tuple[Override, ...]:
    """Parse `HOST=IP:PORT` specs; raise ValueError with what is wrong."""
    out = []
    for spec in specs:
        host, sep, target = spec.partition("=")
        ip, colon, port = target.rpartition(":")
        if not sep or not host or not colon or not ip or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"upstream override {spec!r} is not HOST=IP:PORT (e.g. '*=127.0.0.1:9443')")
        out.append(Override(host.lower().rstrip("."), ip.strip("[]"), int(port)))
    return tuple(out)


class UpstreamOverride:
    def __init__(self, is_ai_host: Callable[[str], bool]) -> None:
        self._is_ai_host = is_ai_host
        self.overrides: tuple[Override, ...] = ()
        self._sni: dict[tuple[str, str, int], str] = {}
        """(client connection, ip, port) → the real host a rerouted request is for (its SNI)."""

    def load(self, loader: Any) -> None:
        loader.add_option(
            "greenroom_upstream_override", Sequence[str], [],
            "HOST=IP:PORT: connect to IP:PORT instead of resolving HOST (SNI, Host and certificate checks "
            "stay HOST's); '*' applies to every AI tool host. Staging and tests only.",
        )

    def configure(self, updated: set[str]) -> None:
        if "greenroom_upstream_override" in updated:
            try:
                self.overrides = parse_overrides(ctx.options.greenroom_upstream_override)
            except ValueError as exc:
                raise exceptions.OptionsError(str(exc)) from exc

    def request(self, flow: http.HTTPFlow) -> None:
        """Route an inspected request to its override by address, so mitmproxy can reuse the upstream
        connection for the next request (a connection's address must match the request's); the Host
        header, SNI and certificate checks stay the real host's."""
        if not self.overrides or flow.response or flow.error or not flow.live:
            return
        host = flow.request.host.lower().rstrip(".")
        target = self._target(host)
        if target is None:
            return
        host_header = flow.request.host_header
        flow.request.host, flow.request.port = target.ip, target.port
        flow.request.host_header = host_header
        self._sni[(flow.client_conn.id, target.ip, target.port)] = host

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if not self.overrides or data.server.address is None:
            return
        routed = self._sni.get((data.client.id, str(data.server.address[0]), int(data.server.address[1])))
        if routed is not None:
            data.server.sni = routed
            return
        host = str(data.server.address[0]).lower().rstrip(".")
        target = self._target(host)
        if target is None:
            return
        if data.server.sni is None:
            data.server.sni = host
        data.server.address = (target.ip, target.port)

    def client_disconnected(self, client: connection.Client) -> None:
        for key in [k for k in self._sni if k[0] == client.id]:
            del self._sni[key]

    def _target(self, host: str) -> Override | None:
        for override in self.overrides:
            if override.host == host:
                return override
        if self._is_ai_host(host):
            return next((o for o in self.overrides if o.host == "*"), None)
        return None
