"""The tool catalog compiled for lookups: host → tool, (method, path) → endpoint.

Hosts outside the catalog are not AI tools: the proxy tunnels them without decrypting. Paths are
normalised before matching (percent-decoding, `.`/`..` segments, repeated and trailing slashes,
letter case) so `/v1//Chat/completions/` cannot slip past the rules for `/v1/chat/completions`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from gateway.config.models import Capability, Endpoint, Tool

__all__ = ["Catalog", "Classification", "compile_path", "normalize_path"]


@dataclass(frozen=True, slots=True)
class Classification:
    """What a request is: which tool, which endpoint (None when the catalog does not list it)."""

    tool: Tool
    endpoint: Endpoint | None
    capability: Capability

    @property
    def endpoint_id(self) -> str:
        return self.endpoint.id if self.endpoint else "unlisted"


@dataclass(frozen=True, slots=True)
class _CompiledEndpoint:
    endpoint: Endpoint
    pattern: re.Pattern[str]
    methods: frozenset[str]


def compile_path(pattern: str) -> re.Pattern[str]:
    """Compile an endpoint path pattern: `{name}` = one segment (stops at `/` and `:`), `/**` = the rest."""
    text = normalize_path(pattern.replace("/**", "/__rest__")).replace("/__rest__", "/**")
    rest = text.endswith("/**")
    if rest:
        text = text[: -len("/**")]
    out = []
    for part in re.split(r"(\{[^}/]+\})", text):
        if part.startswith("{") and part.endswith("}"):
            out.append(r"[^/:]+")
        else:
            out.append(re.escape(part))
    body = "".join(out)
    return re.compile("^" + body + (r"(?:/.*)?$" if rest else "$"), re.IGNORECASE)


def normalize_path(path: str) -> str:
    """The canonical form of a request path, without its query string."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):  # undo double encoding too (%252F)
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = path.replace("\\", "/")
    normalized = posixpath.normpath("/" + path.lstrip("/"))
    normalized = re.sub(r"/{2,}", "/", normalized)
    return normalized.lower() if normalized != "." else "/"


class Catalog:
    """Lookups over a fixed list of tools; built once per configuration."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools: tuple[Tool, ...] = tuple(tools)
        self._exact: dict[str, Tool] = {}
        self._suffix: list[tuple[str, Tool]] = []
        self._endpoints: dict[str, tuple[_CompiledEndpoint, ...]] = {}
        self._prefixes: dict[str, Tool] = {}
        for tool in self.tools:
            for host in tool.hosts:
                if host.startswith("*."):
                    self._suffix.append((host[1:], tool))
                else:
                    self._exact[host] = tool
            self._endpoints[tool.id] = tuple(
                _CompiledEndpoint(ep, compile_path(ep.path), frozenset(ep.methods)) for ep in tool.endpoints
            )
            if tool.reverse_prefix:
                self._prefixes[tool.reverse_prefix.strip("/").lower()] = tool
        self._suffix.sort(key=lambda item: -len(item[0]))

    def tool_for_host(self, host: str) -> Tool | None:
        """The tool serving `host`, or None when it is not an AI tool host."""
        name = host.lower().rstrip(".")
        if name in self._exact:
            return self._exact[name]
        for suffix, tool in self._suffix:
            if name.endswith(suffix):
                return tool
        return None

    def is_ai_host(self, host: str) -> bool:
        return self.tool_for_host(host) is not None

    def classify(self, host: str, method: str, path: str) -> Classification | None:
        """The tool and endpoint of a request; None when the host is not an AI tool."""
        tool = self.tool_for_host(host)
        if tool is None:
            return None
        normalized = normalize_path(path)
        verb = method.upper()
        for compiled in self._endpoints[tool.id]:
            if verb in compiled.methods and compiled.pattern.match(normalized):
                return Classification(tool, compiled.endpoint, compiled.endpoint.capability)
        return Classification(tool, None, tool.default_capability)

    def tool_for_prefix(self, prefix: str) -> Tool | None:
        """The tool served under a reverse-mode path prefix (`openai` in /openai/v1/...)."""
        return self._prefixes.get(prefix.strip("/").lower())

    @property
    def host_patterns(self) -> tuple[str, ...]:
        """Every host and `*.suffix` pattern in the catalog (for PAC files)."""
        return tuple(h for tool in self.tools for h in tool.hosts)
