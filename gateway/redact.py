"""Redact and restore: pseudonymise personal data and production secrets on the way out, put them back on the way in.

Integration (the lead wires this into inspection and the response path):

    # request side, after detection, when the decision says REDACT for some findings:
    plan = plan_redaction(inputs.texts, redact_findings, mapping=previous)   # previous: None, or a
    body = dump_json(apply_to_json(parsed.value, plan))                      #   Mapping.open(vault, capture)
    #   forward `body` (never the original bytes: a `$shadowed` value is dropped only by re-dumping);
    #   RedactionError (an InspectionError, rule `content.unredactable`) → block, never forward.
    #   audit: plan.counts() (kinds and how many, no values); policy explain: redact_text(plan, item).
    #   a conversation spanning requests: capture = plan.mapping.seal(vault, event_id, production).

    # response side, JSON:      restore = Restorer(plan.mapping); body = dump_json(restore.restore_json(value))
    # response side, streamed:  flow.response.stream = StreamRestorer(plan.mapping, StreamFormat.ANTHROPIC)
    #   The instance is mitmproxy's stream callable: chunk → list of chunks, b"" (end) → the rest. It never
    #   returns b"" mid-stream: mitmproxy would frame an empty chunk as the chunked-encoding terminator.
    #   Drop Content-Length on a restored response (lengths change). The stream callable sees the bytes
    #   as sent: ask for an identity-encoded answer (drop Accept-Encoding on a redacted request), since a
    #   gzipped SSE stream is not parsed and passes unrestored. Gemini must stream with `?alt=sse`;
    #   its JSON-array stream is not SSE: restore it whole with restore_json, or force alt=sse.

Placeholders are `[CATEGORY_N]`; the category keeps meaning for the model, N counts distinct values
of that category in order of first appearance:

    pii email/phone/government_id/card/iban/address   EMAIL PHONE ID CARD IBAN ADDRESS
    confidential title/character/location/person/other TITLE CHARACTER LOCATION PERSON TERM
    talent_name                                         PERSON
    ip_reference (detail starts with the role)          TITLE, CHARACTER, else TERM

Values are compared normalised (case and whitespace folded; emails lower-cased; phones as E.164
when written internationally, else their digits; cards, IBANs and ids as letters and digits), so a
value gets one placeholder everywhere in the request — and across a conversation's requests when
the previous `Mapping` is passed in; a value keeps the category it was first seen with. A
placeholder the request already contains (bracketed or bare) is never assigned. Overlapping
findings keep the longest span (then the earliest, then the category order above); adjacent
findings get separate placeholders.

Echoes the restorer accepts, because models rarely copy a placeholder exactly:

    [PERSON_1] [person_1] [Person_1]     any case inside brackets
    [ PERSON_1 ] [\tPERSON_1\t]          up to 3 spaces or tabs just inside each bracket
    [PERSON 1] [PERSON-1] [PERSON1]      up to 3 of ` `, `_`, `-` between category and number
    PERSON_1                             bare, only when unambiguous: exactly upper case + `_` + number,
                                         not touching a letter, digit or `_`, and in the mapping

Anything else stays as written: `person_1` or `PERSON 1` without brackets, `PERSON_01`, `PERSON_1x`,
placeholders not in the mapping. The value put back is the first spelling seen. In JSON text
(`arguments`, Responses `function_call_arguments`, Anthropic `input_json_delta`) the value is
JSON-escaped. Anthropic `thinking` blocks and deltas are never touched: their signature covers the text.

Streaming: SSE bytes are cut into events at blank lines, so chunks may split anywhere (inside a
line ending or a UTF-8 sequence): an event is decoded only when whole. Each text channel (a
choice's content / refusal / tool call, a Responses item part, an Anthropic content block, a
Gemini candidate) holds back only a tail that could still become a placeholder (at most `MAX_HOLD`
characters) and releases it with that channel's next delta. Closing events (`finish_reason`,
`[DONE]`, Responses `*.done`/`response.completed`, `content_block_stop`, `message_delta`,
`message_stop`, `finishReason`, the end of the stream) release it first: appended to the closing
event's own delta, or as a synthetic delta event shaped like the channel's last one (a Responses
synthetic delta repeats its template's `sequence_number`). Events with nothing to restore and no
held text to carry pass through byte-identical; rewritten events are re-serialised compactly.

    RedactionError (InspectionError)   raised when a plan cannot be made or applied, or a mapping cannot be read

Nothing here logs; `Mapping` never shows a value in repr/str and refuses to pickle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

import phonenumbers

from gateway.content.inputs import TextItem
from gateway.content.jsonbody import parse_json
from gateway.detect.finding import Finding
from gateway.errors import InspectionError
from gateway.vault import Capture, CaptureKind

__all__ = [
    "CATEGORIES",
    "MAX_HOLD",
    "Mapping",
    "Redaction",
    "RedactionError",
    "Replacement",
    "Restorer",
    "Sealer",
    "StreamFormat",
    "StreamRestorer",
    "apply_to_json",
    "category_of",
    "plan_redaction",
    "redact_text",
]


class RedactionError(InspectionError):
    """Raised when a redaction cannot be planned or applied, or a sealed mapping cannot be read."""

    rule = "content.unredactable"


# -- categories -----------------------------------------------------------------------------------

CATEGORIES = ("PERSON", "EMAIL", "PHONE", "ID", "CARD", "IBAN", "ADDRESS", "TITLE", "CHARACTER", "LOCATION", "TERM")
_PII_CATEGORY = {
    "email": "EMAIL",
    "phone": "PHONE",
    "government_id": "ID",
    "card": "CARD",
    "iban": "IBAN",
    "address": "ADDRESS",
}
_TERM_CATEGORY = {
    "title": "TITLE",
    "character": "CHARACTER",
    "location": "LOCATION",
    "person": "PERSON",
    "other": "TERM",
}
_IP_ROLE_CATEGORY = {"title": "TITLE", "character": "CHARACTER"}


def category_of(finding: Finding) -> str:
    """The placeholder category of a text finding; RedactionError for a finding that is not text."""
    if finding.kind == "pii":
        return _PII_CATEGORY.get(finding.entity, "ID")
    if finding.kind == "confidential":
        return _TERM_CATEGORY.get(finding.entity, "TERM")
    if finding.kind == "talent_name":
        return "PERSON"
    if finding.kind == "ip_reference":
        return _IP_ROLE_CATEGORY.get(finding.detail.split(";", 1)[0].strip(), "TERM")
    raise RedactionError(f"a {finding.kind} finding cannot be redacted from text", location=finding.location)


# -- normalised values ----------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[\W_]+")
_NOT_DIGIT = re.compile(r"\D+")


def _normalise(category: str, value: str) -> str:
    """The comparison key of a value: the same key means the same placeholder."""
    if category == "EMAIL":
        return value.strip().casefold()
    if category == "PHONE":
        return _phone_key(value)
    if category in ("CARD", "IBAN", "ID"):
        return _NOT_ALNUM.sub("", value).upper()
    return " ".join(value.casefold().split())


def _phone_key(value: str) -> str:
    written = value.strip()
    if written.startswith(("+", "00")):
        try:
            number = phonenumbers.parse("+" + written.lstrip("+0") if written.startswith("00") else written, None)
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass
    return _NOT_DIGIT.sub("", written)


# -- the mapping ----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\[(?P<category>[A-Z]{2,12})_(?P<number>[1-9]\d{0,5})\]")
_MAPPING_FORMAT = 1
_MAPPING_LOCATION = "redaction.mapping"
_MAPPING_CONTENT_TYPE = "application/vnd.greenroom.redaction-mapping+json"


class Sealer(Protocol):
    """What `Mapping.seal`/`Mapping.open` need of `gateway.vault.Vault`."""

    def seal(
        self, event_id: str, production: str, kind: CaptureKind | str, location: str, content_type: str,
        plaintext: bytes,
    ) -> Capture: ...

    def open(self, capture: Capture) -> bytes: ...


class Mapping:
    """Placeholder → original value, for one request or conversation. Never shows a value.

    `repr`/`str` show only the number of placeholders per category; pickling is refused. Persist it
    with `seal` (encrypted by the vault under the production's key) or `to_bytes` into something
    that encrypts.
    """

    __slots__ = ("_by_key", "_counters", "_values")

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, str] = {}
        self._by_key: dict[str, str] = {}
        """normalised value → placeholder: a value keeps the category it was first seen with."""
        self._counters: dict[str, int] = {}
        for placeholder, value in entries:
            self._add(placeholder, value)

    def _add(self, placeholder: str, value: str) -> None:
        match = _PLACEHOLDER.fullmatch(placeholder)
        if match is None or match["category"] not in CATEGORIES or not isinstance(value, str) or not value:
            raise RedactionError("a redaction mapping entry is malformed")
        if placeholder in self._values:
            raise RedactionError("a redaction mapping holds a placeholder twice")
        category, number = match["category"], int(match["number"])
        self._values[placeholder] = value
        self._by_key.setdefault(_normalise(category, value), placeholder)
        self._counters[category] = max(self._counters.get(category, 0), number)

    def _assign(self, category: str, value: str, reserved: frozenset[str]) -> str:
        """The placeholder of `value`: the existing one for an equal value, else the next free number."""
        key = _normalise(category, value)
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        number = self._counters.get(category, 0)
        while True:
            number += 1
            placeholder = f"[{category}_{number}]"
            if placeholder not in reserved:
                break
        self._values[placeholder] = value
        self._by_key[key] = placeholder
        self._counters[category] = number
        return placeholder

    def copy(self) -> Mapping:
        return Mapping(self._values.items())

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._values

    def value(self, placeholder: str) -> str | None:
        """The original value of `[CATEGORY_N]`, or None."""
        return self._values.get(placeholder)

    def placeholders(self) -> tuple[str, ...]:
        return tuple(self._values)

    def categories(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.fullmatch(p)["category"] for p in self._values)  # type: ignore[index]

    def counts(self) -> dict[str, int]:
        """How many distinct values per category (content-free: for the audit)."""
        counts: dict[str, int] = {}
        for placeholder in self._values:
            category = placeholder[1:].rsplit("_", 1)[0]
            counts[category] = counts.get(category, 0) + 1
        return counts

    def __repr__(self) -> str:
        inner = ", ".join(f"{category}×{count}" for category, count in sorted(self.counts().items()))
        return f"Mapping({len(self)} placeholders{': ' + inner if inner else ''})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a redaction Mapping is never pickled: use seal() or to_bytes() into encrypted storage")

    # -- persistence -----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Plaintext serialisation: hand it only to something that encrypts (see `seal`)."""
        document = {"v": _MAPPING_FORMAT, "entries": list(self._values.items())}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Mapping:
        try:
            document = json.loads(data)
            if document.get("v") != _MAPPING_FORMAT:
                raise ValueError("unknown format")
            entries = [(str(placeholder), value) for placeholder, value in document["entries"]]
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise RedactionError("a redaction mapping cannot be read") from exc
        return cls(entries)

    def seal(self, vault: Sealer, event_id: str, production: str) -> Capture:
        """Encrypt under the production's key (a conversation's mapping between requests)."""
        return vault.seal(event_id, production, CaptureKind.TEXT, _MAPPING_LOCATION, _MAPPING_CONTENT_TYPE,
                          self.to_bytes())

    @classmethod
    def open(cls, vault: Sealer, capture: Capture) -> Mapping:
        """The mapping sealed in `capture` (vault errors propagate: shredded key, altered bytes)."""
        if capture.location != _MAPPING_LOCATION or capture.content_type != _MAPPING_CONTENT_TYPE:
            raise RedactionError("the capture does not hold a redaction mapping")
        return cls.from_bytes(vault.open(capture))


# -- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replacement:
    """One span of one text item replaced by a placeholder (content-free)."""

    location: str
    span: tuple[int, int]
    placeholder: str


@dataclass(frozen=True, slots=True)
class Redaction:
    """What to replace where, and the mapping that undoes it."""

    replacements: tuple[Replacement, ...]
    """ordered by text item, then span."""
    lengths: tuple[tuple[str, int], ...]
    """(location, length of the text item) for every location with a replacement: checked when applied."""
    mapping: Mapping = field(repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return not self.replacements

    def counts(self) -> dict[str, int]:
        """Replacements per category (occurrences, content-free): what the audit records."""
        counts: dict[str, int] = {}
        for replacement in self.replacements:
            category = replacement.placeholder[1:].rsplit("_", 1)[0]
            counts[category] = counts.get(category, 0) + 1
        return counts

    def at(self, location: str) -> tuple[Replacement, ...]:
        return tuple(r for r in self.replacements if r.location == location)


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    category: str

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_redaction(
    texts: Sequence[TextItem], findings: Iterable[Finding], mapping: Mapping | None = None
) -> Redaction:
    """Placeholders for every finding's span, consistent across the request (and `mapping`, if given).

    `findings` are the ones to redact (the policy chooses); each needs a span inside the text item
    at its location. `mapping` is not changed: the plan holds an extended copy.
    """
    items = _items_by_location(texts)
    candidates = _candidates(items, findings)
    reserved = _reserved_placeholders(item.text for item in texts)
    extended = mapping.copy() if mapping is not None else Mapping()
    replacements: list[Replacement] = []
    lengths: list[tuple[str, int]] = []
    for item in texts:
        chosen = _without_overlaps(candidates.get(item.location, []))
        if not chosen:
            continue
        lengths.append((item.location, len(item.text)))
        for candidate in chosen:
            value = item.text[candidate.start : candidate.end]
            placeholder = extended._assign(candidate.category, value, reserved)
            replacements.append(Replacement(item.location, (candidate.start, candidate.end), placeholder))
        candidates.pop(item.location)
    return Redaction(tuple(replacements), tuple(lengths), extended)


def _items_by_location(texts: Sequence[TextItem]) -> dict[str, TextItem | None]:
    """Text items by location; None marks a location two items share (a span there is ambiguous)."""
    items: dict[str, TextItem | None] = {}
    for item in texts:
        items[item.location] = None if item.location in items else item
    return items


def _candidates(items: dict[str, TextItem | None], findings: Iterable[Finding]) -> dict[str, list[_Candidate]]:
    candidates: dict[str, list[_Candidate]] = {}
    for finding in findings:
        category = category_of(finding)
        item = items.get(finding.location)
        if finding.span is None or item is None:
            raise RedactionError("a finding to redact has no span in exactly one text item", location=finding.location)
        start, end = finding.span
        if not 0 <= start < end <= len(item.text):
            raise RedactionError("a finding's span lies outside its text item", location=finding.location)
        if item.text[start:end].strip():
            candidates.setdefault(finding.location, []).append(_Candidate(start, end, category))
    return candidates


def _without_overlaps(candidates: list[_Candidate]) -> list[_Candidate]:
    """The longest span of each overlapping group (then the earliest, then the category order)."""
    ranked = sorted(candidates, key=lambda c: (-c.length, c.start, CATEGORIES.index(c.category)))
    chosen: list[_Candidate] = []
    for candidate in ranked:
        if all(candidate.end <= other.start or other.end <= candidate.start for other in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda c: c.start)


_ANY_PLACEHOLDER_TEXT = re.compile(
    r"\[[ \t]{0,3}([A-Za-z]{2,12})[ _-]{0,3}(\d{1,6})[ \t]{0,3}\]"
    r"|(?<![A-Za-z0-9_])([A-Z]{2,12})_(\d{1,6})(?![A-Za-z0-9_])"
)


def _reserved_placeholders(texts: Iterable[str]) -> frozenset[str]:
    """Placeholders the request already contains (in any echo form): never assigned, so never restored wrongly."""
    found: set[str] = set()
    for text in texts:
        for match in _ANY_PLACEHOLDER_TEXT.finditer(text):
            category, number = (match[1], match[2]) if match[1] else (match[3], match[4])
            found.add(f"[{category.upper()}_{number}]")
    return frozenset(found)


def redact_text(plan: Redaction, item: TextItem) -> str:
    """The text of `item` as it will be sent (for `policy explain`)."""
    return _replace_spans(item.text, plan.at(item.location), plan.mapping, item.location, len(item.text))


def _replace_spans(
    text: str, replacements: Sequence[Replacement], mapping: Mapping, location: str, length: int
) -> str:
    if len(text) != length:
        raise RedactionError("the text to redact is not the text that was inspected", location=location)
    pieces: list[str] = []
    cursor = 0
    for replacement in sorted(replacements, key=lambda r: r.span):
        start, end = replacement.span
        category = replacement.placeholder[1:].rsplit("_", 1)[0]
        original = mapping.value(replacement.placeholder)
        if start < cursor or original is None or _normalise(category, text[start:end]) != _normalise(category,
                                                                                                        original):
            raise RedactionError("the text to redact is not the text that was inspected", location=location)
        pieces.append(text[cursor:start])
        pieces.append(replacement.placeholder)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


# -- applying a plan to a JSON body ---------------------------------------------------------------

_SEGMENT = re.compile(r"\.(?P<label>[A-Za-z0-9_$@:\-]{1,64})|\[(?P<index>\d+)\]|\{(?P<position>\d+)\}(?P<key>#key)?")
_NESTED_DEPTH = 512
_JSON_MARKER = "$json"
_SHADOWED_MARKER = "$shadowed"

Segment = tuple[str, str | int]
"""("label", key) | ("index", n) | ("position", n) | ("key", n)."""


@dataclass(frozen=True, slots=True)
class _Target:
    rest: tuple[Segment, ...]
    location: str
    length: int
    replacements: tuple[Replacement, ...]


def apply_to_json(value: Any, plan: Redaction, *, root: str = "body") -> Any:
    """`value` (the parsed body, or a plain-text body's string) with every planned span replaced.

    The input is not modified. Locations are the collector's (`body.messages[0].content`,
    `body.x{2}#key`, `….$json.y`); `root="ws"` for a WebSocket message. Values under `$shadowed`
    are dropped by re-serialising, so forward `dump_json(result)`. RedactionError when a location
    does not resolve, lies under another root (form fields, query, headers, archive members,
    JSON-lines `body.line[n]`, media `@offset`), or its text is not the one inspected.
    """
    if plan.empty:
        return value
    lengths = dict(plan.lengths)
    by_location: dict[str, list[Replacement]] = {}
    for replacement in plan.replacements:
        by_location.setdefault(replacement.location, []).append(replacement)
    targets = [
        _Target(_parse_location(location, root), location, lengths[location], tuple(replacements))
        for location, replacements in by_location.items()
    ]
    return _rewrite(value, _without_shadowed(value, targets), plan.mapping)


def _parse_location(location: str, root: str) -> tuple[Segment, ...]:
    if not location.startswith(root):
        raise RedactionError(f"only text in the JSON or plain text under `{root}` can be redacted", location=location)
    segments: list[Segment] = []
    position = len(root)
    while position < len(location):
        match = _SEGMENT.match(location, position)
        if match is None or (segments and segments[-1][0] == "key"):
            raise RedactionError("a location cannot be resolved for redaction", location=location)
        if match["label"] is not None:
            segments.append(("label", match["label"]))
        elif match["index"] is not None:
            segments.append(("index", int(match["index"])))
        else:
            segments.append(("key" if match["key"] else "position", int(match["position"])))
        position = match.end()
    return tuple(segments)


def _rewrite(node: Any, targets: list[_Target], mapping: Mapping) -> Any:
    leaves = [t for t in targets if not t.rest]
    if leaves:
        if len(targets) != 1 or not isinstance(node, str):
            raise RedactionError("a location to redact is not a string", location=leaves[0].location)
        target = leaves[0]
        return _replace_spans(node, target.replacements, mapping, target.location, target.length)
    if isinstance(node, str):
        return _rewrite_nested(node, targets, mapping)
    if isinstance(node, list):
        return _rewrite_list(node, targets, mapping)
    if isinstance(node, dict):
        return _rewrite_dict(node, targets, mapping)
    raise RedactionError("a location to redact does not resolve", location=targets[0].location)


def _step(targets: list[_Target]) -> dict[Segment, list[_Target]]:
    groups: dict[Segment, list[_Target]] = {}
    for target in targets:
        groups.setdefault(target.rest[0], []).append(
            _Target(target.rest[1:], target.location, target.length, target.replacements)
        )
    return groups


def _rewrite_nested(text: str, targets: list[_Target], mapping: Mapping) -> str:
    """JSON inside a string (`….$json.…`): rewritten inside and re-serialised (duplicates dropped)."""
    groups = _step(targets)
    if set(groups) != {("label", _JSON_MARKER)}:
        raise RedactionError("a location to redact does not resolve", location=targets[0].location)
    stripped = text.strip()
    try:
        parsed = parse_json(stripped, _NESTED_DEPTH)
    except InspectionError as exc:
        raise RedactionError("nested JSON to redact cannot be parsed", location=targets[0].location) from exc
    inner = _without_shadowed(parsed.value, groups[("label", _JSON_MARKER)])
    rewritten = _rewrite(parsed.value, inner, mapping) if inner else parsed.value
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return lead + json.dumps(rewritten, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + trail


def _without_shadowed(document: Any, targets: list[_Target]) -> list[_Target]:
    """Targets under a document's `$shadowed` values dropped: re-serialising drops those values anyway.

    A document whose root object really has a `$shadowed` key keeps them: resolved as that key, they
    are redacted there or fail (closed) as a text that is not the one inspected.
    """
    if isinstance(document, dict) and _SHADOWED_MARKER in document:
        return targets
    return [t for t in targets if not (t.rest and t.rest[0] == ("label", _SHADOWED_MARKER))]


def _rewrite_list(node: list[Any], targets: list[_Target], mapping: Mapping) -> list[Any]:
    copy = list(node)
    for (kind, index), group in _step(targets).items():
        if kind != "index" or not isinstance(index, int) or index >= len(copy):
            raise RedactionError("a location to redact does not resolve", location=group[0].location)
        copy[index] = _rewrite(copy[index], group, mapping)
    return copy


def _rewrite_dict(node: dict[str, Any], targets: list[_Target], mapping: Mapping) -> dict[str, Any]:
    keys = list(node)
    values = list(node.values())
    renamed: dict[int, str] = {}
    for (kind, selector), group in _step(targets).items():
        index = _dict_index(keys, kind, selector)
        if index is None:
            raise RedactionError("a location to redact does not resolve", location=group[0].location)
        if kind == "key":
            renamed[index] = _rewrite(keys[index], group, mapping)
        else:
            values[index] = _rewrite(values[index], group, mapping)
    new_keys = [renamed.get(index, key) for index, key in enumerate(keys)]
    if len(set(new_keys)) != len(new_keys):
        raise RedactionError("redacting JSON keys would merge two of them", location=targets[0].location)
    return dict(zip(new_keys, values, strict=True))


def _dict_index(keys: list[str], kind: str, selector: str | int) -> int | None:
    if kind == "label" and isinstance(selector, str):
        return keys.index(selector) if selector in keys else None
    if kind in ("position", "key") and isinstance(selector, int) and selector < len(keys):
        return selector
    return None


# -- restoring text -------------------------------------------------------------------------------

MAX_HOLD = 32
"""the longest tail a stream holds back: `[` + 3 spaces + category + 3 separators + 6 digits + 3 spaces."""

_WORD = "A-Za-z0-9_"


@dataclass(frozen=True, slots=True)
class _Patterns:
    find: re.Pattern[str]
    """a complete placeholder echo (bracketed, any case; or bare, upper case)."""
    partial: re.Pattern[str]
    """a tail that could still become one: search from `len - MAX_HOLD`, anchored at the end."""


@lru_cache(maxsize=64)
def _patterns(categories: frozenset[str]) -> _Patterns:
    names = sorted(categories, key=lambda c: (-len(c), c))
    cats = "|".join(names)
    prefixes = "|".join(sorted({name[:i] for name in names for i in range(1, len(name) + 1)}, key=lambda p: -len(p)))
    bracketed = rf"\[[ \t]{{0,3}}(?P<bcat>(?i:{cats}))[ _-]{{0,3}}(?P<bnum>[1-9]\d{{0,5}})[ \t]{{0,3}}\]"
    bare = rf"(?<![{_WORD}])(?P<cat>{cats})_(?P<num>[1-9]\d{{0,5}})(?![{_WORD}])"
    open_bracket = rf"\[[ \t]{{0,3}}(?:(?i:{prefixes})|(?i:{cats})[ _-]{{0,3}}\d{{0,6}}[ \t]{{0,3}})?\Z"
    open_bare = rf"(?<![{_WORD}])(?:{prefixes}|(?:{cats})_\d{{0,6}})\Z"
    return _Patterns(re.compile(f"{bracketed}|{bare}"), re.compile(f"{open_bracket}|{open_bare}"))


class Restorer:
    """Puts original values back in a response: text, whole JSON documents, and (via StreamRestorer) streams."""

    __slots__ = ("_escaped", "_mapping", "_patterns")

    def __init__(self, mapping: Mapping) -> None:
        self._mapping = mapping
        self._patterns = _patterns(mapping.categories()) if mapping else None
        self._escaped: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Restorer({self._mapping!r})"

    @property
    def active(self) -> bool:
        return self._patterns is not None

    def restore_text(self, text: str, *, json_escaped: bool = False) -> str:
        """`text` with every placeholder echo of the mapping replaced by its value (JSON-escaped if asked)."""
        if self._patterns is None:
            return text
        restored = self._restore_range(text, 0, len(text), json_escaped)
        return text if restored == text else restored

    def restore_json(self, value: Any) -> Any:
        """Every string leaf restored (OpenAI, Anthropic, Gemini response shapes); `value` is not modified."""
        if self._patterns is None:
            return value
        return self._restore_node(value, False)

    # -- internals -------------------------------------------------------------------------------

    def _restore_node(self, node: Any, json_escaped: bool) -> Any:
        """`node` restored; the very same object when nothing in it changed (so callers can test `is`)."""
        if isinstance(node, str):
            return self.restore_text(node, json_escaped=json_escaped)
        if isinstance(node, list):
            items = [self._restore_node(child, False) for child in node]
            return node if all(new is old for new, old in zip(items, node, strict=True)) else items
        if isinstance(node, dict):
            if node.get("type") in _SIGNED_BLOCKS:
                return node
            pairs: dict[str, Any] = {}
            for key, child in node.items():
                new_key = self.restore_text(key) if isinstance(key, str) else key
                pairs[key if new_key in pairs or new_key in node else new_key] = self._restore_node(
                    child, key in _JSON_TEXT_KEYS)
            same = len(pairs) == len(node) and all(pairs.get(key, _MISSING) is child for key, child in node.items())
            return node if same else pairs
        return node

    def _restore_range(self, text: str, start: int, end: int, json_escaped: bool) -> str:
        """`text[start:end]` restored; characters outside the range are context only (lookbehind/ahead)."""
        assert self._patterns is not None
        pieces: list[str] = []
        cursor = start
        for match in self._patterns.find.finditer(text, start):
            if match.end() > end:
                break
            value = self._value(match)
            if value is None:
                continue
            pieces.append(text[cursor : match.start()])
            pieces.append(self._escape(value) if json_escaped else value)
            cursor = match.end()
        if cursor == start:
            return text[start:end]
        pieces.append(text[cursor:end])
        return "".join(pieces)

    def _value(self, match: re.Match[str]) -> str | None:
        if match["bcat"] is not None:
            return self._mapping.value(f"[{match['bcat'].upper()}_{match['bnum']}]")
        return self._mapping.value(f"[{match['cat']}_{match['num']}]")

    def _escape(self, value: str) -> str:
        escaped = self._escaped.get(value)
        if escaped is None:
            escaped = self._escaped[value] = json.dumps(value, ensure_ascii=False)[1:-1]
        return escaped

    def _hold_point(self, text: str, start: int) -> int:
        """Where the tail that could still become a placeholder begins (len(text) when there is none)."""
        assert self._patterns is not None
        match = self._patterns.partial.search(text, max(start, len(text) - MAX_HOLD))
        return match.start() if match is not None else len(text)


_MISSING = object()
_SIGNED_BLOCKS = frozenset({"thinking", "redacted_thinking", "thinking_delta", "signature_delta"})
_JSON_TEXT_KEYS = frozenset({"arguments", "partial_json"})


class _TextStream:
    """One text channel of a stream: restores what is certain, holds back a possible placeholder prefix."""

    __slots__ = ("_held", "_json_escaped", "_previous", "_restorer")

    def __init__(self, restorer: Restorer, json_escaped: bool) -> None:
        self._restorer = restorer
        self._json_escaped = json_escaped
        self._held = ""
        self._previous = ""
        """the last character released: context for the bare form's lookbehind."""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def push(self, text: str) -> str:
        if not text and not self._held:
            return ""
        full = self._previous + self._held + text
        start = len(self._previous)
        cut = self._restorer._hold_point(full, start)
        return self._release(full, start, cut)

    def flush(self) -> str:
        if not self._held:
            return ""
        full = self._previous + self._held
        return self._release(full, len(self._previous), len(full))

    def _release(self, full: str, start: int, cut: int) -> str:
        out = self._restorer._restore_range(full, start, cut, self._json_escaped)
        self._held = full[cut:]
        if cut > start:
            self._previous = full[cut - 1]
        return out


# -- streams --------------------------------------------------------------------------------------


class StreamFormat(StrEnum):
    """The SSE dialects whose text deltas are restored."""

    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


_EVENT_END = re.compile(rb"(?:\r\n|\r|\n)(?:\r\n|\r|\n)")
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|\Z)")
_DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class _Event:
    """One SSE event, decoded: its lines (kept for re-serialising), name and data."""

    lines: list[tuple[str, str]]
    """(line, ending) pairs, the terminating blank line included."""
    name: str
    data: str


def _parse_event(raw: bytes) -> _Event | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [(m[1], m[2]) for m in _LINE.finditer(text) if m[1] or m[2]]
    name = ""
    data: list[str] = []
    for line, _ in lines:
        field_name, _, field_value = line.partition(":")
        field_value = field_value.removeprefix(" ")
        if field_name == "event":
            name = field_value
        elif field_name == "data":
            data.append(field_value)
    return _Event(lines, name, "\n".join(data)) if data else None


def _serialise_event(event: _Event, value: Any) -> bytes:
    """The event with its data lines replaced by one line holding `value` (other lines kept in order)."""
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    out: list[str] = []
    written = False
    for line, ending in event.lines:
        if line.partition(":")[0] == "data":
            if not written:
                out.append(f"data: {payload}{ending or chr(10)}")
                written = True
            continue
        out.append(line + ending)
    return "".join(out).encode("utf-8")


def _synthetic_event(name: str, value: Any, newline: str) -> bytes:
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {name}{newline}" if name else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


Synth = Callable[[str], tuple[str, dict[str, Any]]]
"""the (event name, JSON) of an SSE event carrying `text` as a delta of one channel."""
ChannelKey = tuple[Any, ...]


@dataclass(slots=True)
class _Channel:
    stream: _TextStream
    synth: Synth
    """builds the delta event that releases a held tail (shaped like the channel's last delta)."""


class StreamRestorer:
    """Restores placeholders in an SSE response as it streams: `feed(chunk) -> bytes`, then `finish() -> bytes`.

    Only whole events are parsed (an incomplete one waits for its next chunk, so its size bounds the
    memory used); each text channel holds back at most `MAX_HOLD` characters.
    """

    __slots__ = ("_buffer", "_channels", "_finished", "_format", "_handler", "_newline", "_restorer", "_scanned")

    def __init__(self, mapping: Mapping, format: StreamFormat | str) -> None:
        self._restorer = Restorer(mapping)
        self._format = StreamFormat(format)
        self._handler = _HANDLERS[self._format]
        self._buffer = bytearray()
        self._scanned = 0
        """how far the buffer was searched for an event end (a long event is not rescanned per chunk)."""
        self._channels: dict[ChannelKey, _Channel] = {}
        self._finished = False
        self._newline = "\n"

    def __repr__(self) -> str:
        return f"StreamRestorer({self._format.value}, {len(self._channels)} channels)"

    def __call__(self, chunk: bytes) -> list[bytes]:
        """mitmproxy's `flow.response.stream` contract: b"" marks the end; never an empty chunk to send."""
        out = self.feed(chunk) if chunk else self.finish()
        return [out] if out else []

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send on for `chunk`: whole events, restored; an incomplete event waits for the next chunk."""
        if not self._restorer.active:
            return chunk
        self._buffer += chunk
        out: list[bytes] = []
        position = 0
        for match in _EVENT_END.finditer(self._buffer, max(0, self._scanned - 3)):
            if match.end() == len(self._buffer) and self._buffer.endswith(b"\r"):
                break  # `\r` may be the first half of `\r\n`: wait for the next byte
            out.append(self._event(bytes(self._buffer[position : match.end()])))
            position = match.end()
        del self._buffer[:position]
        self._scanned = len(self._buffer)
        return b"".join(out)

    def finish(self) -> bytes:
        """The rest: an unterminated last event, then any held text."""
        if not self._restorer.active or self._finished:
            return b""
        self._finished = True
        rest = bytes(self._buffer)
        self._buffer.clear()
        out = self._event(rest) if rest else b""
        return out + self._flush_all()

    # -- events ----------------------------------------------------------------------------------

    def _event(self, raw: bytes) -> bytes:
        event = _parse_event(raw)
        if event is None:
            return raw
        self._newline = event.lines[0][1] or self._newline
        if event.data.strip() == _DONE:
            return self._flush_all() + raw
        try:
            value = json.loads(event.data)
        except ValueError:
            return raw
        if not isinstance(value, dict):
            return raw
        before, rewritten = self._handler(self, event.name, value)
        if rewritten is value:
            return before + raw
        return before + _serialise_event(event, rewritten)

    def _push(self, key: ChannelKey, text: str, json_escaped: bool, synth: Synth) -> str:
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel(_TextStream(self._restorer, json_escaped), synth)
        else:
            channel.synth = synth
        return channel.stream.push(text)

    def _flush(self, prefix: ChannelKey = ()) -> bytes:
        """Synthetic delta events releasing the held text of every channel whose key starts with `prefix`."""
        out: list[bytes] = []
        for key, channel in self._channels.items():
            if key[: len(prefix)] == prefix and channel.stream.holding:
                name, value = channel.synth(channel.stream.flush())
                out.append(_synthetic_event(name, value, self._newline))
        return b"".join(out)

    def _flush_all(self) -> bytes:
        return self._flush(())

    def _flush_into(self, key: ChannelKey) -> str:
        """The held text of one channel, to append to a closing event's own delta."""
        channel = self._channels.get(key)
        return channel.stream.flush() if channel is not None else ""

    def _restore_json(self, value: Any) -> Any:
        return self._restorer.restore_json(value)


Handler = Callable[[StreamRestorer, str, dict[str, Any]], tuple[bytes, dict[str, Any]]]
"""(stream, event name, event JSON) → (events to send first, the event to send: `value` itself if unchanged)."""


# -- OpenAI Chat Completions: `data: {chat.completion.chunk}` ... `data: [DONE]` -------------------


def _openai_chat(stream: StreamRestorer, name: str, value: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    choices = value.get("choices")
    if not isinstance(choices, list) or not choices:
        return b"", stream._restore_json(value)
    before: list[bytes] = []
    new_choices: list[Any] = []
    for choice in choices:
        new_choice, prefix = _chat_choice(stream, value, choice)
        before.append(prefix)
        new_choices.append(new_choice)
    if all(new is old for new, old in zip(new_choices, choices, strict=True)):
        return b"".join(before), value
    return b"".join(before), {**value, "choices": new_choices}


def _chat_choice(stream: StreamRestorer, chunk: dict[str, Any], choice: Any) -> tuple[Any, bytes]:
    if not isinstance(choice, dict):
        return choice, b""
    index = choice.get("index", 0)
    delta = choice.get("delta")
    closing = choice.get("finish_reason") is not None
    if not isinstance(delta, dict):
        return stream._restore_json(choice), stream._flush(("chat", index)) if closing else b""
    new_delta = dict(delta)
    for field_name in ("content", "refusal"):
        text = delta.get(field_name)
        if isinstance(text, str):
            key = ("chat", index, field_name)
            synth = _chat_synth(chunk, index, _field_delta(field_name))
            new_delta[field_name] = stream._push(key, text, False, synth) + (
                stream._flush_into(key) if closing else "")
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        new_delta["tool_calls"] = [_chat_tool_call(stream, chunk, index, n, call, closing)
                                   for n, call in enumerate(calls)]
    before = stream._flush(("chat", index)) if closing else b""
    if new_delta == delta:
        return choice, before
    return {**choice, "delta": new_delta}, before


def _chat_tool_call(
    stream: StreamRestorer, chunk: dict[str, Any], index: int, position: int, call: Any, closing: bool
) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(arguments, str):
        return call
    call_index = call.get("index", position)
    key = ("chat", index, "tool", call_index)
    synth = _chat_synth(chunk, index, lambda t: {"tool_calls": [{"index": call_index, "function": {"arguments": t}}]})
    restored = stream._push(key, arguments, True, synth) + (stream._flush_into(key) if closing else "")
    return {**call, "function": {**function, "arguments": restored}}


def _field_delta(field_name: str) -> Callable[[str], dict[str, Any]]:
    return lambda text: {field_name: text}


def _chat_synth(chunk: dict[str, Any], index: int, delta: Callable[[str], dict[str, Any]]) -> Synth:
    template = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}

    def synth(text: str) -> tuple[str, dict[str, Any]]:
        return "", {**template, "choices": [{"index": index, "delta": delta(text), "finish_reason": None}]}

    return synth


# -- OpenAI Responses: named events, `response.output_text.delta` with `delta` ---------------------

_RESPONSES_TEXT = {
    "response.output_text.delta": False,
    "response.refusal.delta": False,
    "response.reasoning_text.delta": False,
    "response.reasoning_summary_text.delta": False,
    "response.audio.transcript.delta": False,
    "response.output_audio_transcript.delta": False,
    "response.function_call_arguments.delta": True,
    "response.mcp_call_arguments.delta": True,
}
_RESPONSES_CHANNEL_FIELDS = ("item_id", "output_index", "content_index", "summary_index")
_RESPONSES_CLOSING = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


def _openai_responses(stream: StreamRestorer, name: str, value: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    kind = value.get("type") or name
    json_escaped = _RESPONSES_TEXT.get(kind) if isinstance(kind, str) else None
    delta = value.get("delta")
    if json_escaped is not None and isinstance(delta, str):
        key = ("responses", kind, *(value.get(f) for f in _RESPONSES_CHANNEL_FIELDS))
        restored = stream._push(key, delta, json_escaped, _responses_synth(kind, value))
        return b"", value if restored == delta else {**value, "delta": restored}
    closing = isinstance(kind, str) and (kind.endswith(".done") or kind in _RESPONSES_CLOSING)
    return stream._flush_all() if closing else b"", stream._restore_json(value)


def _responses_synth(kind: str, template: dict[str, Any]) -> Synth:
    base = {k: v for k, v in template.items() if k not in ("logprobs", "obfuscation")}

    def synth(text: str) -> tuple[str, dict[str, Any]]:
        return kind, {**base, "delta": text}

    return synth


# -- Anthropic: `content_block_delta` with `text_delta` / `input_json_delta` -----------------------

_ANTHROPIC_DELTAS = {"text_delta": ("text", False), "input_json_delta": ("partial_json", True)}
_ANTHROPIC_CLOSING = frozenset({"message_delta", "message_stop", "error"})


def _anthropic(stream: StreamRestorer, name: str, value: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    kind = value.get("type") or name
    index = value.get("index", 0)
    delta = value.get("delta")
    if kind == "content_block_delta" and isinstance(delta, dict) and delta.get("type") in _ANTHROPIC_DELTAS:
        field_name, json_escaped = _ANTHROPIC_DELTAS[delta["type"]]
        text = delta.get(field_name)
        if isinstance(text, str):
            synth = _anthropic_synth(index, delta["type"], field_name)
            restored = stream._push(("anthropic", index, delta["type"]), text, json_escaped, synth)
            return b"", value if restored == text else {**value, "delta": {**delta, field_name: restored}}
    if kind == "content_block_stop":
        return stream._flush(("anthropic", index)), value
    before = stream._flush_all() if kind in _ANTHROPIC_CLOSING else b""
    return before, stream._restore_json(value)


def _anthropic_synth(index: int, delta_type: str, field_name: str) -> Synth:
    def synth(text: str) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {
            "type": "content_block_delta", "index": index, "delta": {"type": delta_type, field_name: text},
        }

    return synth


# -- Gemini (`?alt=sse`): `data: {GenerateContentResponse}`, text in candidates[].content.parts[] ----


def _gemini(stream: StreamRestorer, name: str, value: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    candidates = value.get("candidates")
    if not isinstance(candidates, list):
        return b"", stream._restore_json(value)
    before: list[bytes] = []
    new_candidates: list[Any] = []
    for position, candidate in enumerate(candidates):
        new_candidate, prefix = _gemini_candidate(stream, value, position, candidate)
        before.append(prefix)
        new_candidates.append(new_candidate)
    if all(new is old for new, old in zip(new_candidates, candidates, strict=True)):
        return b"".join(before), value
    return b"".join(before), {**value, "candidates": new_candidates}


def _gemini_candidate(
    stream: StreamRestorer, response: dict[str, Any], position: int, candidate: Any
) -> tuple[Any, bytes]:
    if not isinstance(candidate, dict):
        return candidate, b""
    index = candidate.get("index", position)
    closing = candidate.get("finishReason") is not None
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(content, dict) or not isinstance(parts, list):
        return candidate, stream._flush(("gemini", index)) if closing else b""
    new_parts: list[Any] = []
    last_text: dict[bool, int] = {}
    for number, part in enumerate(parts):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            thought = bool(part.get("thought"))
            synth = _gemini_synth(response, index, thought)
            new_parts.append({**part, "text": stream._push(("gemini", index, thought), part["text"], False, synth)})
            last_text[thought] = number
        else:
            new_parts.append(stream._restore_json(part))
    if closing:
        for thought, number in last_text.items():
            held = stream._flush_into(("gemini", index, thought))
            new_parts[number] = {**new_parts[number], "text": new_parts[number]["text"] + held}
    before = stream._flush(("gemini", index)) if closing else b""
    if new_parts == parts:
        return candidate, before
    return {**candidate, "content": {**content, "parts": new_parts}}, before


def _gemini_synth(response: dict[str, Any], index: int, thought: bool) -> Synth:
    template = {k: v for k, v in response.items() if k in ("modelVersion", "responseId")}

    def synth(text: str) -> tuple[str, dict[str, Any]]:
        part: dict[str, Any] = {"text": text, "thought": True} if thought else {"text": text}
        return "", {"candidates": [{"content": {"parts": [part], "role": "model"}, "index": index}], **template}

    return synth


_HANDLERS: dict[StreamFormat, Handler] = {
    StreamFormat.OPENAI_CHAT: _openai_chat,
    StreamFormat.OPENAI_RESPONSES: _openai_responses,
    StreamFormat.ANTHROPIC: _anthropic,
    StreamFormat.GEMINI: _gemini,
}
