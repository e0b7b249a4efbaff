"""JSON request bodies: parse once, see every duplicate, bound the depth.

JSON parsers disagree about duplicate keys (Python and Go keep the last, others the first), so a
body with duplicates could mean one thing to us and another to the provider. We keep every value
for inspection (`shadowed`) and, when the body is forwarded, re-serialize it so exactly one value
per key remains: the one we inspected last and, for forced keys, the forced one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import TooDeepError, UninspectableError

__all__ = ["ParsedJson", "dump_json", "parse_json", "with_members_appended"]


@dataclass(frozen=True, slots=True)
class ParsedJson:
    value: Any
    duplicate_keys: tuple[str, ...] = ()
    """names of keys that appeared more than once in one object (names only, never values)."""
    shadowed: tuple[Any, ...] = ()
    """values hidden by a later duplicate key: still inspected, never forwarded."""

    @property
    def has_duplicates(self) -> bool:
        return bool(self.duplicate_keys)


def parse_json(data: bytes | str, max_depth: int) -> ParsedJson:
    """Parse a JSON body; raise UninspectableError or TooDeepError instead of guessing."""
    duplicates: list[str] = []
    shadowed: list[Any] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
                shadowed.append(out[key])
            out[key] = value
        return out

    try:
        value = json.loads(data, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise TooDeepError("JSON nesting is too deep to inspect", location="body") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise UninspectableError(f"body is not valid JSON: {_short(exc)}", location="body") from exc
    _check_depth(value, max_depth)
    return ParsedJson(value, tuple(duplicates), tuple(shadowed))


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as providers accept it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8", "surrogatepass"
    )


def with_members_appended(body: bytes, members: Sequence[tuple[str, Any]], *, empty: bool) -> bytes | None:
    """`body`, a UTF-8 JSON object, with `members` added before its closing brace; every other byte kept.

    The caller guarantees the keys are new (not in the parsed object, and the object had no duplicate
    keys), so every parser reads the same value for them. `empty`: the object had no members before.
    None when the body is not plainly a UTF-8 object (UTF-16/32, a byte-order mark): re-serialize it.
    """
    if not members or json.detect_encoding(body) != "utf-8":
        return None
    end = len(body.rstrip(b" \t\r\n"))
    if end == 0 or body[end - 1 : end] != b"}":
        return None
    added = b",".join(dump_json(key) + b":" + dump_json(value) for key, value in members)
    view = memoryview(body)  # one copy of a large body, not three
    return b"".join((view[: end - 1], b"" if empty else b",", added, view[end - 1 :]))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise TooDeepError(f"JSON nesting deeper than {max_depth} levels", location="body")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _short(exc: Exception) -> str:
    text = str(exc)
    return text[:120]
