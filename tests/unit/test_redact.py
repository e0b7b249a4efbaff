"""gateway/redact.py: placeholders out, original values back in, for JSON and for SSE streams.

Request bodies go through the real content collector, so the locations a plan is applied to are
the ones detection really reports. Streams are cut at every byte and every character boundary.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from gateway.content import ContentLimits, RequestContent, extract_inputs
from gateway.content.inputs import TextItem
from gateway.content.jsonbody import dump_json, parse_json
from gateway.detect.finding import Finding
from gateway.errors import InspectionError
from gateway.redact import (
    MAX_HOLD,
    Mapping,
    Redaction,
    RedactionError,
    Restorer,
    StreamFormat,
    StreamRestorer,
    apply_to_json,
    plan_redaction,
    redact_text,
)

LOC = "body.messages[0].content"
LOC2 = "body.messages[1].content"

PII = ("pii", "email")
PHONE = ("pii", "phone")
TALENT = ("talent_name", "talent-eileen")
TITLE = ("confidential", "title")
CHARACTER = ("confidential", "character")
PLACE = ("confidential", "location")
OTHER = ("confidential", "other")


def at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """The span of the `nth` occurrence of `needle` in `text`."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return start, start + len(needle)


def finding(kind: tuple[str, str], location: str, span: tuple[int, int] | None, detail: str = "") -> Finding:
    return Finding(kind[0], kind[1], location, 1.0, "test", span, detail)  # type: ignore[arg-type]


Mark = tuple[int, str, tuple[str, str]] | tuple[int, str, tuple[str, str], int]


def plan_for(texts: Sequence[str], marks: Sequence[Mark],
             mapping: Mapping | None = None) -> tuple[list[TextItem], Redaction]:
    """Texts at LOC, LOC2, ...; marks are (text index, needle, kind[, occurrence])."""
    items = [TextItem(text, f"body.messages[{n}].content") for n, text in enumerate(texts)]
    findings = [finding(mark[2], items[mark[0]].location, at(texts[mark[0]], mark[1], *mark[3:])) for mark in marks]
    return items, plan_redaction(items, findings, mapping)


def redacted(texts: Sequence[str], marks: Sequence[Any], mapping: Mapping | None = None) -> list[str]:
    items, plan = plan_for(texts, marks, mapping)
    return [redact_text(plan, item) for item in items]


# --- placeholder assignment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "marks", "expected"),
    [
        pytest.param(["Eileen Collins met Eileen Collins"],
                     [(0, "Eileen Collins", TALENT), (0, "Eileen Collins", TALENT, 1)],
                     ["[PERSON_1] met [PERSON_1]"], id="repeated value, one placeholder"),
        pytest.param(["Ask Eileen  Collins", "EILEEN COLLINS said no"],
                     [(0, "Eileen  Collins", TALENT), (1, "EILEEN COLLINS", TALENT)],
                     ["Ask [PERSON_1]", "[PERSON_1] said no"], id="case and whitespace across messages"),
        pytest.param(["mail Eileen@Example.com", "cc eileen@example.COM"],
                     [(0, "Eileen@Example.com", PII), (1, "eileen@example.COM", PII)],
                     ["mail [EMAIL_1]", "cc [EMAIL_1]"], id="emails compared lower-cased"),
        pytest.param(["call (415) 555-0132 or 415.555.0132 or +1 415 555 0132 or 0044 20 7946 0958 / +44 20 7946 0958"],
                     [(0, "(415) 555-0132", PHONE), (0, "415.555.0132", PHONE), (0, "+1 415 555 0132", PHONE),
                      (0, "0044 20 7946 0958", PHONE), (0, "+44 20 7946 0958", PHONE)],
                     ["call [PHONE_1] or [PHONE_1] or [PHONE_2] or [PHONE_3] / [PHONE_3]"],
                     id="phones: digits, or E.164 when international"),
        pytest.param(["Eileen Collins and Sam Rowe and Eileen Collins"],
                     [(0, "Eileen Collins", TALENT), (0, "Sam Rowe", TALENT), (0, "Eileen Collins", TALENT, 1)],
                     ["[PERSON_1] and [PERSON_2] and [PERSON_1]"], id="numbered by first appearance"),
        pytest.param(["Eileen Collins plays Collins"],
                     [(0, "Collins", CHARACTER), (0, "Eileen Collins", TALENT), (0, "Collins", CHARACTER, 1)],
                     ["[PERSON_1] plays [CHARACTER_1]"], id="overlap: the longest span wins"),
        pytest.param(["Northern Lights Hotel"],
                     [(0, "Northern Lights", TITLE), (0, "Lights Hotel", PLACE)],
                     ["[TITLE_1] Hotel"], id="overlap of equal length: the earliest wins"),
        pytest.param(["Northern Lights"],
                     [(0, "Northern Lights", PLACE), (0, "Northern Lights", TITLE)],
                     ["[TITLE_1]"], id="same span twice: the category order decides"),
        pytest.param(["EileenCollins"],
                     [(0, "Eileen", TALENT), (0, "Collins", CHARACTER)],
                     ["[PERSON_1][CHARACTER_1]"], id="adjacent spans stay separate"),
        pytest.param(["Northern Lights: Mara at Blackwater, code Falcon, mara@x.io, 415-555-0132"],
                     [(0, "Northern Lights", TITLE), (0, "Mara", CHARACTER), (0, "Blackwater", PLACE),
                      (0, "Falcon", OTHER), (0, "mara@x.io", PII), (0, "415-555-0132", PHONE)],
                     ["[TITLE_1]: [CHARACTER_1] at [LOCATION_1], code [TERM_1], [EMAIL_1], [PHONE_1]"],
                     id="every category"),
        pytest.param(["Mara", "Mara"],
                     [(0, "Mara", CHARACTER), (1, "Mara", TALENT)],
                     ["[CHARACTER_1]", "[CHARACTER_1]"], id="a value keeps its first category"),
        pytest.param(["see [PERSON_1] and [ person 2 ]: Eileen"],
                     [(0, "Eileen", TALENT)],
                     ["see [PERSON_1] and [ person 2 ]: [PERSON_3]"], id="bracketed placeholders in the request"),
        pytest.param(["PERSON_1 meets Eileen", "x"], [(0, "Eileen", TALENT)],
                     ["PERSON_1 meets [PERSON_2]", "x"], id="bare placeholders in the request"),
        pytest.param(["  "], [], ["  "], id="nothing to redact"),
    ],
)
def test_placeholder_assignment(texts: list[str], marks: list[Any], expected: list[str]) -> None:
    """The same value gets the same placeholder everywhere; overlaps keep the longest span."""
    assert redacted(texts, marks) == expected


def test_ip_reference_roles_choose_the_category() -> None:
    text = "Northern Lights with Mara and the Loom"
    item = TextItem(text, LOC)
    findings = [
        finding(("ip_reference", "ip-1"), LOC, at(text, "Northern Lights"), "title"),
        finding(("ip_reference", "ip-1"), LOC, at(text, "Mara"), "character; obfuscated"),
        finding(("ip_reference", "ip-1"), LOC, at(text, "Loom"), "term"),
    ]
    assert redact_text(plan_redaction([item], findings), item) == "[TITLE_1] with [CHARACTER_1] and the [TERM_1]"


def test_a_previous_mapping_keeps_the_conversation_consistent() -> None:
    """The second request reuses the first's placeholders and continues their numbering."""
    _, first = plan_for(["Eileen Collins"], [(0, "Eileen Collins", TALENT)])
    _, second = plan_for(["Sam Rowe and eileen collins"],
                         [(0, "Sam Rowe", TALENT), (0, "eileen collins", TALENT)], first.mapping)
    assert [r.placeholder for r in second.replacements] == ["[PERSON_2]", "[PERSON_1]"]
    assert len(first.mapping) == 1, "the previous mapping is not changed"
    assert len(second.mapping) == 2


def test_counts_are_per_category_and_content_free() -> None:
    _, plan = plan_for(["Eileen Collins, Eileen Collins, e@x.io"],
                       [(0, "Eileen Collins", TALENT), (0, "Eileen Collins", TALENT, 1), (0, "e@x.io", PII)])
    assert plan.counts() == {"PERSON": 2, "EMAIL": 1}
    assert plan.mapping.counts() == {"PERSON": 1, "EMAIL": 1}


@pytest.mark.parametrize(
    ("texts", "findings"),
    [
        pytest.param([TextItem("abc", LOC)], [finding(TALENT, LOC, None)], id="no span"),
        pytest.param([TextItem("abc", LOC)], [finding(TALENT, LOC, (1, 9))], id="span past the end"),
        pytest.param([TextItem("abc", LOC)], [finding(TALENT, LOC, (2, 2))], id="empty span"),
        pytest.param([TextItem("abc", LOC)], [finding(TALENT, LOC2, (0, 1))], id="no such text item"),
        pytest.param([TextItem("abc", LOC), TextItem("abd", LOC)], [finding(TALENT, LOC, (0, 1))],
                     id="two items at one location"),
        pytest.param([TextItem("abc", LOC)], [finding(("face", "talent-1"), LOC, (0, 1))], id="not a text finding"),
    ],
)
def test_unplannable_findings_raise(texts: list[TextItem], findings: list[Finding]) -> None:
    """A finding the plan cannot honour fails the request (closed), never passes it unredacted."""
    with pytest.raises(RedactionError) as raised:
        plan_redaction(texts, findings)
    assert isinstance(raised.value, InspectionError)
    assert raised.value.rule == "content.unredactable"


# --- applying a plan to request bodies, through the real collector ----------------------------------

SECRETS = {
    "Eileen Collins": TALENT,
    "eileen@studio.example": PII,
    "Northern Lights": TITLE,
    "Blackwater": PLACE,
}
LIMITS = ContentLimits()


def inputs_of(body: Any) -> list[TextItem]:
    raw = json.dumps(body).encode()
    parsed = parse_json(raw, 64)
    content = RequestContent("POST", "/v1/x", body=raw, content_type="application/json", parsed_json=parsed)
    return list(extract_inputs(content, LIMITS).texts)


def secret_findings(items: list[TextItem]) -> list[Finding]:
    """What the detectors would report: every occurrence of every secret, with its span."""
    found = []
    for item in items:
        for secret, kind in SECRETS.items():
            start = item.text.find(secret)
            while start >= 0:
                found.append(finding(kind, item.location, (start, start + len(secret))))
                start = item.text.find(secret, start + 1)
    return found


OPENAI_CHAT_BODY = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You help the writers of Northern Lights."},
        {"role": "user", "content": [{"type": "text", "text": "Email Eileen Collins at eileen@studio.example"}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "send", "arguments": json.dumps({"to": "eileen@studio.example", "note": "Blackwater"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to Eileen Collins"},
    ],
}
OPENAI_RESPONSES_BODY = {"model": "gpt-4.1", "input": "Summarise Northern Lights for Eileen Collins", "store": False}
ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "Project: Northern Lights"}],
    "messages": [
        {"role": "user", "content": "Scene at Blackwater with Eileen Collins"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "mail",
                                           "input": {"to": "eileen@studio.example"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "mailed eileen@studio.example"}]}]},
    ],
}
GEMINI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "Northern Lights: Eileen Collins"}, {"text": "at Blackwater"}]}],
    "systemInstruction": {"parts": [{"text": "Keep Northern Lights secret"}]},
}
ODD_KEYS_BODY = {"metadata": {"eileen@studio.example": "Eileen Collins", "plain": "x"}, "input": "hi"}
NESTED_JSON_BODY = {"input": ' {"brief": {"who": "Eileen Collins", "where": ["Blackwater"]}} '}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(OPENAI_CHAT_BODY, id="openai chat: parts, tool call arguments (JSON in a string)"),
        pytest.param(OPENAI_RESPONSES_BODY, id="openai responses: input string"),
        pytest.param(ANTHROPIC_BODY, id="anthropic: system blocks, tool_use input, tool_result"),
        pytest.param(GEMINI_BODY, id="gemini: contents parts, systemInstruction"),
        pytest.param(ODD_KEYS_BODY, id="a key that is not an identifier ({n}#key)"),
        pytest.param(NESTED_JSON_BODY, id="nested JSON ($json) with surrounding whitespace"),
    ],
)
def test_apply_to_json_removes_every_secret_and_restores(body: dict[str, Any]) -> None:
    """No secret is left in the forwarded body; restoring the forwarded body gives the original back."""
    original = copy.deepcopy(body)
    items = inputs_of(body)
    plan = plan_redaction(items, secret_findings(items))
    sent = apply_to_json(body, plan)
    assert body == original, "the input value is not modified"
    wire = dump_json(sent).decode()
    assert not [secret for secret in SECRETS if secret in wire]
    assert "[PERSON_1]" in wire
    assert not secret_findings(inputs_of(sent)), "re-inspecting the sent body finds nothing"
    assert _parse_nested(Restorer(plan.mapping).restore_json(sent)) == _parse_nested(original)


def _parse_nested(value: Any) -> Any:
    """Nested JSON strings parsed (the redacted copy is re-serialised compactly)."""
    if isinstance(value, dict):
        return {key: _parse_nested(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_parse_nested(child) for child in value]
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        return _parse_nested(json.loads(value))
    return value


def test_shadowed_duplicates_are_dropped_not_forwarded() -> None:
    """A value hidden by a duplicate key (top level or nested) never leaves: the document is re-serialised."""
    nested = '{"a": "Eileen Collins", "a": "x", "b": "Blackwater"}'
    raw = ('{"input": "Eileen Collins", "input": "hello", "meta": ' + json.dumps(nested) + "}").encode()
    parsed = parse_json(raw, 64)
    content = RequestContent("POST", "/v1/x", body=raw, content_type="application/json", parsed_json=parsed)
    items = list(extract_inputs(content, LIMITS).texts)
    assert any(".$shadowed[" in item.location for item in items)
    plan = plan_redaction(items, secret_findings(items))
    wire = dump_json(apply_to_json(parsed.value, plan)).decode()
    assert "Eileen Collins" not in wire and "Blackwater" not in wire
    assert json.loads(json.loads(wire)["meta"]) == {"a": "x", "b": "[LOCATION_1]"}


def test_shadowed_duplicates_under_an_array_root() -> None:
    raw = b'[{"a": "Eileen Collins", "a": "x"}, "Blackwater"]'
    parsed = parse_json(raw, 64)
    content = RequestContent("POST", "/v1/x", body=raw, content_type="application/json", parsed_json=parsed)
    items = list(extract_inputs(content, LIMITS).texts)
    plan = plan_redaction(items, secret_findings(items))
    assert apply_to_json(parsed.value, plan) == [{"a": "x"}, "[LOCATION_1]"]


@pytest.mark.parametrize(
    ("body", "location", "text"),
    [
        pytest.param({"input": "Eileen Collins"}, "form.input", "Eileen Collins", id="not a JSON body location"),
        pytest.param({"input": "Eileen Collins"}, "body.prompt", "Eileen Collins", id="missing key"),
        pytest.param({"input": ["Eileen Collins"]}, "body.input[3]", "Eileen Collins", id="index out of range"),
        pytest.param({"input": {"a": 1}}, "body.input", "Eileen Collins", id="not a string"),
        pytest.param({"input": "Eileen Collins!"}, "body.input", "Eileen Collins", id="text changed since inspection"),
        pytest.param({"input": "Xileen Collins"}, "body.input", "Eileen Collins", id="span holds another value"),
        pytest.param({"input": "Eileen Collins"}, "body.input@12", "Eileen Collins", id="media offset"),
        pytest.param({"input": "Eileen Collins"}, "body.input.$json.a", "Eileen Collins", id="not nested JSON"),
        pytest.param({"input": "Eileen Collins"}, "body.input!", "Eileen Collins", id="malformed location"),
        pytest.param({"a": {"x@y.z": 1, "X@Y.Z": 2}}, "", "", id="renamed keys would collide"),
    ],
)
def test_unresolvable_locations_raise(body: dict[str, Any], location: str, text: str) -> None:
    """apply_to_json never guesses: the caller blocks the request instead of sending the value."""
    if location:
        items = [TextItem(text, location)]
        plan = plan_redaction(items, [finding(TALENT, location, (0, 14))])
    else:
        items = inputs_of(body)
        plan = plan_redaction(items, [finding(PII, item.location, (0, 5)) for item in items])
    with pytest.raises(RedactionError):
        apply_to_json(body, plan)


def test_plain_text_bodies_and_websocket_messages() -> None:
    """A text/plain body is a string at `body`; a WebSocket message's JSON sits under `ws`."""
    text = "Eileen Collins at Blackwater"
    content = RequestContent("POST", "/v1/x", body=text.encode(), content_type="text/plain")
    items = list(extract_inputs(content, LIMITS).texts)
    assert apply_to_json(text, plan_redaction(items, secret_findings(items))) == "[PERSON_1] at [LOCATION_1]"
    message = {"type": "conversation.item.create", "item": {"content": [{"type": "input_text", "text": text}]}}
    items = [TextItem(text, "ws.item.content[0].text")]
    plan = plan_redaction(items, secret_findings(items))
    assert apply_to_json(message, plan, root="ws")["item"]["content"][0]["text"] == "[PERSON_1] at [LOCATION_1]"
    with pytest.raises(RedactionError):
        apply_to_json(message, plan)


def test_an_empty_plan_returns_the_body_itself() -> None:
    body = {"input": "hello"}
    assert apply_to_json(body, plan_redaction([TextItem("hello", "body.input")], [])) is body


# --- restoring text and JSON responses --------------------------------------------------------------

NAME = 'Dana "Dee" O\'Neil'


def sample_mapping() -> Mapping:
    return Mapping([("[PERSON_1]", NAME), ("[EMAIL_1]", "dana@studio.example"), ("[TITLE_1]", "Northern Lights"),
                    ("[PERSON_12]", "Sam Rowe")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[PERSON_1] wrote [TITLE_1]", f"{NAME} wrote Northern Lights"),
        ("[person_1] / [Person_1] / [PERSON_1]", f"{NAME} / {NAME} / {NAME}"),
        ("[ PERSON_1 ] [PERSON 1] [PERSON-1] [PERSON1] [\tEMAIL _1\t]",
         f"{NAME} {NAME} {NAME} {NAME} dana@studio.example"),
        ("PERSON_1 said, (PERSON_12).", f"{NAME} said, (Sam Rowe)."),
        ("[PERSON_12] not [PERSON_1]2", f"Sam Rowe not {NAME}2"),
        ("person_1, Person_1, xPERSON_1, PERSON_1x, PERSON_10, PERSON 1", "person_1, Person_1, xPERSON_1, "
                                                                          "PERSON_1x, PERSON_10, PERSON 1"),
        ("[PERSON_01] [PERSON_2] [PHONE_1] [    person_1] [person____1]", "[PERSON_01] [PERSON_2] [PHONE_1] "
                                                                            "[    person_1] [person____1]"),
        ("[[PERSON_1]]", f"[{NAME}]"),
        ("", ""),
    ],
    ids=["exact", "any case in brackets", "spacing in brackets", "bare upper case", "numbers are whole",
         "bare only when unambiguous", "not in the mapping or too loose", "nested brackets", "empty"],
)
def test_restore_text_echo_variants(text: str, expected: str) -> None:
    assert Restorer(sample_mapping()).restore_text(text) == expected


def test_restore_text_json_escaped() -> None:
    """Inside JSON text (tool-call arguments) the value is escaped, so the arguments stay valid JSON."""
    restored = Restorer(sample_mapping()).restore_text('{"to": "[PERSON_1]"}', json_escaped=True)
    assert json.loads(restored) == {"to": NAME}


OPENAI_CHAT_RESPONSE = {
    "id": "chatcmpl-1", "object": "chat.completion",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Dear [PERSON_1], about [TITLE_1]…",
        "tool_calls": [{"id": "c", "type": "function",
                        "function": {"name": "mail", "arguments": '{"to":"[PERSON_1]","cc":"[EMAIL_1]"}'}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4},
}
OPENAI_RESPONSES_RESPONSE = {
    "id": "resp_1", "object": "response", "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "Greeting [PERSON_1]"}]},
        {"type": "message", "id": "m", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hi [person_1]", "annotations": []}]},
        {"type": "function_call", "id": "f", "call_id": "c", "name": "mail", "arguments": '{"to":"[PERSON_1]"}'},
    ],
}
ANTHROPIC_RESPONSE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
    "content": [
        {"type": "thinking", "thinking": "The user is [PERSON_1]", "signature": "sig"},
        {"type": "text", "text": "Hello [ PERSON_1 ] of [TITLE_1]"},
        {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": "[EMAIL_1]", "names": ["[PERSON_1]"]}},
    ],
    "stop_reason": "end_turn",
}
GEMINI_RESPONSE = {
    "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"text": "[PERSON_1] stars in [TITLE_1]"},
        {"functionCall": {"name": "mail", "args": {"to": "[EMAIL_1]"}}},
    ]}}],
    "usageMetadata": {"totalTokenCount": 9},
}


@pytest.mark.parametrize(
    ("response", "expected_text", "untouched"),
    [
        pytest.param(OPENAI_CHAT_RESPONSE, f"Dear {NAME}, about Northern Lights…", None, id="openai chat"),
        pytest.param(OPENAI_RESPONSES_RESPONSE, f"Hi {NAME}", None, id="openai responses"),
        pytest.param(ANTHROPIC_RESPONSE, f"Hello {NAME} of Northern Lights", "The user is [PERSON_1]",
                     id="anthropic (thinking is signed: untouched)"),
        pytest.param(GEMINI_RESPONSE, f"{NAME} stars in Northern Lights", None, id="gemini"),
    ],
)
def test_restore_json_responses(response: dict[str, Any], expected_text: str, untouched: str | None) -> None:
    """Every string leaf is restored; tool arguments stay valid JSON; the input is not modified."""
    original = copy.deepcopy(response)
    restored = Restorer(sample_mapping()).restore_json(response)
    assert response == original
    wire = json.dumps(restored, ensure_ascii=False)
    assert expected_text in json.dumps(restored, ensure_ascii=False).replace('\\"', '"')
    remaining = _leaves(restored)
    if untouched is None:
        assert not [leaf for leaf in remaining if "PERSON_1" in leaf or "EMAIL_1" in leaf]
    else:
        assert untouched in remaining
    for arguments in _values_of(restored, "arguments"):
        assert NAME in json.loads(arguments).values()
    assert "dana@studio.example" in wire or response is OPENAI_RESPONSES_RESPONSE


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value] if isinstance(value, str) else []


def _values_of(value: Any, key: str) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, child in value.items():
            if k == key:
                yield child
            yield from _values_of(child, key)
    elif isinstance(value, list):
        for child in value:
            yield from _values_of(child, key)


def test_restore_json_returns_the_same_object_when_nothing_changes() -> None:
    response = {"choices": [{"message": {"content": "nothing to restore"}}]}
    assert Restorer(sample_mapping()).restore_json(response) is response
    assert Restorer(Mapping()).restore_json(response) is response


# --- streams ----------------------------------------------------------------------------------------


def sse(data: Any, name: str = "", newline: str = "\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}{newline}" if name else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


def openai_chat_stream(deltas: Sequence[str]) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "c1", "object": "chat.completion.chunk", "model": "gpt",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    return b"".join([
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": d}) for d in deltas),
        chunk({}, "stop"),
        sse({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 5}}),
        sse("[DONE]"),
    ])


def openai_responses_stream(deltas: Sequence[str]) -> bytes:
    full = "".join(deltas)
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = [
        sse({"type": "response.created", "sequence_number": 0, "response": {"id": "r", "output": []}},
            "response.created"),
        sse({"type": "response.content_part.added", **ids, "part": {"type": "output_text", "text": ""}},
            "response.content_part.added"),
        *(sse({"type": "response.output_text.delta", **ids, "delta": d, "sequence_number": n + 2, "logprobs": []},
              "response.output_text.delta") for n, d in enumerate(deltas)),
        sse({"type": "response.output_text.done", **ids, "text": full}, "response.output_text.done"),
        sse({"type": "response.completed", "response": {"id": "r", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": full}]}]}}, "response.completed"),
    ]
    return b"".join(events)


def anthropic_stream(deltas: Sequence[str]) -> bytes:
    return b"".join([
        sse({"type": "message_start", "message": {"id": "m", "content": [], "usage": {"input_tokens": 3}}},
            "message_start"),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start"),
        sse({"type": "ping"}, "ping"),
        *(sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}},
              "content_block_delta") for d in deltas),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
            "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ])


def gemini_stream(deltas: Sequence[str]) -> bytes:
    def chunk(text: str, last: bool) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        return sse({"candidates": [candidate], "modelVersion": "gemini-2.5"}, newline="\r\n")
    return b"".join(chunk(d, n == len(deltas) - 1) for n, d in enumerate(deltas))


def events_of(stream: bytes) -> list[tuple[str, Any]]:
    """(event name, JSON or raw data) of every event, as an SSE client reads them."""
    events = []
    for block in stream.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return events


def text_of_openai_chat(stream: bytes) -> str:
    return "".join(c["delta"].get("content") or "" for _, e in events_of(stream) if e != "[DONE]"
                   for c in e["choices"])


def text_of_openai_responses(stream: bytes) -> str:
    events = events_of(stream)
    text = "".join(e["delta"] for _, e in events if e["type"] == "response.output_text.delta")
    done = [e["text"] for _, e in events if e["type"] == "response.output_text.done"]
    assert done == [text], "the .done snapshot matches the deltas"
    assert events[-1][1]["type"] == "response.completed"
    return text


def text_of_anthropic(stream: bytes) -> str:
    events = events_of(stream)
    assert events[-1][0] == "message_stop"
    stop = next(n for n, (name, _) in enumerate(events) if name == "content_block_stop")
    assert all(name != "content_block_delta" for name, _ in events[stop:]), "held text comes before the stop"
    return "".join(e["delta"]["text"] for name, e in events if name == "content_block_delta")


def text_of_gemini(stream: bytes) -> str:
    events = events_of(stream)
    return "".join(p.get("text", "") for _, e in events for c in e["candidates"] for p in c["content"]["parts"])


FORMATS: dict[StreamFormat, tuple[Callable[[Sequence[str]], bytes], Callable[[bytes], str]]] = {
    StreamFormat.OPENAI_CHAT: (openai_chat_stream, text_of_openai_chat),
    StreamFormat.OPENAI_RESPONSES: (openai_responses_stream, text_of_openai_responses),
    StreamFormat.ANTHROPIC: (anthropic_stream, text_of_anthropic),
    StreamFormat.GEMINI: (gemini_stream, text_of_gemini),
}


def run_stream(fmt: StreamFormat, stream: bytes, cuts: Sequence[int], mapping: Mapping | None = None) -> bytes:
    restorer = StreamRestorer(mapping or sample_mapping(), fmt)
    bounds = [0, *cuts, len(stream)]
    out = [restorer.feed(stream[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(restorer.finish())
    return b"".join(out)


def splits(text: str) -> Iterator[list[str]]:
    """The text cut into two deltas at every character boundary."""
    for cut in range(1, len(text)):
        yield [text[:cut], text[cut:]]


SPLIT_TEXT = "Hi [PERSON_1], [ title_1 ] é🎬 PERSON_12!"
EXPECTED = f"Hi {NAME}, Northern Lights é🎬 Sam Rowe!"


@pytest.mark.parametrize("fmt", list(StreamFormat))
def test_stream_placeholders_split_across_deltas_at_every_character(fmt: StreamFormat) -> None:
    """Wherever a delta boundary falls, inside a placeholder or not, the client reads the original values."""
    build, read = FORMATS[fmt]
    for deltas in splits(SPLIT_TEXT):
        assert read(run_stream(fmt, build(deltas), [])) == EXPECTED, deltas


@pytest.mark.parametrize("fmt", list(StreamFormat))
def test_stream_events_split_at_every_byte(fmt: StreamFormat) -> None:
    """Network chunks cut anywhere (inside events, line endings and UTF-8 sequences) change nothing."""
    build, read = FORMATS[fmt]
    stream = build(["Hi [PERS", "ON_1], [ title_1 ] é🎬 PERSON_1", "2!"])
    for cut in range(1, len(stream)):
        assert read(run_stream(fmt, stream, [cut])) == EXPECTED, cut
    assert read(run_stream(fmt, stream, range(1, len(stream)))) == EXPECTED, "one byte at a time"


@pytest.mark.parametrize("fmt", list(StreamFormat))
def test_stream_without_placeholders_is_byte_identical(fmt: StreamFormat) -> None:
    build, _ = FORMATS[fmt]
    stream = build(["Hello ", "[world] ", "PERSON_1x ", "é🎬"])
    assert run_stream(fmt, stream, [7, 100]) == stream


@pytest.mark.parametrize("fmt", list(StreamFormat))
@pytest.mark.parametrize("deltas", [["Bye ", "PERSON_1"], ["Bye [TITLE_"], ["Bye [ PERSON_1 ]"], ["Bye [TI", "TLE_1"]],
                         ids=["bare at the end", "unfinished at the end", "whole at the end", "never closed"])
def test_stream_tail_is_released_before_the_closing_event(fmt: StreamFormat, deltas: list[str]) -> None:
    """A tail held at the end of the text comes out (restored if complete) before the stream's closing events."""
    build, read = FORMATS[fmt]
    assert read(run_stream(fmt, build(deltas), [])) == Restorer(sample_mapping()).restore_text("".join(deltas))


def test_non_text_events_pass_through_byte_identical() -> None:
    stream = anthropic_stream(["Hi [PERS", "ON_1]"])
    out = run_stream(StreamFormat.ANTHROPIC, stream, [])
    for name in (b"message_start", b"content_block_start", b"ping", b"content_block_stop", b"message_delta",
                 b"message_stop"):
        event = next(block for block in stream.split(b"\n\n") if block.startswith(b"event: " + name))
        assert event + b"\n\n" in out


def test_an_empty_mapping_does_no_work() -> None:
    restorer = StreamRestorer(Mapping(), StreamFormat.ANTHROPIC)
    chunk = b"data: [PERSON_1]\n"
    assert restorer.feed(chunk) is chunk
    assert restorer.finish() == b""


def test_the_restorer_is_a_mitmproxy_stream_callable() -> None:
    """Called per chunk and with b"" at the end; nothing to send is [] (an empty chunk would end a chunked body)."""
    restorer = StreamRestorer(sample_mapping(), StreamFormat.ANTHROPIC)
    stream = anthropic_stream(["Hi [PERS", "ON_1]"])
    assert restorer(stream[:5]) == []
    out = restorer(stream[5:]) + restorer(b"")
    assert all(out) and text_of_anthropic(b"".join(out)) == f"Hi {NAME}"
    assert restorer(b"") == []


def test_the_held_tail_is_bounded() -> None:
    """Only a possible placeholder prefix is held, never more than MAX_HOLD characters."""
    restorer = StreamRestorer(sample_mapping(), StreamFormat.ANTHROPIC)
    out = restorer.feed(sse({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "x" * 100 + "[ PERSON_ 12 "}},
                            "content_block_delta"))
    released = events_of(out)[0][1]["delta"]["text"]
    assert released == "x" * 100 and len("[ PERSON_ 12 ") <= MAX_HOLD
    out = restorer.feed(sse({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "[ nothing like a placeholder here"}},
                            "content_block_delta"))
    assert events_of(out)[0][1]["delta"]["text"] == "[ PERSON_ 12 [ nothing like a placeholder here"


def test_openai_chat_tool_call_arguments_are_restored_as_json() -> None:
    def chunk(arguments: str, finish: str | None = None) -> bytes:
        call = {"index": 0, "function": {"arguments": arguments}}
        return sse({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": finish}]})
    stream = chunk('{"to": "[PERS') + chunk('ON_1]", "cc": "[EMAIL_') + chunk("1]\"}") + chunk("", "tool_calls")
    out = run_stream(StreamFormat.OPENAI_CHAT, stream + sse("[DONE]"), [])
    arguments = "".join(c["delta"]["tool_calls"][0]["function"]["arguments"]
                        for _, e in events_of(out) if e != "[DONE]" for c in e["choices"] if "tool_calls" in c["delta"])
    assert json.loads(arguments) == {"to": NAME, "cc": "dana@studio.example"}


def test_anthropic_input_json_and_held_text_before_block_stop() -> None:
    stream = b"".join([
        sse({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                                   "partial_json": '{"to":"[PERSON_1'}},
            "content_block_delta"),
        sse({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                                   "partial_json": ']"}'}}, "content_block_delta"),
        sse({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "end [TITLE_"}},
            "content_block_delta"),
        sse({"type": "content_block_stop", "index": 2}, "content_block_stop"),
    ])
    events = events_of(run_stream(StreamFormat.ANTHROPIC, stream, []))
    assert json.loads("".join(e["delta"].get("partial_json", "") for _, e in events if e["index"] == 1)) == {"to": NAME}
    assert [e["delta"]["text"] for _, e in events if e["index"] == 2 and "delta" in e] == ["end ", "[TITLE_"]
    assert events[-1][0] == "content_block_stop"


def test_thinking_deltas_are_not_touched() -> None:
    event = sse({"type": "content_block_delta", "index": 0,
                 "delta": {"type": "thinking_delta", "thinking": "about [PERSON_1]"}}, "content_block_delta")
    assert run_stream(StreamFormat.ANTHROPIC, event, []) == event


def test_finish_releases_a_tail_when_the_stream_just_ends() -> None:
    """A stream cut short (no [DONE], no stop event) still gets its held text, restored if complete."""
    stream = sse({"id": "c", "choices": [{"index": 0, "delta": {"content": "bye PERSON_1"}, "finish_reason": None}]})
    assert text_of_openai_chat(run_stream(StreamFormat.OPENAI_CHAT, stream, [])) == f"bye {NAME}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(["[PERSON_1]", "[person_12]", "[ TITLE 1 ]", "PERSON_1", "PERSON_12", "[PERS",
                                     "ON_1]", "x", " ", "é", "🎬", "[", "]", "_", "1", "P", "\n", '"', "\\",
                                     "EMAIL_1"]),
                    min_size=1, max_size=25),
    fmt=st.sampled_from(list(StreamFormat)),
    data=st.data(),
)
def test_streamed_restoration_equals_whole_restoration(pieces: list[str], fmt: StreamFormat, data: Any) -> None:
    """For any delta split and any network chunking, the client reads exactly restore_text(whole text)."""
    text = "".join(pieces)
    delta_cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=6))))
    bounds = [0, *[c for c in delta_cuts if 0 < c < len(text)], len(text)]
    deltas = [text[a:b] for a, b in itertools.pairwise(bounds)]
    build, read = FORMATS[fmt]
    stream = build(deltas)
    byte_cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=8))))
    assert read(run_stream(fmt, stream, byte_cuts)) == Restorer(sample_mapping()).restore_text(text)


def openai_chat_tool_stream(deltas: Sequence[str]) -> bytes:
    def chunk(arguments: str) -> bytes:
        call = {"index": 0, "function": {"arguments": arguments}}
        return sse({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]})
    closing = sse({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return b"".join([*(chunk(d) for d in deltas), closing, sse("[DONE]")])


def arguments_of_openai_chat(stream: bytes) -> str:
    return "".join(call["function"]["arguments"] for _, e in events_of(stream) if e != "[DONE]"
                   for c in e["choices"] for call in c["delta"].get("tool_calls", []))


def anthropic_tool_stream(deltas: Sequence[str]) -> bytes:
    return b"".join([
        *(sse({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": d}},
              "content_block_delta") for d in deltas),
        sse({"type": "content_block_stop", "index": 1}, "content_block_stop"),
    ])


def arguments_of_anthropic(stream: bytes) -> str:
    return "".join(e["delta"]["partial_json"] for name, e in events_of(stream) if name == "content_block_delta")


TOOL_FORMATS = {
    StreamFormat.OPENAI_CHAT: (openai_chat_tool_stream, arguments_of_openai_chat),
    StreamFormat.ANTHROPIC: (anthropic_tool_stream, arguments_of_anthropic),
}


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(['{"to": "', "[PERSON_1]", "[pers", "on_1]", "PERSON_1", '", ', "[", "x", "é",
                                     "EMAIL_1", "]"]), min_size=1, max_size=20),
    fmt=st.sampled_from(list(TOOL_FORMATS)),
    data=st.data(),
)
def test_streamed_tool_arguments_equal_whole_restoration(pieces: list[str], fmt: StreamFormat, data: Any) -> None:
    """Tool-call argument deltas (JSON text) are restored JSON-escaped, however they are split."""
    text = "".join(pieces)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=5))))
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    build, read = TOOL_FORMATS[fmt]
    stream = build([text[a:b] for a, b in itertools.pairwise(bounds)])
    byte_cuts = sorted(set(data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=6))))
    expected = Restorer(sample_mapping()).restore_text(text, json_escaped=True)
    assert read(run_stream(fmt, stream, byte_cuts)) == expected


WORDS = st.lists(st.text(alphabet="abcdeé", min_size=1, max_size=6), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(text=WORDS, data=st.data())
def test_restore_of_redact_is_identity(text: str, data: Any) -> None:
    """restore(redact(x)) == x for random texts and random spans (values spelt the same way each time)."""
    spans = data.draw(st.lists(st.tuples(st.integers(0, len(text) - 1), st.integers(1, 8)), max_size=6))
    kinds = [TALENT, TITLE, CHARACTER, PLACE, OTHER, PII]
    findings = []
    for start, length in spans:
        end = min(len(text), start + length)
        value = text[start:end]
        if value.strip() == value and value:
            findings.append(finding(data.draw(st.sampled_from(kinds)), LOC, (start, end)))
    item = TextItem(text, LOC)
    plan = plan_redaction([item], findings)
    sent = redact_text(plan, item)
    assert Restorer(plan.mapping).restore_text(sent) == text
    assert apply_to_json({"messages": [{"content": text}]}, plan) == {"messages": [{"content": sent}]}


# --- the mapping never shows a value ----------------------------------------------------------------


def test_the_mapping_never_shows_a_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = "Eileen Collins"
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        items, plan = plan_for([f"{secret} and eileen@studio.example"],
                               [(0, secret, TALENT), (0, "eileen@studio.example", PII)])
        restorer = Restorer(plan.mapping)
        stream = StreamRestorer(plan.mapping, StreamFormat.ANTHROPIC)
        stream.feed(anthropic_stream(["[PERSON_1]"]))
        apply_to_json({"messages": [{"content": items[0].text}]}, plan)
        try:
            apply_to_json({"messages": [{"content": secret}]}, plan)
        except RedactionError as exc:
            error = str(exc)
    shown = [repr(plan.mapping), str(plan.mapping), f"{plan.mapping}", repr(plan), str(plan), repr(restorer),
             repr(stream), error, *(str(entry) for entry in logs), caplog.text]
    for value in (secret, "eileen@studio.example", "Eileen"):
        assert not [text for text in shown if value in text]
    assert repr(plan.mapping) == "Mapping(2 placeholders: EMAIL×1, PERSON×1)"
    with pytest.raises(TypeError):
        pickle.dumps(plan.mapping)


def test_mapping_bytes_round_trip_and_bad_bytes_raise() -> None:
    mapping = sample_mapping()
    again = Mapping.from_bytes(mapping.to_bytes())
    entries = [(p, mapping.value(p)) for p in mapping.placeholders()]
    assert [(p, again.value(p)) for p in again.placeholders()] == entries
    for bad in (b"", b"[]", b'{"v": 2, "entries": []}', b'{"v": 1, "entries": [["PERSON_1", "x"]]}',
                b'{"v": 1, "entries": [["[PERSON_1]", ""]]}', b'{"v": 1, "entries": [["[NOPE_1]", "x"]]}',
                b'{"v": 1, "entries": [["[PERSON_1]", "x"], ["[PERSON_1]", "y"]]}', b"\xff"):
        with pytest.raises(RedactionError):
            Mapping.from_bytes(bad)


def test_mapping_sealed_in_the_vault_is_not_in_clear(tmp_path: Path) -> None:
    from gateway.audit import open_store
    from gateway.vault import Vault, master_key_provider

    with open_store(tmp_path, replica_id="redact-test", env={}) as store:
        vault = Vault(master_key_provider(tmp_path, env={}), store)
        capture = sample_mapping().seal(vault, "evt-1", "northern-lights")
        assert b"Northern Lights" not in capture.ciphertext and b"Sam Rowe" not in capture.ciphertext
        opened = Mapping.open(vault, capture)
    assert opened.value("[PERSON_12]") == "Sam Rowe"
    assert Restorer(opened).restore_text("[TITLE_1]") == "Northern Lights"
