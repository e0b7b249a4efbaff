"""gateway/tools/rewrite.py: retention, training and tenant rewrites.

Each rewrite is applied to a fresh body; the expected body and records are spelt out in full.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from gateway.config.models import Rewrite
from gateway.decision import RewriteRecord
from gateway.tools.rewrite import apply_rewrites, pin_tenant

_REWRITE = TypeAdapter(Rewrite)


def rw(**fields: Any) -> Rewrite:
    return _REWRITE.validate_python(fields)


STORE = rw(kind="json_set", path="store", value=False, rule="retention.store")
STORE_PRESENT = rw(kind="json_set", path="store", value=False, when="present", rule="retention.store")
TTL = rw(kind="json_set", path="**.cache_control.ttl", value="5m", when="present", rule="retention.cache_ttl")
ZDR = rw(kind="json_set", path="provider.zdr", value=True, rule="retention.provider_routing")
ALL_STORE = rw(kind="json_set", path="items.*.store", value=False, rule="retention.store")


# --- json_set ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rewrite", "body", "expected", "records"),
    [
        (STORE, {"model": "m"}, {"model": "m", "store": False}, [("body.store", "added")]),
        (STORE, {"store": True}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": "false"}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": 0}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": None}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": [False]}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": {"x": 1}}, {"store": False}, [("body.store", "set")]),
        (STORE, {"store": False}, {"store": False}, []),
        (STORE_PRESENT, {"model": "m"}, {"model": "m"}, []),
        (STORE_PRESENT, {"store": 1}, {"store": False}, [("body.store", "set")]),
        (ZDR, {}, {"provider": {"zdr": True}}, [("body.provider.zdr", "added")]),
        (ZDR, {"provider": {"order": ["a"]}}, {"provider": {"order": ["a"], "zdr": True}},
         [("body.provider.zdr", "added")]),
        (ZDR, {"provider": {"zdr": "yes"}}, {"provider": {"zdr": True}}, [("body.provider.zdr", "set")]),
        (ZDR, {"provider": None}, {"provider": {"zdr": True}}, [("body.provider.zdr", "added")]),
        (ZDR, {"provider": "openai"}, {"provider": {"zdr": True}},
         [("body.provider", "set"), ("body.provider.zdr", "added")]),
        (ALL_STORE, {"items": [{"store": True}, {"store": False}, {"x": 1}]},
         {"items": [{"store": False}, {"store": False}, {"x": 1}]}, [("body.items[0].store", "set")]),
    ],
)
def test_json_set(rewrite: Rewrite, body: Any, expected: Any, records: list[tuple[str, str]]) -> None:
    """json_set forces the value by type and value, adds it when `always`, and records every change."""
    result = apply_rewrites([rewrite], body, (), ())
    assert result.body == expected
    assert json.dumps(result.body) == json.dumps(expected)  # type, not only equality (0 == False)
    assert [(r.target, r.change) for r in result.records] == records
    assert result.body_changed is bool(records)
    assert all(r.rule == rewrite.rule for r in result.records)


def test_json_set_does_not_add_to_non_object_bodies() -> None:
    """A JSON array or a non-JSON body (None) is left alone by `always`."""
    for body in ([{"store": True}], None, "text"):
        result = apply_rewrites([STORE], copy.deepcopy(body), (), ())
        assert result.body == body
        assert not result.body_changed and result.records == ()


def test_cache_ttl_wildcard_in_nested_anthropic_blocks() -> None:
    """`**.cache_control.ttl` reaches every depth, and only where a ttl is present."""
    body = {
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
                {"type": "tool_result", "content": [
                    {"type": "text", "text": "c", "cache_control": {"type": "ephemeral", "ttl": 3600}},
                ]},
            ]},
        ],
        "cache_control": {"ttl": "5m"},
    }
    result = apply_rewrites([TTL], body, (), ())
    assert body["system"][0]["cache_control"]["ttl"] == "5m"
    content = body["messages"][0]["content"]
    assert content[0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert content[1]["cache_control"] == {"type": "ephemeral"}
    assert content[2]["content"][0]["cache_control"]["ttl"] == "5m"
    assert sorted(r.target for r in result.records) == [
        "body.messages[0].content[0].cache_control.ttl",
        "body.messages[0].content[2].content[0].cache_control.ttl",
        "body.system[0].cache_control.ttl",
    ]
    assert result.body_changed


def test_forced_values_are_copies() -> None:
    """A forced object value is copied, so later edits to one body cannot leak into the rule."""
    rewrite = rw(kind="json_set", path="opts", value={"a": [1]}, rule="r.x")
    first = apply_rewrites([rewrite], {}, (), ()).body
    first["opts"]["a"].append(2)
    second = apply_rewrites([rewrite], {}, (), ()).body
    assert second == {"opts": {"a": [1]}}


# --- json_remove ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected", "targets"),
    [
        ("metadata", {"metadata": {"a": 1}, "m": 1}, {"m": 1}, ["body.metadata"]),
        ("metadata", {"m": 1}, {"m": 1}, []),
        ("**.metadata", {"metadata": 1, "x": [{"metadata": 2}, {"y": {"metadata": 3}}]},
         {"x": [{}, {"y": {}}]}, ["body.x[1].y.metadata", "body.x[0].metadata", "body.metadata"]),
        ("items.*", {"items": [1, 2, 3]}, {"items": []}, ["body.items[2]", "body.items[1]", "body.items[0]"]),
    ],
)
def test_json_remove(path: str, body: Any, expected: Any, targets: list[str]) -> None:
    """json_remove deletes every match (list items from the end, so indices stay valid)."""
    result = apply_rewrites([rw(kind="json_remove", path=path, rule="retention.metadata")], body, (), ())
    assert result.body == expected
    assert sorted(r.target for r in result.records) == sorted(targets)
    assert {r.change for r in result.records} <= {"removed"}
    assert result.body_changed is bool(targets)


# --- query_set --------------------------------------------------------------------------------------

TRAINING = rw(
    kind="query_set", param="value", value="false", rule="retention.training_setting",
    only_if_query={"feature": ["training_allowed", "voice_training_allowed"]},
)
LOGGING = rw(kind="query_set", param="enable_logging", value="false", rule="retention.enable_logging")
LOGGING_PRESENT = rw(kind="query_set", param="enable_logging", value="false", when="present", rule="r.l")


@pytest.mark.parametrize(
    ("rewrite", "query", "expected", "change"),
    [
        (TRAINING, (("feature", "training_allowed"), ("value", "true")),
         (("feature", "training_allowed"), ("value", "false")), "set"),
        (TRAINING, (("feature", "voice_training_allowed"), ("value", "true")),
         (("feature", "voice_training_allowed"), ("value", "false")), "set"),
        (TRAINING, (("feature", "training_allowed"), ("value", "false")), None, None),
        (TRAINING, (("feature", "dark_mode"), ("value", "true")), None, None),
        (TRAINING, (("value", "true"),), None, None),
        (TRAINING, (("feature", "training_allowed"), ("feature", "dark_mode"), ("value", "true")), None, None),
        (TRAINING, (("feature", "training_allowed"),), (("feature", "training_allowed"), ("value", "false")),
         "added"),
        (LOGGING, (), (("enable_logging", "false"),), "added"),
        (LOGGING, (("a", "1"), ("enable_logging", "true")), (("a", "1"), ("enable_logging", "false")), "set"),
        (LOGGING, (("enable_logging", "false"), ("enable_logging", "true")), (("enable_logging", "false"),),
         "set"),
        (LOGGING, (("enable_logging", "false"),), None, None),
        (LOGGING_PRESENT, (("a", "1"),), None, None),
        (LOGGING_PRESENT, (("enable_logging", "1"),), (("enable_logging", "false"),), "set"),
    ],
)
def test_query_set(
    rewrite: Rewrite, query: tuple[tuple[str, str], ...], expected: tuple[tuple[str, str], ...] | None,
    change: str | None,
) -> None:
    """query_set forces one value; only_if_query limits it to the listed features (ChatGPT training toggles)."""
    result = apply_rewrites([rewrite], None, query, ())
    assert result.query == (query if expected is None else expected)
    assert result.query_changed is (expected is not None)
    assert [(r.rule, r.target, r.change) for r in result.records] == (
        [] if change is None else [(rewrite.rule, "query." + rewrite.param, change)]
    )


# --- headers ----------------------------------------------------------------------------------------

FAL = rw(kind="header_set", name="X-Fal-Store-IO", value="0", rule="retention.fal_store")
DROP = rw(kind="header_remove", name="X-Debug-Log", rule="retention.debug")


@pytest.mark.parametrize(
    ("rewrite", "headers", "expected", "change"),
    [
        (FAL, (("a", "1"),), (("a", "1"), ("X-Fal-Store-IO", "0")), "added"),
        (FAL, (("x-fal-store-io", "1"), ("a", "1")), (("a", "1"), ("X-Fal-Store-IO", "0")), "set"),
        (FAL, (("X-FAL-STORE-IO", "0"),), None, None),
        (FAL, (("x-fal-store-io", "0"), ("X-Fal-Store-IO", "1")), (("X-Fal-Store-IO", "0"),), "set"),
        (DROP, (("x-debug-log", "1"), ("a", "1"), ("X-DEBUG-LOG", "2")), (("a", "1"),), "removed"),
        (DROP, (("a", "1"),), None, None),
    ],
)
def test_headers(
    rewrite: Rewrite, headers: tuple[tuple[str, str], ...], expected: tuple[tuple[str, str], ...] | None,
    change: str | None,
) -> None:
    """header_set and header_remove match names case-insensitively and leave other headers in order."""
    result = apply_rewrites([rewrite], None, (), headers)
    assert result.headers == (headers if expected is None else expected)
    assert result.headers_changed is (expected is not None)
    assert [(r.target, r.change) for r in result.records] == (
        [] if change is None else [("header." + rewrite.name.lower(), change)]
    )


@pytest.mark.parametrize(
    ("headers", "expected", "record"),
    [
        ((), (("OpenAI-Organization", "org-studio"),), RewriteRecord("tenant.pinned", "header.openai-organization",
                                                                      "added")),
        ((("openai-organization", "org-personal"), ("a", "1")),
         (("a", "1"), ("OpenAI-Organization", "org-studio")),
         RewriteRecord("tenant.pinned", "header.openai-organization", "set")),
        ((("OPENAI-ORGANIZATION", "org-studio"),), (("OPENAI-ORGANIZATION", "org-studio"),), None),
    ],
)
def test_pin_tenant(
    headers: tuple[tuple[str, str], ...], expected: tuple[tuple[str, str], ...], record: RewriteRecord | None
) -> None:
    """pin_tenant replaces a conflicting client tenant and records `tenant.pinned`; a matching one is kept."""
    pinned, got = pin_tenant(headers, "OpenAI-Organization", "org-studio")
    assert pinned == expected
    assert got == record


def test_records_never_hold_values() -> None:
    """RewriteRecords name rule, target and change; neither old nor new values appear."""
    secret_old, secret_new = "client-secret-value-123", "forced-secret-value-456"
    rewrites = [
        rw(kind="json_set", path="opt", value=secret_new, rule="r.json"),
        rw(kind="json_remove", path="gone", rule="r.remove"),
        rw(kind="query_set", param="q", value=secret_new, rule="r.query"),
        rw(kind="header_set", name="h", value=secret_new, rule="r.header"),
        rw(kind="header_remove", name="g", rule="r.hremove"),
    ]
    result = apply_rewrites(
        rewrites, {"opt": secret_old, "gone": secret_old}, (("q", secret_old),), (("h", secret_old), ("g", secret_old))
    )
    _, tenant = pin_tenant((("t", secret_old),), "t", secret_new)
    records = [*result.records, tenant]
    assert len(records) == 6
    text = repr(records) + json.dumps([r.as_dict() for r in records if r])
    assert secret_old not in text and secret_new not in text


def test_rewrites_apply_in_order() -> None:
    """Later rewrites see the result of earlier ones."""
    rewrites = [
        rw(kind="json_set", path="store", value=True, rule="r.a"),
        rw(kind="json_remove", path="store", rule="r.b"),
    ]
    result = apply_rewrites(rewrites, {}, (), ())
    assert result.body == {}
    assert [(r.rule, r.change) for r in result.records] == [("r.a", "added"), ("r.b", "removed")]
