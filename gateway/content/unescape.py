"""Escaped text as a model reads it: percent-escapes, HTML character references, `\\uXXXX`.

    unescaped(text) -> str | None     the decoded text, or None when `text` has nothing to decode

`Eileen%20Collins`, `&#69;ileen Collins`, `Eileen&nbsp;Collins` and `Eileen\\u0020Collins` are the
name to a model; a filter that matches only the literal spelling misses them. The collector keeps
the text as sent (findings there can be redacted in place) and adds the decoded one beside it at
`location + UNESCAPED`; `gateway.detection` drops a finding there when the original shows the same
kind, entity and matched value (an echo), so only what the escapes hid is reported from it. Decoding
repeats while it changes something, up to three rounds (`%2545` is `%45` is `E`).
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

__all__ = ["UNESCAPED", "unescaped", "without_suffix"]

UNESCAPED = "#unescaped"
_ROUNDS = 3
_WHOLE_CHARS = 64 * 1024
_CONTEXT_CHARS = 256
_ESCAPE = re.compile(
    r"%[0-9A-Fa-f]{2}"
    r"|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"
    r"|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}"
)
_BACKSLASH = re.compile(r"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})")


def unescaped(text: str) -> str | None:
    """`text` with its escapes decoded (repeatedly, for escaped escapes), or None if it has none.

    A text longer than `_WHOLE_CHARS` (a document's) is decoded in windows of `_CONTEXT_CHARS`
    either side of its escapes, joined by newlines: the detectors then read what the escapes changed
    and its surroundings, not a second copy of the whole document."""
    if ("%" not in text and "&" not in text and "\\" not in text) or _ESCAPE.search(text) is None:
        return None
    source = text if len(text) <= _WHOLE_CHARS else "\n".join(_windows(text))
    decoded = source
    for _ in range(_ROUNDS):
        step = _decoded_once(decoded)
        if step == decoded:
            break
        decoded = step
    return decoded if decoded != source else None


def _windows(text: str) -> list[str]:
    """The stretches of `text` within `_CONTEXT_CHARS` of an escape, overlapping ones merged."""
    spans: list[list[int]] = []
    for match in _ESCAPE.finditer(text):
        start, end = max(0, match.start() - _CONTEXT_CHARS), match.end() + _CONTEXT_CHARS
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [text[start:end] for start, end in spans]


def without_suffix(location: str) -> str:
    """The location of the text an unescaped variant came from (the location itself otherwise)."""
    return location.removesuffix(UNESCAPED)


def _decoded_once(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    if "%" in text:
        text = unquote(text, errors="replace")
    if "\\" in text:
        text = _BACKSLASH.sub(_code_point, text)
    return text


def _code_point(match: re.Match[str]) -> str:
    value = int(match.group(1) or match.group(2), 16)
    return "\ufffd" if 0xD800 <= value <= 0xDFFF else chr(value)
