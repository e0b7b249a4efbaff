"""gateway/tools/catalog.py: host lookup, path normalisation and endpoint classification.

Endpoint cases run against the real packaged catalog (`load_tool_catalog()`), so a catalog change
that makes an evasion slip past its endpoint fails here.
"""

from __future__ import annotations

import pytest

from gateway.config import load_tool_catalog
from gateway.config.models import Capability, Endpoint, Tool
from gateway.tools.catalog import Catalog, compile_path, normalize_path


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_tool_catalog())


# --- hosts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "tool_id"),
    [
        ("api.openai.com", "openai-api"),
        ("API.OpenAI.com", "openai-api"),
        ("api.openai.com.", "openai-api"),
        ("eu.api.openai.com", "openai-api"),
        ("api.anthropic.com", "anthropic-api"),
        ("generativelanguage.googleapis.com", "gemini-api"),
        ("api.elevenlabs.io", "elevenlabs-api"),
        ("eu.residency.elevenlabs.io", "elevenlabs-api"),
        ("a.b.residency.elevenlabs.io", "elevenlabs-api"),
        ("chatgpt.com", "chatgpt-web"),
        ("example.org", None),
        ("openai.com.evil.example", None),
        ("residency.elevenlabs.io", None),
        ("evilresidency.elevenlabs.io", None),
        ("notapi.openai.com", None),
        ("", None),
    ],
)
def test_tool_for_host(catalog: Catalog, host: str, tool_id: str | None) -> None:
    """Exact and `*.suffix` hosts match case-insensitively, ignoring a trailing dot; other hosts are not AI."""
    tool = catalog.tool_for_host(host)
    assert (tool.id if tool else None) == tool_id
    assert catalog.is_ai_host(host) is (tool_id is not None)
    if tool_id is None:
        assert catalog.classify(host, "POST", "/v1/chat/completions") is None


def test_host_patterns_include_wildcards(catalog: Catalog) -> None:
    """host_patterns lists every catalog host, wildcards kept as written (for the PAC file)."""
    patterns = catalog.host_patterns
    assert "api.openai.com" in patterns
    assert "*.residency.elevenlabs.io" in patterns
    assert len(patterns) == sum(len(t.hosts) for t in catalog.tools)


# --- path normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1//chat/completions",
        "//v1/chat//completions",
        "/v1/./chat/completions",
        "/v1/x/../chat/completions",
        "/v1/chat/x/y/../../completions",
        "/V1/Chat/Completions",
        "/v1%2Fchat%2Fcompletions",
        "/v1%2fchat/completions",
        "/v1%252Fchat%252Fcompletions",
        "/v1/chat/completions/",
        "/v1/chat/completions?x=1&store=true",
        "/v1/chat/completions/?a=b",
        "/v1/chat/completions#frag",
        "/v1\\chat\\completions",
        "/v1/%63hat/completions",
        "v1/chat/completions",
        "/../v1/chat/completions",
    ],
)
def test_path_evasions_classify_as_chat_completions(catalog: Catalog, path: str) -> None:
    """Encoded, dotted, doubled, cased and trailing-slash variants of a path reach the same endpoint."""
    result = catalog.classify("api.openai.com", "POST", path)
    assert result is not None
    assert result.endpoint_id == "chat.completions"
    assert result.capability == Capability.CHAT


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b/", "/a/b"),
        ("/A//B/./c/../D", "/a/b/d"),
        ("/a%2fb", "/a/b"),
        ("/a%25252fb", "/a/b"),
        ("/a?b=/c", "/a"),
    ],
)
def test_normalize_path(raw: str, normalized: str) -> None:
    """normalize_path returns one canonical lower-case form without query or fragment."""
    assert normalize_path(raw) == normalized


# --- endpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "method", "path", "endpoint_id", "capability"),
    [
        (
            "generativelanguage.googleapis.com",
            "POST",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "models.generate_content",
            Capability.CHAT,
        ),
        (
            "generativelanguage.googleapis.com",
            "POST",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            "models.stream_generate_content",
            Capability.CHAT,
        ),
        (
            "generativelanguage.googleapis.com",
            "POST",
            "/V1BETA/models/gemini-2.0-flash:GENERATECONTENT",
            "models.generate_content",
            Capability.CHAT,
        ),
        (
            "generativelanguage.googleapis.com",
            "POST",
            "/v1beta/models/gemini-2.0-flash%3AgenerateContent",
            "models.generate_content",
            Capability.CHAT,
        ),
        ("api.openai.com", "POST", "/v1/uploads", "uploads", Capability.FILE_UPLOAD),
        ("api.openai.com", "POST", "/v1/uploads/upl_1/parts", "uploads", Capability.FILE_UPLOAD),
        ("api.openai.com", "POST", "/v1/fine_tuning/jobs", "fine_tuning", Capability.OTHER),
        ("api.openai.com", "GET", "/v1/models", "models", Capability.METADATA),
        ("api.openai.com", "GET", "/v1/models/gpt-4o", "models", Capability.METADATA),
        (
            "api.elevenlabs.io",
            "POST",
            "/v1/text-to-speech/voice123",
            "text_to_speech",
            Capability.TEXT_TO_SPEECH,
        ),
        (
            "api.elevenlabs.io",
            "POST",
            "/v1/text-to-speech/voice123/stream",
            "text_to_speech",
            Capability.TEXT_TO_SPEECH,
        ),
        ("api.anthropic.com", "POST", "/v1/messages", "messages", Capability.CHAT),
        ("api.anthropic.com", "POST", "/v1/messages/count_tokens", "messages.count_tokens", Capability.CHAT),
        ("chatgpt.com", "POST", "/backend-anon/conversation", "backend_anon", Capability.CHAT),
    ],
)
def test_classify_endpoint(
    catalog: Catalog, host: str, method: str, path: str, endpoint_id: str, capability: Capability
) -> None:
    """`{name}` stops at `:` and `/`, `/**` matches the prefix itself and everything below it."""
    result = catalog.classify(host, method, path)
    assert result is not None
    assert (result.endpoint_id, result.capability) == (endpoint_id, capability)


@pytest.mark.parametrize(
    ("host", "method", "path"),
    [
        ("api.openai.com", "GET", "/v1/chat/completions"),
        ("api.openai.com", "DELETE", "/v1/chat/completions"),
        ("api.openai.com", "POST", "/v1/chat/completions/extra"),
        ("api.openai.com", "POST", "/v1/uploadsx"),
        ("api.openai.com", "POST", "/v2/unknown"),
        ("generativelanguage.googleapis.com", "POST", "/v1beta/models/a/b:generateContent"),
        ("chatgpt.com", "POST", "/backend-api/something-new"),
    ],
)
def test_unlisted_endpoint_gets_default_capability(
    catalog: Catalog, host: str, method: str, path: str
) -> None:
    """A method mismatch or an unknown path is an unlisted endpoint with the tool's default capability."""
    result = catalog.classify(host, method, path)
    assert result is not None
    assert result.endpoint is None
    assert result.endpoint_id == "unlisted"
    assert result.capability == result.tool.default_capability


def test_method_is_case_insensitive(catalog: Catalog) -> None:
    """A lower-case method is the same request as its upper-case form."""
    result = catalog.classify("api.openai.com", "post", "/v1/chat/completions")
    assert result is not None and result.endpoint_id == "chat.completions"


def test_first_listed_endpoint_wins() -> None:
    """When two endpoints match, the one listed first decides."""
    tool = Tool(
        id="t",
        name="T",
        kind="api",
        hosts=["t.example"],
        error_format="generic",
        default_capability=Capability.METADATA,
        endpoints=[
            Endpoint(id="specific", path="/v1/a/b", capability=Capability.CHAT),
            Endpoint(id="broad", path="/v1/**", capability=Capability.OTHER),
        ],
    )
    catalog = Catalog([tool])
    assert catalog.classify("t.example", "POST", "/v1/a/b").endpoint_id == "specific"  # type: ignore[union-attr]
    assert catalog.classify("t.example", "POST", "/v1/a/c").endpoint_id == "broad"  # type: ignore[union-attr]
    assert catalog.classify("t.example", "POST", "/v1").endpoint_id == "broad"  # type: ignore[union-attr]
    assert catalog.classify("t.example", "POST", "/v2").capability == Capability.METADATA  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v1/files/**", "/v1/files", True),
        ("/v1/files/**", "/v1/files/a/b/c", True),
        ("/v1/files/**", "/v1/filesx", False),
        ("/{v}/models/{m}:predict", "/v1/models/imagen:predict", True),
        ("/{v}/models/{m}:predict", "/v1/models/a/b:predict", False),
        ("/{v}/models/{m}:predict", "/v1/models/a:b:predict", False),
        ("/v1/x/{id}", "/v1/x/", False),
        ("/v1/x/{id}", "/v1/x/abc", True),
    ],
)
def test_compile_path(pattern: str, path: str, matches: bool) -> None:
    """compile_path: `{name}` is one segment up to `:`, `/**` is the rest including nothing."""
    assert bool(compile_path(pattern).match(normalize_path(path))) is matches


# --- reverse mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "tool_id"),
    [
        ("openai", "openai-api"),
        ("/openai/", "openai-api"),
        ("OpenAI", "openai-api"),
        ("anthropic", "anthropic-api"),
        ("gemini", "gemini-api"),
        ("elevenlabs", "elevenlabs-api"),
        ("nope", None),
        ("", None),
    ],
)
def test_tool_for_prefix(catalog: Catalog, prefix: str, tool_id: str | None) -> None:
    """Reverse-mode prefixes select their tool, ignoring slashes and case."""
    tool = catalog.tool_for_prefix(prefix)
    assert (tool.id if tool else None) == tool_id
