"""The packaged tool catalog (gateway/tools/definitions/*.yaml) as data.

Validates every file against the `Tool` model and checks the retention/training rules the catalog
must carry. Endpoints are looked up by (host, method, path) with first-match-wins, following the
documented pattern syntax, so a misordered or shadowed endpoint fails here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.models import (
    Capability,
    Endpoint,
    HeaderSet,
    JsonSet,
    QuerySet,
    Tool,
)

DEFINITIONS = Path(__file__).resolve().parents[2] / "gateway" / "tools" / "definitions"
FILES = sorted(DEFINITIONS.glob("*.yaml"))

EXPECTED_TOOLS = {
    "openai-api": "api",
    "anthropic-api": "api",
    "gemini-api": "api",
    "elevenlabs-api": "api",
    "stability-api": "api",
    "runway-api": "api",
    "mistral-api": "api",
    "xai-api": "api",
    "openrouter-api": "api",
    "fal-api": "api",
    "cohere-api": "api",
    "replicate-api": "api",
    "bfl-api": "api",
    "luma-api": "api",
    "chatgpt-web": "webapp",
    "chatgpt-uploads": "webapp",
    "claude-web": "webapp",
    "gemini-web": "webapp",
    "gemini-web-uploads": "webapp",
}

RULE_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _load(path: Path) -> Tool:
    return Tool.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def tools() -> dict[str, Tool]:
    return {t.id: t for t in (_load(f) for f in FILES)}


# --- a minimal matcher following the documented pattern syntax ---------------------------------------


def _compile(pattern: str) -> re.Pattern[str]:
    rest = pattern.endswith("/**")
    base = pattern[: -len("/**")] if rest else pattern
    parts = [
        r"[^/:]+" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in re.split(r"(\{[^}/]+\})", base)
    ]
    return re.compile("^" + "".join(parts) + (r"(?:/.*)?" if rest else "") + "$", re.IGNORECASE)


def _host_matches(pattern: str, host: str) -> bool:
    return host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern


def _tool_for_host(tools: dict[str, Tool], host: str) -> Tool:
    found = [t for t in tools.values() if any(_host_matches(h, host) for h in t.hosts)]
    assert len(found) == 1, f"{host}: served by {[t.id for t in found]}"
    return found[0]


def _endpoint(tool: Tool, method: str, path: str) -> Endpoint | None:
    for ep in tool.endpoints:
        if method.upper() in ep.methods and _compile(ep.path).match(path):
            return ep
    return None


def _classify(tools: dict[str, Tool], host: str, method: str, path: str) -> tuple[Tool, Endpoint]:
    tool = _tool_for_host(tools, host)
    ep = _endpoint(tool, method, path)
    assert ep is not None, f"{method} {host}{path}: no endpoint in {tool.id}"
    return tool, ep


def _sample_paths(pattern: str) -> list[str]:
    """Request paths shaped like `pattern` (for `/**`: the path itself and one level below)."""
    rest = pattern.endswith("/**")
    base = re.sub(r"\{[^}/]+\}", "sample0", pattern[: -len("/**")] if rest else pattern)
    return [base or "/", base + "/sample1"] if rest else [base]


def test_matcher_semantics() -> None:
    # Guard the helper itself so the table tests below mean what they say.
    assert _compile("/v1/files/**").match("/v1/files")
    assert _compile("/v1/files/**").match("/v1/files/a/b")
    assert not _compile("/v1/files/**").match("/v1/filesx")
    assert _compile("/v1beta/models/{m}:generateContent").match(
        "/v1beta/models/gemini-2.5-pro:generateContent"
    )
    assert not _compile("/v1beta/models/{m}:generateContent").match("/v1beta/models/a/b:generateContent")
    assert not _compile("/v1/{model}").match("/v1/a/b")


# --- (1) every file is a valid Tool named after its file -------------------------------------------------


def test_catalog_is_not_empty() -> None:
    assert len(FILES) >= len(EXPECTED_TOOLS)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_file_validates_and_id_matches_stem(path: Path) -> None:
    tool = _load(path)
    assert tool.id == path.stem


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_file_has_source_header(path: Path) -> None:
    head = path.read_text(encoding="utf-8").splitlines()[:8]
    assert head[0].startswith("#"), "start with a comment naming the tool"
    assert any("Sources:" in line for line in head), "name the sources in the header comment"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_endpoints_are_well_formed(path: Path) -> None:
    tool = _load(path)
    for ep in tool.endpoints:
        assert ep.path.startswith("/"), ep.id
        assert ep.methods and set(ep.methods) <= HTTP_METHODS, ep.id
        assert "**" not in ep.path.removesuffix("/**"), f"{ep.id}: `**` only at the end"
        if ep.websocket:
            assert "GET" in ep.methods, f"{ep.id}: a WebSocket upgrade is a GET"
        if ep.block_rule:
            assert RULE_ID.match(ep.block_rule), ep.block_rule
            assert ep.block_message.strip(), f"{ep.id}: tell the user what to do instead"
        for rw in ep.rewrites:
            assert RULE_ID.match(rw.rule), rw.rule
    for rw in tool.rewrites:
        assert RULE_ID.match(rw.rule), rw.rule


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_no_endpoint_is_shadowed(path: Path) -> None:
    """First match wins: each endpoint must win for a request shaped like its own pattern."""
    tool = _load(path)
    for ep in tool.endpoints:
        samples = _sample_paths(ep.path)
        for method in ep.methods:
            winners = [_endpoint(tool, method, sample) for sample in samples]
            assert ep in winners, (
                f"{method} {samples}: {ep.id} is shadowed by {[w and w.id for w in winners]}"
            )


# --- (2) hosts and reverse prefixes are unambiguous -------------------------------------------------------


def _overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("*.") and b.startswith("*."):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*."):
        return b.endswith(a[1:])
    if b.startswith("*."):
        return a.endswith(b[1:])
    return False


def test_no_host_in_two_tools(tools: dict[str, Tool]) -> None:
    items = [(t.id, h) for t in tools.values() for h in t.hosts]
    clashes = [
        (ta, a, tb, b)
        for i, (ta, a) in enumerate(items)
        for tb, b in items[i + 1 :]
        if ta != tb and _overlap(a, b)
    ]
    assert clashes == []


def test_overlap_helper() -> None:
    assert _overlap("*.fal.run", "queue.fal.run")
    assert _overlap("api.x.ai", "api.x.ai")
    assert not _overlap("*.fal.run", "fal.run")
    assert not _overlap("api.openai.com", "chatgpt.com")


def test_reverse_prefixes_unique_and_route_to_a_concrete_host(tools: dict[str, Tool]) -> None:
    prefixes = [t.reverse_prefix for t in tools.values() if t.reverse_prefix]
    assert len(prefixes) == len(set(prefixes))
    for tool in tools.values():
        if tool.reverse_prefix:
            assert tool.kind == "api", tool.id
            assert not tool.hosts[0].startswith("*."), f"{tool.id}: first host is the reverse-mode upstream"


# --- (3) the expected tools exist --------------------------------------------------------------------------


@pytest.mark.parametrize(("tool_id", "kind"), sorted(EXPECTED_TOOLS.items()))
def test_expected_tool_exists(tools: dict[str, Tool], tool_id: str, kind: str) -> None:
    assert tool_id in tools
    assert tools[tool_id].kind == kind


@pytest.mark.parametrize(
    ("tool_id", "error_format", "reverse_prefix", "tenant_header"),
    [
        ("openai-api", "openai", "openai", "OpenAI-Organization"),
        ("anthropic-api", "anthropic", "anthropic", "anthropic-allowed-org-ids"),
        ("gemini-api", "gemini", "gemini", None),
        ("elevenlabs-api", "elevenlabs", "elevenlabs", None),
        ("stability-api", "stability", "stability", None),
        ("runway-api", "runway", "runway", None),
        ("mistral-api", "mistral", "mistral", None),
        ("xai-api", "openai", "xai", None),
        ("openrouter-api", "openai", "openrouter", None),
        ("fal-api", "generic", None, None),
        ("chatgpt-web", "chatgpt_web", None, "ChatGPT-Allowed-Workspace-Id"),
        ("chatgpt-uploads", "generic", None, None),
        ("claude-web", "anthropic", None, "anthropic-allowed-org-ids"),
        ("gemini-web", "generic", None, None),
    ],
)
def test_wire_conventions(
    tools: dict[str, Tool],
    tool_id: str,
    error_format: str,
    reverse_prefix: str | None,
    tenant_header: str | None,
) -> None:
    tool = tools[tool_id]
    assert tool.error_format == error_format
    assert tool.reverse_prefix == reverse_prefix
    assert (tool.tenant.header if tool.tenant else None) == tenant_header


# --- classification table ---------------------------------------------------------------------------------

CLASSIFY = [
    # host, method, path, tool, capability
    ("api.openai.com", "POST", "/v1/chat/completions", "openai-api", "chat"),
    ("api.anthropic.com", "POST", "/v1/messages", "anthropic-api", "chat"),
    ("api.anthropic.com", "POST", "/v1/messages/count_tokens", "anthropic-api", "chat"),
    ("api.anthropic.com", "POST", "/v1/messages/batches", "anthropic-api", "batch"),
    ("api.anthropic.com", "GET", "/v1/messages/batches/msgbatch_1/results", "anthropic-api", "metadata"),
    ("api.anthropic.com", "POST", "/v1/files", "anthropic-api", "file_upload"),
    ("api.anthropic.com", "GET", "/v1/models", "anthropic-api", "metadata"),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "gemini-api",
        "chat",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "gemini-api",
        "chat",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1/models/text-embedding-004:batchEmbedContents",
        "gemini-api",
        "embeddings",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/models/imagen-4.0-generate-001:predict",
        "gemini-api",
        "image_generation",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/models/veo-3.0-generate-001:predictLongRunning",
        "gemini-api",
        "video",
    ),
    ("generativelanguage.googleapis.com", "POST", "/upload/v1beta/files", "gemini-api", "file_upload"),
    ("generativelanguage.googleapis.com", "GET", "/v1beta/models", "gemini-api", "metadata"),
    (
        "generativelanguage.googleapis.com",
        "GET",
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
        "gemini-api",
        "realtime",
    ),
    ("api.elevenlabs.io", "POST", "/v1/voices/add", "elevenlabs-api", "voice_clone"),
    ("api.elevenlabs.io", "POST", "/v1/voices/pvc/abc/samples", "elevenlabs-api", "voice_clone"),
    ("api.eu.residency.elevenlabs.io", "POST", "/v1/speech-to-text", "elevenlabs-api", "speech_to_text"),
    ("api.elevenlabs.io", "POST", "/v1/dubbing", "elevenlabs-api", "voice_clone"),
    ("api.stability.ai", "POST", "/v2beta/stable-image/generate/ultra", "stability-api", "image_generation"),
    ("api.stability.ai", "POST", "/v2beta/stable-image/edit/inpaint", "stability-api", "image_edit"),
    ("api.stability.ai", "POST", "/v2beta/stable-image/control/sketch", "stability-api", "image_edit"),
    ("api.stability.ai", "POST", "/v2beta/stable-image/upscale/fast", "stability-api", "image_edit"),
    ("api.stability.ai", "POST", "/v2beta/image-to-video", "stability-api", "video"),
    (
        "api.stability.ai",
        "POST",
        "/v1/generation/sdxl-1.0/text-to-image",
        "stability-api",
        "image_generation",
    ),
    (
        "api.stability.ai",
        "POST",
        "/v1/generation/sdxl-1.0/image-to-image/masking",
        "stability-api",
        "image_edit",
    ),
    ("api.dev.runwayml.com", "POST", "/v1/image_to_video", "runway-api", "video"),
    ("api.dev.runwayml.com", "POST", "/v1/character_performance", "runway-api", "video"),
    ("api.dev.runwayml.com", "POST", "/v1/text_to_image", "runway-api", "image_generation"),
    ("api.dev.runwayml.com", "POST", "/v1/uploads", "runway-api", "file_upload"),
    ("api.dev.runwayml.com", "GET", "/v1/tasks/17f20503", "runway-api", "metadata"),
    ("api.mistral.ai", "POST", "/v1/ocr", "mistral-api", "other"),
    ("api.mistral.ai", "POST", "/v1/audio/transcriptions", "mistral-api", "speech_to_text"),
    ("api.x.ai", "POST", "/v1/images/generations", "xai-api", "image_generation"),
    ("queue.fal.run", "GET", "/fal-ai/flux/requests/abc/status", "fal-api", "metadata"),
    ("api.cohere.com", "POST", "/v2/chat", "cohere-api", "chat"),
    ("api.cohere.com", "POST", "/v2/embed", "cohere-api", "embeddings"),
    (
        "api.replicate.com",
        "POST",
        "/v1/models/black-forest-labs/flux-schnell/predictions",
        "replicate-api",
        "other",
    ),
    ("api.replicate.com", "POST", "/v1/files", "replicate-api", "file_upload"),
    ("api.bfl.ai", "POST", "/v1/flux-2-pro", "bfl-api", "image_generation"),
    ("api.eu.bfl.ai", "POST", "/v1/flux-pro-1.0-fill", "bfl-api", "image_edit"),
    ("api.lumalabs.ai", "POST", "/dream-machine/v1/generations", "luma-api", "video"),
    ("api.lumalabs.ai", "POST", "/dream-machine/v1/generations/image", "luma-api", "image_generation"),
    ("chatgpt.com", "POST", "/backend-api/f/conversation", "chatgpt-web", "chat"),
    ("chatgpt.com", "POST", "/backend-api/f/conversation/prepare", "chatgpt-web", "chat"),
    ("chat.openai.com", "POST", "/backend-api/conversation", "chatgpt-web", "chat"),
    ("chatgpt.com", "POST", "/backend-api/files", "chatgpt-web", "file_upload"),
    ("sdmntprwestus.oaiusercontent.com", "PUT", "/files/00000000/raw", "chatgpt-uploads", "file_upload"),
    (
        "claude.ai",
        "POST",
        "/api/organizations/org1/chat_conversations/conv1/completion",
        "claude-web",
        "chat",
    ),
    ("claude.ai", "POST", "/api/organizations/org1/chat_conversations", "claude-web", "chat"),
    ("claude.ai", "POST", "/api/org1/upload", "claude-web", "file_upload"),
    (
        "gemini.google.com",
        "POST",
        "/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate",
        "gemini-web",
        "chat",
    ),
    ("content-push.googleapis.com", "POST", "/upload/", "gemini-web-uploads", "file_upload"),
    ("push.clients6.google.com", "POST", "/upload/", "gemini-web-uploads", "file_upload"),
]


@pytest.mark.parametrize(("host", "method", "path", "tool_id", "capability"), CLASSIFY)
def test_classification(
    tools: dict[str, Tool], host: str, method: str, path: str, tool_id: str, capability: str
) -> None:
    tool, ep = _classify(tools, host, method, path)
    assert tool.id == tool_id
    assert ep.capability == Capability(capability), ep.id


@pytest.mark.parametrize(
    ("host", "method", "path", "capability"),
    [
        ("fal.run", "POST", "/fal-ai/flux/dev", "image_generation"),
        ("api.bfl.ai", "POST", "/v1/some/nested", "image_generation"),
    ],
)
def test_default_capability(
    tools: dict[str, Tool], host: str, method: str, path: str, capability: str
) -> None:
    tool = _tool_for_host(tools, host)
    assert _endpoint(tool, method, path) is None
    assert tool.default_capability == Capability(capability)


# --- (4) retention and training rules ------------------------------------------------------------


def _json_sets(ep: Endpoint) -> dict[str, JsonSet]:
    return {rw.path: rw for rw in ep.rewrites if isinstance(rw, JsonSet)}


def _query_sets(ep: Endpoint) -> dict[str, QuerySet]:
    return {rw.param: rw for rw in ep.rewrites if isinstance(rw, QuerySet)}


JSON_SET = [
    # host, method, path, json path, value, when, rule
    ("api.openai.com", "POST", "/v1/chat/completions", "store", False, "always", "retention.store"),
    ("api.openai.com", "POST", "/v1/responses", "store", False, "always", "retention.store"),
    ("api.openai.com", "POST", "/v1/responses", "background", False, "present", "retention.background"),
    (
        "api.anthropic.com",
        "POST",
        "/v1/messages",
        "**.cache_control.ttl",
        "5m",
        "present",
        "retention.cache_ttl",
    ),
    (
        "api.anthropic.com",
        "POST",
        "/v1/messages/batches",
        "**.cache_control.ttl",
        "5m",
        "present",
        "retention.cache_ttl",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/interactions",
        "store",
        False,
        "always",
        "retention.store",
    ),
    (
        "generativelanguage.googleapis.com",
        "POST",
        "/v1beta/interactions",
        "background",
        False,
        "present",
        "retention.background",
    ),
    ("api.mistral.ai", "POST", "/v1/conversations", "store", False, "always", "retention.store"),
    ("api.mistral.ai", "POST", "/v1/conversations/conv_1", "store", False, "always", "retention.store"),
    (
        "api.mistral.ai",
        "POST",
        "/v1/conversations/conv_1/restart",
        "store",
        False,
        "always",
        "retention.store",
    ),
    ("api.x.ai", "POST", "/v1/responses", "store", False, "always", "retention.store"),
    *[
        ("openrouter.ai", "POST", p, jp, v, "always", "retention.provider_routing")
        for p in ("/api/v1/chat/completions", "/api/v1/responses", "/api/v1/completions")
        for jp, v in (("provider.data_collection", "deny"), ("provider.zdr", True))
    ],
]


@pytest.mark.parametrize(("host", "method", "path", "json_path", "value", "when", "rule"), JSON_SET)
def test_json_set_rules(
    tools: dict[str, Tool],
    host: str,
    method: str,
    path: str,
    json_path: str,
    value: Any,
    when: str,
    rule: str,
) -> None:
    _, ep = _classify(tools, host, method, path)
    rw = _json_sets(ep).get(json_path)
    assert rw is not None, f"{ep.id}: no json_set on {json_path}"
    assert type(rw.value) is type(value) and rw.value == value  # `false`, not "false"
    assert rw.when == when
    assert rw.rule == rule


ENABLE_LOGGING = [
    ("POST", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM"),
    ("POST", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"),
    ("POST", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/with-timestamps"),
    ("POST", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream/with-timestamps"),
    ("POST", "/v1/speech-to-speech/21m00Tcm4TlvDq8ikWAM"),
    ("POST", "/v1/speech-to-speech/21m00Tcm4TlvDq8ikWAM/stream"),
    ("POST", "/v1/speech-to-text"),
    ("POST", "/v1/text-to-dialogue"),
    ("POST", "/v1/text-to-dialogue/stream"),
    ("GET", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input"),
    ("GET", "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/multi-stream-input"),
]


@pytest.mark.parametrize(
    "host", ["api.elevenlabs.io", "api.us.elevenlabs.io", "api.in.residency.elevenlabs.io"]
)
@pytest.mark.parametrize(("method", "path"), ENABLE_LOGGING)
def test_elevenlabs_zero_retention(tools: dict[str, Tool], host: str, method: str, path: str) -> None:
    _, ep = _classify(tools, host, method, path)
    rw = _query_sets(ep).get("enable_logging")
    assert rw is not None, ep.id
    assert rw.value == "false" and rw.when == "always" and not rw.only_if_query
    assert rw.rule == "retention.enable_logging"
    if method == "GET":
        assert ep.websocket and ep.capability == Capability.TEXT_TO_SPEECH


BLOCKED = [
    # host, method, path, block rule
    ("api.openai.com", "POST", "/v1/traces/ingest", "retention.trace_ingest"),
    ("api.openai.com", "POST", "/v1/fine_tuning/jobs", "retention.training"),
    ("api.anthropic.com", "POST", "/v1/files", "retention.server_state"),
    ("generativelanguage.googleapis.com", "POST", "/v1beta/cachedContents", "retention.server_state"),
    ("generativelanguage.googleapis.com", "PATCH", "/v1beta/cachedContents/abc", "retention.server_state"),
    ("api.mistral.ai", "POST", "/telemetry/v1/traces", "retention.telemetry"),
    ("api.mistral.ai", "POST", "/v1/fine_tuning/jobs", "retention.training"),
    ("api.replicate.com", "POST", "/v1/trainings", "retention.training"),
    ("chatgpt.com", "POST", "/ces/v1/t", "retention.telemetry"),
]


@pytest.mark.parametrize(("host", "method", "path", "rule"), BLOCKED)
def test_blocked_endpoints(tools: dict[str, Tool], host: str, method: str, path: str, rule: str) -> None:
    _, ep = _classify(tools, host, method, path)
    assert ep.block_rule == rule
    assert ep.block_message


NOT_BLOCKED = [
    ("api.openai.com", "POST", "/v1/chat/completions"),
    ("api.anthropic.com", "POST", "/v1/messages"),
    ("generativelanguage.googleapis.com", "POST", "/v1beta/models/gemini-2.5-pro:generateContent"),
    ("api.elevenlabs.io", "POST", "/v1/text-to-speech/abc"),
    ("chatgpt.com", "POST", "/backend-api/f/conversation"),
]


@pytest.mark.parametrize(("host", "method", "path"), NOT_BLOCKED)
def test_core_endpoints_not_blocked(tools: dict[str, Tool], host: str, method: str, path: str) -> None:
    _, ep = _classify(tools, host, method, path)
    assert ep.block_rule is None and not ep.consumer


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("host", ["chatgpt.com", "chat.openai.com"])
def test_chatgpt_anonymous_is_consumer(tools: dict[str, Tool], host: str, method: str) -> None:
    _, ep = _classify(tools, host, method, "/backend-anon/f/conversation")
    assert ep.consumer is True


def test_chatgpt_training_switch_forced_off(tools: dict[str, Tool]) -> None:
    _, ep = _classify(tools, "chatgpt.com", "PATCH", "/backend-api/settings/account_user_setting")
    assert ep.capability == Capability.SETTINGS
    rw = _query_sets(ep)["value"]
    assert rw.value == "false"
    assert rw.rule == "retention.training_setting"
    assert set(rw.only_if_query) == {"feature"}
    assert set(rw.only_if_query["feature"]) == {
        "training_allowed",
        "voice_training_allowed",
        "video_training_allowed",
        "codex_training_allowed_v2",
    }


def test_fal_storage_headers_on_every_request(tools: dict[str, Tool]) -> None:
    tool = tools["fal-api"]
    headers = {rw.name.lower(): rw for rw in tool.rewrites if isinstance(rw, HeaderSet)}
    assert headers["x-fal-store-io"].value == "0"
    assert headers["x-fal-store-io"].rule == "retention.store_io"
    lifecycle = headers["x-fal-object-lifecycle-preference"]
    assert lifecycle.rule == "retention.media_expiry"
    seconds = json.loads(lifecycle.value)["expiration_duration_seconds"]
    assert isinstance(seconds, int) and 0 < seconds <= 24 * 3600


def test_voice_clone_endpoints_have_no_rewrite_that_hides_them(tools: dict[str, Tool]) -> None:
    """Voice samples of real people: every ElevenLabs clone path is classified voice_clone."""
    tool = tools["elevenlabs-api"]
    for path in ("/v1/voices/add", "/v1/voices/pvc", "/v1/voices/pvc/v1/samples", "/v1/voices/abc/edit"):
        ep = _endpoint(tool, "POST", path)
        assert ep is not None and ep.capability == Capability.VOICE_CLONE, path
