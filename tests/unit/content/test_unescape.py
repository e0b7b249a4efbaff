"""Escaped text is also read decoded (as a model reads it); echoes of what the text as sent shows are dropped."""

from __future__ import annotations

import json

import pytest

from gateway.content import ContentLimits, RequestContent, TextItem, extract_inputs
from gateway.content.unescape import UNESCAPED, unescaped
from gateway.detect.finding import Finding
from gateway.detection import without_echoes


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("Eileen%20Collins", "Eileen Collins"),
        ("%45ileen", "Eileen"),
        ("&#69;ileen Collins", "Eileen Collins"),
        ("&#x45;ileen", "Eileen"),
        ("Eileen&nbsp;Collins", "Eileen\u00a0Collins"),
        ("Eileen\\u0020Collins", "Eileen Collins"),
        ("\\x45ileen", "Eileen"),
        ("%2545ileen", "Eileen"),                     # escaped twice
        ("&amp;#69;ileen", "Eileen"),                 # an entity whose text is an entity
        ("%26%2369%3Bileen", "Eileen"),               # percent-escaped html reference
        ("\\ud83d alone", "\ufffd alone"),            # a lone surrogate escape is not a character
        ("R&D and 100%", None),                       # nothing escaped
        ("C:\\xyz\\users", None),
        ("plain prose", None),
    ],
)
def test_unescaped(text: str, decoded: str | None) -> None:
    assert unescaped(text) == decoded


def test_a_long_text_is_decoded_around_its_escapes_only() -> None:
    """A document-sized text gets the decoded stretches near its escapes, not a second whole copy."""
    filler = "an ordinary line of a long document\n" * 3000
    text = filler + "cast: Eileen%20Collins as the lead\n" + filler + "R&amp;D budget\n" + filler
    decoded = unescaped(text)
    assert decoded is not None and len(decoded) < 2_000
    assert "Eileen Collins as the lead" in decoded and "R&D budget" in decoded


def _texts(body: object) -> list[tuple[str, str]]:
    request = RequestContent("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                             content_type="application/json")
    return [(t.location, t.text) for t in extract_inputs(request, ContentLimits()).texts]


def test_the_decoded_text_sits_beside_the_text_as_sent() -> None:
    assert _texts({"prompt": "Eileen%20Collins", "other": "plain"}) == [
        ("body.prompt", "Eileen%20Collins"), ("body.prompt" + UNESCAPED, "Eileen Collins"), ("body.other", "plain")]


def _finding(location: str, entity: str = "email", span: tuple[int, int] | None = (0, 5)) -> Finding:
    return Finding("pii", entity, location, 1.0, "pii", span)


V = "body.a" + UNESCAPED


@pytest.mark.parametrize(
    ("found", "texts", "kept"),
    [
        pytest.param([_finding("body.a"), _finding(V)], None, [0], id="echo of the text as sent: dropped"),
        pytest.param([_finding(V)], None, [0], id="only the escape hid it: kept"),
        pytest.param([_finding("body.a", "phone"), _finding(V)], None, [0, 1],
                     id="another entity in the decoded text: kept"),
        pytest.param([_finding("body.b"), _finding(V)], None, [0, 1], id="same entity elsewhere: kept"),
        pytest.param([_finding("body.a", span=(0, 8)), _finding(V, span=(0, 8))],
                     {"body.a": "a@b.com and c%40d.com", V: "a@b.com and c@d.com"}, [0],
                     id="same value: an echo"),
        pytest.param([_finding("body.a", span=(0, 7)), _finding(V, span=(0, 7)), _finding(V, span=(12, 19))],
                     {"body.a": "a@b.com and c%40d.com", V: "a@b.com and c@d.com"}, [0, 2],
                     id="a second value the escapes hid: kept"),
    ],
)
def test_without_echoes(found: list[Finding], texts: dict[str, str] | None, kept: list[int]) -> None:
    items = [TextItem(text, location) for location, text in (texts or {}).items()]
    assert without_echoes(found, items) == [found[i] for i in kept]
