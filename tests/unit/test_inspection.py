"""gateway/inspection.py: decode, parse, rewrite, extract and decide one request body (real catalog)."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import brotli
import pytest
import zstandard

from gateway.config import load_tool_catalog
from gateway.config.models import Action, Limits, Production, ToolGrant
from gateway.content.inputs import Inputs
from gateway.decision import Reason
from gateway.errors import UninspectableError
from gateway.inspection import HttpRequest, Inspection, inspect_request, split_target
from gateway.tools.catalog import Catalog

LIMITS = Limits()
PRODUCTION = Production(
    id="nightfall", name="Nightfall", kind="scripted",
    tools={
        "openai-api": ToolGrant(tenant="org-studio"),
        "anthropic-api": ToolGrant(),
        "elevenlabs-api": ToolGrant(),
        "openrouter-api": ToolGrant(),
        "chatgpt-web": ToolGrant(),
    },
)
OPENAI_HOST = "api.openai.com"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_tool_catalog())


def inspect(
    catalog: Catalog,
    body: bytes | dict[str, Any],
    *,
    host: str = OPENAI_HOST,
    method: str = "POST",
    target: str = CHAT,
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),),
    limits: Limits = LIMITS,
    production: Production = PRODUCTION,
    findings: Any = None,
) -> Inspection:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    classification = catalog.classify(host, method, target)
    assert classification is not None
    request = HttpRequest(method, host, target, headers, raw)
    return inspect_request(request, classification, production, [], limits, findings)


def forwarded(result: Inspection, original: bytes) -> dict[str, Any]:
    return json.loads(original if result.body is None else result.body)


# --- store forced false -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "change"),
    [
        (b'{"model":"gpt-4o","messages":[]}', "added"),
        (b'{"model":"gpt-4o","store":true}', "set"),
        (b'{"model":"gpt-4o","store":"false"}', "set"),
        (b'{"model":"gpt-4o","store":null}', "set"),
    ],
)
def test_store_forced_false(catalog: Catalog, raw: bytes, change: str) -> None:
    """Chat completions always reach OpenAI with `store: false`, recorded as a rewrite."""
    result = inspect(catalog, raw)
    assert result.decision.action == Action.ALLOW
    assert result.body is not None
    assert forwarded(result, raw)["store"] is False
    assert ("retention.store", "body.store", change) in [(r.rule, r.target, r.change) for r in result.rewrites]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"store":true,"store":true}',
        b'{"store":false,"store":true}',
        b'{"store":true,"model":"m","store":false}',
        b'{"store":false,"store":false,"store_x":1}',
    ],
)
def test_duplicate_keys_forward_exactly_one_forced_value(catalog: Catalog, raw: bytes) -> None:
    """Duplicate keys are ambiguous to providers: exactly one `store` key, false, is forwarded."""
    result = inspect(catalog, raw)
    assert result.body is not None
    assert result.body.count(b'"store"') == 1
    assert b'"store":false' in result.body
    assert b'"store":true' not in result.body
    assert ("content.duplicate_keys", "body.store", "deduplicated") in [
        (r.rule, r.target, r.change) for r in result.rewrites
    ]


def test_unchanged_body_is_not_reserialised(catalog: Catalog) -> None:
    """A body that needs no change is forwarded as sent (body None), byte for byte."""
    raw = b'{ "model" : "gpt-4o",\n "store": false, "prompt_cache_retention": "in_memory", "messages": [] }'
    result = inspect(catalog, raw)
    assert result.decision.action == Action.ALLOW
    assert result.body is None
    assert [r.rule for r in result.rewrites] == ["tenant.pinned"]  # the header, not the body
    assert result.target is None


ADDED = b'"store":false,"prompt_cache_retention":"in_memory"'
"""what the OpenAI chat endpoint's retention rewrites add to a body that sets neither."""
MESSAGES = b'{"messages":[{"role":"user","content":"caf\xc3\xa9 \\u00e9 \\ud83c\\udfac"}]'
"""raw UTF-8 and \\u escapes (a surrogate pair among them): re-serialising would change how they are written."""


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        (b'{ "model" : "gpt-4o",\n "messages": [] }\n',
         b'{ "model" : "gpt-4o",\n "messages": [] ,' + ADDED + b"}\n"),
        (MESSAGES + b',"temperature":1.50}', MESSAGES + b',"temperature":1.50,' + ADDED + b"}"),
        (b'{}', b"{" + ADDED + b"}"),
        (b'{ }\r\n', b"{ " + ADDED + b"}\r\n"),
    ],
)
def test_added_keys_are_appended_to_the_clients_bytes(catalog: Catalog, raw: bytes, sent: bytes) -> None:
    """When the rewrites only add top-level keys, the client's bytes go out as sent plus those members:
    no re-serialisation (escapes, spacing and number formats kept), and still one `store`, false."""
    result = inspect(catalog, raw)
    assert result.body == sent
    assert json.loads(sent)["store"] is False
    assert {(r.target, r.change) for r in result.rewrites if r.target.startswith("body.")} == {
        ("body.store", "added"), ("body.prompt_cache_retention", "added")}


@pytest.mark.parametrize(
    "raw",
    [
        '{"model":"gpt-4o","messages":[]}'.encode("utf-16"),        # JSON in UTF-16: Python reads it, splicing cannot
        '{"model":"gpt-4o","messages":[]}'.encode("utf-32"),
        b'\xef\xbb\xbf{"model":"gpt-4o","messages":[]}',          # a UTF-8 byte-order mark
        b'{"model":"gpt-4o","store":true,"messages":[]}',              # a value changed, not only added
    ],
)
def test_other_body_changes_are_reserialised_as_utf8(catalog: Catalog, raw: bytes) -> None:
    """Anything but a plain UTF-8 object with only added keys is forwarded re-serialised, as UTF-8."""
    result = inspect(catalog, raw)
    assert result.body is not None
    assert json.loads(result.body.decode("utf-8")) == {
        "model": "gpt-4o", "store": False, "prompt_cache_retention": "in_memory", "messages": []}
    assert result.body.count(b'"store"') == 1


# --- content encodings ------------------------------------------------------------------------------

PLAIN = b'{"model":"gpt-4o","store":false,"prompt_cache_retention":"in_memory","messages":[]}'


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("br", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("GZIP", gzip.compress),
    ],
)
def test_encoded_bodies_are_decoded_and_forwarded_decoded(catalog: Catalog, coding: str, encode: Any) -> None:
    """Compressed bodies are inspected decoded and forwarded decoded (the adapter drops Content-Encoding)."""
    raw = encode(PLAIN)
    result = inspect(catalog, raw, headers=(("content-type", "application/json"), ("content-encoding", coding)))
    assert result.decision.action == Action.ALLOW
    assert result.body == PLAIN
    assert result.decoded_bytes == len(PLAIN)


def test_encoded_body_that_needs_rewriting(catalog: Catalog) -> None:
    """A gzip body missing `store` is decoded, rewritten and forwarded as plain JSON."""
    raw = gzip.compress(b'{"model":"gpt-4o","store":true}')
    result = inspect(catalog, raw, headers=(("content-type", "application/json"), ("content-encoding", "gzip")))
    assert result.body is not None
    assert json.loads(result.body)["store"] is False


@pytest.mark.parametrize(
    ("headers", "raw", "limits", "rule"),
    [
        ((("content-encoding", "compress"),), b"\x1f\x9d...", LIMITS, "content.uninspectable"),
        ((("content-encoding", "gzip"),), b"not gzip at all", LIMITS, "content.uninspectable"),
        ((("content-encoding", "gzip"),), gzip.compress(b"{" + b" " * 5000 + b"}"),
         Limits(max_decoded_bytes=1024), "content.too_large"),
        ((("content-type", "application/json"),), b'{"a":' + b" " * 2048 + b"1}",
         Limits(max_body_bytes=1024), "content.too_large"),
        ((("content-type", "application/json"),), b'{"model": "gpt-4o", ', LIMITS, "content.uninspectable"),
        ((("content-type", "application/json; charset=utf-8"),), b"\xff\xfe{}", LIMITS, "content.uninspectable"),
        ((("content-type", "application/json"),), b'{"a": NaN}', LIMITS, "content.uninspectable"),
        ((("content-type", "application/json"),), b'{"a":' * 10 + b"1" + b"}" * 10,
         Limits(max_json_depth=4), "content.too_deep"),
        ((("content-type", "application/json"),), b"[" * 100_000 + b"]" * 100_000, LIMITS, "content.too_deep"),
        ((("content-type", "text/plain"),), b"store=true", LIMITS, "retention.unenforceable"),
        ((("content-type", "application/x-www-form-urlencoded"),), b"store=true", LIMITS,
         "retention.unenforceable"),
        ((), b"store=true&model=gpt-4o", LIMITS, "retention.unenforceable"),
    ],
)
def test_uninspectable_bodies_block(
    catalog: Catalog, headers: tuple[tuple[str, str], ...], raw: bytes, limits: Limits, rule: str
) -> None:
    """Anything that cannot be inspected within limits is blocked with its rule, never forwarded as is."""
    result = inspect(catalog, raw, headers=headers, limits=limits)
    assert result.decision.action == Action.BLOCK
    assert rule in result.decision.rules
    assert result.body is None or b"store" not in result.body or b'"store":false' in result.body


def test_non_json_body_to_endpoint_without_json_rewrites(catalog: Catalog) -> None:
    """A non-JSON body where no JSON rewrite applies is not a retention problem (transcription uploads)."""
    multipart = (
        b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
        b"--x\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nstore=true\r\n--x--\r\n"
    )
    result = inspect(catalog, multipart, target="/v1/audio/transcriptions",
                     headers=(("content-type", "multipart/form-data; boundary=x"),))
    assert "retention.unenforceable" not in result.decision.rules
    assert result.decision.action == Action.ALLOW


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("content-type", "text/plain"),),
        (("content-type", "text/json"),),
        (("Content-Type", "application/vnd.api+json"),),
    ],
)
def test_json_under_other_content_types_is_rewritten(catalog: Catalog, headers: tuple[tuple[str, str], ...]) -> None:
    """JSON the provider would read as JSON (no type, text/plain, +json) is parsed and gets `store: false`."""
    result = inspect(catalog, b' {"store": true}', headers=headers)
    assert result.decision.action == Action.ALLOW
    assert result.body is not None
    assert json.loads(result.body)["store"] is False


# --- query and tenant rewrites ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected_query"),
    [
        ("/v1/text-to-speech/voice1", [("enable_logging", "false")]),
        ("/v1/text-to-speech/voice1/stream?output_format=mp3_44100",
         [("output_format", "mp3_44100"), ("enable_logging", "false")]),
        ("/v1/text-to-speech/voice1?enable_logging=true", [("enable_logging", "false")]),
        ("/v1/text-to-speech/voice1?enable_logging=true&enable_logging=true", [("enable_logging", "false")]),
        ("/v1/text-to-speech/voice1?enable%5Flogging=true", [("enable_logging", "false")]),
        ("/v1/text-to-speech/voice1?enable_logging=False", [("enable_logging", "false")]),
    ],
)
def test_elevenlabs_tts_forwards_enable_logging_false(
    catalog: Catalog, target: str, expected_query: list[tuple[str, str]]
) -> None:
    """ElevenLabs text-to-speech is forwarded with exactly one `enable_logging=false` in its target."""
    result = inspect(catalog, {"text": "hello"}, host="api.elevenlabs.io", target=target)
    assert result.target is not None
    parts = urlsplit(result.target)
    assert parts.path == target.split("?")[0]
    assert parse_qsl(parts.query) == expected_query
    assert "retention.enable_logging" in [r.rule for r in result.rewrites]


def test_elevenlabs_already_false_target_unchanged(catalog: Catalog) -> None:
    """A target that already says enable_logging=false is forwarded as sent."""
    result = inspect(catalog, {"text": "hi"}, host="api.elevenlabs.io",
                     target="/v1/text-to-speech/v?enable_logging=false")
    assert result.target is None


@pytest.mark.parametrize(
    ("headers", "change"),
    [
        ((("content-type", "application/json"),), "added"),
        ((("content-type", "application/json"), ("openai-organization", "org-personal")), "set"),
    ],
)
def test_tenant_pinned(catalog: Catalog, headers: tuple[tuple[str, str], ...], change: str) -> None:
    """The production's OpenAI organisation replaces whatever the client sent, and it is recorded."""
    result = inspect(catalog, PLAIN, headers=headers)
    assert result.headers is not None
    assert [v for k, v in result.headers if k.lower() == "openai-organization"] == ["org-studio"]
    assert ("tenant.pinned", "header.openai-organization", change) in [
        (r.rule, r.target, r.change) for r in result.rewrites
    ]


def test_matching_tenant_not_rewritten(catalog: Catalog) -> None:
    """A request already carrying the studio tenant keeps its headers."""
    result = inspect(catalog, PLAIN, headers=(("content-type", "application/json"),
                                               ("OpenAI-Organization", "org-studio")))
    assert result.headers is None
    assert result.rewrites == ()
    assert result.body is None


def test_openrouter_provider_zdr(catalog: Catalog) -> None:
    """OpenRouter requests are routed only to zero-data-retention providers."""
    result = inspect(catalog, {"model": "x", "provider": {"order": ["a"]}}, host="openrouter.ai",
                     target="/api/v1/chat/completions")
    assert result.body is not None
    assert json.loads(result.body)["provider"]["zdr"] is True


# --- extractor and access reasons -------------------------------------------------------------------


def test_findings_hook_decides(catalog: Catalog) -> None:
    """The findings hook sees the extracted Inputs; its reasons combine with access reasons; the most severe wins."""

    seen: list[Inputs] = []

    def findings(inputs: Inputs) -> list[Reason]:
        seen.append(inputs)
        return [Reason("likeness.face", Action.HOLD), Reason("pii.email", Action.NOTIFY)]

    result = inspect(catalog, b'{"messages":[{"role":"user","content":"draw the lead"}]}', findings=findings)
    assert seen == [result.inputs]
    assert not result.inputs.empty
    assert result.decision.action == Action.HOLD
    assert result.decision.rules == ("likeness.face", "pii.email")


def test_findings_hook_inspection_error_blocks(catalog: Catalog) -> None:
    """An InspectionError from the findings hook becomes a block with its rule, not an exception."""

    def findings(inputs: Inputs) -> list[Reason]:
        raise UninspectableError("encrypted zip member", location="multipart.file")

    result = inspect(catalog, PLAIN, findings=findings)
    assert result.decision.action == Action.BLOCK
    assert result.decision.reasons[0].rule == "content.uninspectable"
    assert result.decision.reasons[0].location == "multipart.file"


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/v1/x", "/v1/x", ()),
        ("/v1/x?a=1&b=&a=2", "/v1/x", (("a", "1"), ("b", ""), ("a", "2"))),
        ("/v1/x?", "/v1/x", ()),
    ],
)
def test_split_target(target: str, path: str, query: tuple[tuple[str, str], ...]) -> None:
    """split_target keeps repeated and blank parameters in order."""
    assert split_target(target) == (path, query)
