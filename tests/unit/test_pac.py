"""gateway/pac.py and `greenroom pac`: the generated PAC file, executed by a real PAC engine.

pacparser embeds a JavaScript engine with the standard PAC helpers (`dnsDomainIs`, `shExpMatch`,
…), so these tests run the exact text a browser would, not a re-implementation of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pacparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cli import main
from gateway.config import load_tool_catalog
from gateway.errors import ConfigError
from gateway.pac import build_pac, parse_proxy
from gateway.tools.catalog import Catalog

ROUTE = "PROXY gw.studio.internal:8080"
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_tool_catalog())


class PacEngine:
    """One PAC file loaded into pacparser (process-global state: one engine at a time)."""

    def __init__(self, text: str) -> None:
        pacparser.init()
        pacparser.parse_pac_string(text)

    def route(self, host: str, scheme: str = "https") -> str:
        return pacparser.find_proxy(f"{scheme}://{host}/v1/chat/completions", host)


@pytest.fixture
def engine(catalog: Catalog) -> Iterator[PacEngine]:
    yield PacEngine(build_pac(catalog.host_patterns, ["gw.studio.internal:8080"]))
    pacparser.cleanup()


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com",
        "eu.api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.elevenlabs.io",
        "chatgpt.com",
        "claude.ai",
        "files.oaiusercontent.com",  # *.oaiusercontent.com
        "a.b.oaiusercontent.com",  # wildcards cover every depth
        "eu.residency.elevenlabs.io",  # *.residency.elevenlabs.io
        "fal.run",  # listed exactly as well as *.fal.run
        "x.fal.run",
        "API.OpenAI.COM",  # hosts are lower-cased
        "api.openai.com.",  # the trailing dot of a fully qualified name
    ],
)
def test_ai_tool_hosts_go_through_the_gateway(engine: PacEngine, host: str) -> None:
    """Every catalog host, exact or under a wildcard, is sent to the gateway."""
    assert engine.route(host) == ROUTE


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "www.google.com",
        "openai.com",  # the apex is not an API host
        "oaiusercontent.com",  # `*.x` matches subdomains only, like the catalog
        "residency.elevenlabs.io",
        "api.openai.com.evil.net",  # look-alike: catalog host as a prefix
        "evilopenai.com",  # look-alike: no dot boundary
        "evilapi.openai.com",
        "xoaiusercontent.com",
        "apiXopenai.com",
        "api-openai.com",
        "104.18.7.192",  # IP literals never match
        "1.2.3.4",
        "::1",
        "[2606:4700::6810:84e5]",
        "intranet",  # plain host names stay inside
    ],
)
def test_everything_else_goes_direct(engine: PacEngine, host: str) -> None:
    """Ordinary and look-alike hosts never touch the gateway (the firewall handles those)."""
    assert engine.route(host) == "DIRECT"


def test_every_catalog_pattern_is_routed(engine: PacEngine, catalog: Catalog) -> None:
    """The PAC and the gateway agree on what an AI host is, for every pattern in the catalog."""
    for pattern in catalog.host_patterns:
        host = pattern.replace("*.", "probe.")
        assert catalog.is_ai_host(host)
        assert engine.route(host) == ROUTE, host


def test_plain_http_is_routed_too(engine: PacEngine) -> None:
    """The scheme does not matter: http:// to an AI host also goes to the gateway."""
    assert engine.route("api.openai.com", scheme="http") == ROUTE


@pytest.mark.parametrize(
    ("fallback", "proxies", "expected"),
    [
        ("block", ["gw1:8080"], "PROXY gw1:8080"),
        ("direct", ["gw1:8080"], "PROXY gw1:8080; DIRECT"),
        ("block", ["gw1:8080", "gw2.studio.internal:3128"], "PROXY gw1:8080; PROXY gw2.studio.internal:3128"),
        ("block", ["[fd00::1]:8080"], "PROXY [fd00::1]:8080"),
    ],
)
def test_fallback_and_failover(catalog: Catalog, fallback: str, proxies: list[str], expected: str) -> None:
    """block (the default) names only gateways; direct lets the browser go around them."""
    PacEngine(build_pac(catalog.host_patterns, proxies, fallback))  # type: ignore[arg-type]
    try:
        assert pacparser.find_proxy("https://api.openai.com/", "api.openai.com") == expected
        assert pacparser.find_proxy("https://example.com/", "example.com") == "DIRECT"
    finally:
        pacparser.cleanup()


def test_default_fallback_is_block(catalog: Catalog) -> None:
    """Without --fallback an unreachable gateway is an error in the browser, never a bypass."""
    assert 'var GREENROOM_ROUTE = "PROXY gw:8080";' in build_pac(catalog.host_patterns, ["gw:8080"])


@pytest.mark.parametrize(
    "pattern",
    ['api.openai.com"; return "DIRECT', "*", "*.com*", "10.0.0.1", "api.openai.com/v1", "a..b", "*.*.openai.com"],
)
def test_malformed_host_patterns_are_refused(pattern: str) -> None:
    """A catalog entry that is not a host name cannot inject JavaScript or route addresses."""
    with pytest.raises(ConfigError):
        build_pac(["api.openai.com", pattern], ["gw:8080"])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gw.studio.internal:8080", "gw.studio.internal:8080"),
        ("GW.Studio.Internal.:8080", "gw.studio.internal:8080"),
        ("10.1.2.3:3128", "10.1.2.3:3128"),
        ("[fd00::1]:8080", "[fd00::1]:8080"),
        ("gateway:8080", "gateway:8080"),
    ],
)
def test_parse_proxy_accepts(spec: str, expected: str) -> None:
    assert parse_proxy(spec) == expected


@pytest.mark.parametrize("spec", ["gw", "gw:", "gw:0", "gw:70000", "http://gw:8080", 'gw";x:80', "gw:80:90"])
def test_parse_proxy_refuses(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_proxy(spec)


def test_command_prints_a_working_pac(capsys: pytest.CaptureFixture[str]) -> None:
    """`greenroom pac --config config/demo --proxy HOST:PORT` prints a PAC that pacparser runs."""
    assert main(["pac", "--config", str(DEMO), "--proxy", "gw.studio.internal:8080"]) == 0
    PacEngine(capsys.readouterr().out)
    try:
        assert pacparser.find_proxy("https://api.openai.com/", "api.openai.com") == ROUTE
        assert pacparser.find_proxy("https://evilopenai.com/", "evilopenai.com") == "DIRECT"
    finally:
        pacparser.cleanup()


def test_command_writes_output_file(tmp_path: Path) -> None:
    out = tmp_path / "greenroom.pac"
    assert main(["pac", "--config", str(DEMO), "--proxy", "gw:8080", "--fallback", "direct", "--output", str(out)]) == 0
    assert "function FindProxyForURL(url, host)" in out.read_text()
    assert '"PROXY gw:8080; DIRECT"' in out.read_text()


def test_command_bad_proxy_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pac", "--config", str(DEMO), "--proxy", "not a proxy"]) == 2
    assert "--proxy" in capsys.readouterr().err


_LABELS = ["api", "openai", "com", "evil", "fal", "run", "oaiusercontent", "residency", "elevenlabs", "io",
           "claude", "ai", "x", "eu", "net", "chatgpt", "googleapis", "generativelanguage", "1", "API", "Ai"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(st.sampled_from(_LABELS), min_size=1, max_size=5), trailing_dot=st.booleans())
def test_pac_agrees_with_the_gateway(
    engine: PacEngine, catalog: Catalog, labels: list[str], trailing_dot: bool
) -> None:
    """For host names built from catalog fragments, the PAC routes exactly what the gateway inspects."""
    host = ".".join(labels) + ("." if trailing_dot else "")
    expected = ROUTE if catalog.is_ai_host(host) else "DIRECT"
    assert engine.route(host) == expected, host
