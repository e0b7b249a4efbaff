"""Normalisation: evasions fold to the same key, and every key range maps back to the original text."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.detect.normalize import (
    Normalized,
    _normalize_str,
    _normalize_vectorised,
    _word_characters,
    fold,
    fold_many,
    fold_words,
    normalize,
)

NAME = "Tom Hanks"

EVASIONS = [
    ("plain", "Tom Hanks"),
    ("upper", "TOM HANKS"),
    ("nbsp and newline", "Tom\u00a0\nHanks"),
    ("several spaces", "Tom   \t  Hanks"),
    ("zero-width", "T\u200bom Ha\u200dnks"),
    ("word joiner and BOM", "To\u2060m Han\ufeffks"),
    ("soft hyphen", "Tom Han\u00adks"),
    ("bidi override", "Tom \u202eHanks\u202c"),
    ("tag characters", "Tom\U000e0041 Hanks"),
    ("variation selectors", "T\ufe0fom Hanks"),
    ("fullwidth", "Ｔｏｍ Ｈａｎｋｓ"),
    ("math bold", "𝐓𝐨𝐦 𝐇𝐚𝐧𝐤𝐬"),
    ("circled", "Ⓣⓞⓜ Ⓗⓐⓝⓚⓢ"),
    ("diacritics", "Tóm Hänks"),
    ("decomposed diacritics", "To\u0301m Ha\u0308nks"),
    ("combining strike-through", "T\u0336o\u0336m\u0336 Hanks"),
    ("Cyrillic and Greek homoglyphs", "Tοm Hаnks"),
    ("rn for m", "Torn Hanks"),
    ("leet", "T0m H4nk5"),
]


@pytest.mark.parametrize(("case", "written"), EVASIONS, ids=[c for c, _ in EVASIONS])
def test_evasions_fold_to_the_name(case: str, written: str) -> None:
    """Each evasion, inside a sentence, contains the name's key, and the hit maps back to exactly what was written."""
    text = f"look at {written} in this"
    normalized = normalize(text)
    start = normalized.text.find(fold(NAME))
    assert start >= 0, normalized.text
    begin, end = normalized.span(start, start + len(fold(NAME)))
    assert text[begin:end].rstrip("\u202c") == written.rstrip("\u202c")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("CoIIins", "Collins"),   # capital I for l
        ("Co11ins", "Collins"),   # digit one for l
        ("Coll1ns", "Collins"),   # digit one for i
        ("C0llins", "Collins"),
        ("Eileen", "3ileen"),
        ("Sam", "$am"),
        ("Sam", "5am"),
        ("Ada", "@da"),
        ("Matt", "Ma77"),
    ],
)
def test_leet_and_lookalike_letters_fold_together(first: str, second: str) -> None:
    """Letters people swap for each other share a key."""
    assert fold(first) == fold(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Tom", "Tim"), ("Collins", "Colins"), ("Hanks", "Hawks"), ("Eileen", "Eileena")],
)
def test_different_names_stay_different(first: str, second: str) -> None:
    """Folding is not fuzzy matching: other names keep other keys."""
    assert fold(first) != fold(second)


def test_fold_many_is_fold_of_each() -> None:
    """Folding in one pass gives the same keys as folding one by one."""
    texts = ["Eileen Collins", "", "  Tóm  ", "Ｘ\u200bY", "a\x00b", "Москва"]
    assert fold_many(texts) == [fold(t.replace("\x00", "")) for t in texts]


def test_ascii_and_unicode_paths_agree() -> None:
    """An ASCII text folds the same whether or not non-ASCII sits next to it."""
    ascii_text = 'Tom "Hanks" 100% in M0vie |lead|'
    assert normalize(ascii_text + "é").text[:-1] == normalize(ascii_text).text


@pytest.mark.parametrize(
    ("text", "key_slice", "original"),
    [
        ("Tom", (0, 4), "Tom"),                       # m folds to rn: the whole key covers the whole m
        ("xx Tom yy", (3, 7), "Tom"),
        ("a\u200b\u200bb", (1, 2), "b"),              # dropped characters before are not included
        ("a\u0301 b", (0, 1), "a\u0301"),             # marks after are included
        ("a  \n b", (0, 3), "a  \n b"),              # collapsed whitespace
        ("𝐓𝐨𝐦!", (0, 4), "𝐓𝐨𝐦"),
    ],
)
def test_span_maps_back_to_the_original(text: str, key_slice: tuple[int, int], original: str) -> None:
    """A key range becomes the original characters it came from, with following marks and ignorables."""
    normalized = normalize(text)
    begin, end = normalized.span(*key_slice)
    assert text[begin:end] == original


def test_spans_agree_with_span() -> None:
    """The vectorised `spans` gives what `span` gives, and flags ranges cutting a character's key."""
    text = "Tom m\u0301 Ｈａ"
    normalized = normalize(text)
    size = len(normalized.text)
    starts, ends = zip(*[(s, e) for s in range(size) for e in range(s + 1, size + 1)], strict=True)
    firsts, lasts, whole = normalized.spans(np.array(starts), np.array(ends))
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        assert normalized.span(start, end) == (firsts[index], lasts[index])
    cut = {(s, e) for s, e, w in zip(starts, ends, whole, strict=True) if not w}
    assert (0, 3) in cut  # "tor" of "torn": ends inside the m
    assert (3, 4) in cut  # "n" alone: starts inside the m


@pytest.mark.parametrize(
    "written",
    ["T.o.m H.a.n.k.s", "T o m  H a n k s", "#TomHanks", "tom_hanks", "Tom-Hanks"],
)
def test_squeezed_drops_separators(written: str) -> None:
    """Without separators, dotted, spaced, hashtag and underscore spellings become the bare letters."""
    squeezed = normalize(f"see {written} now").squeezed()
    assert "tornhanks" in squeezed.text


@pytest.mark.parametrize("text", ["the call sheet, E.i.l.e.e.n!", "Москва_東京 é", "", "!!"])
def test_squeezed_positions_point_at_the_kept_characters(text: str) -> None:
    """Each squeezed character sits at its position in the key (ASCII and non-ASCII paths)."""
    normalized = normalize(text)
    squeezed = normalized.squeezed()
    positions = squeezed.positions().tolist()
    assert len(positions) == len(squeezed.text)
    assert all(normalized.text[p] == c for p, c in zip(positions, squeezed.text, strict=True))
    assert all(c.isalnum() for c in squeezed.text)


def test_empty_text() -> None:
    """Nothing in, nothing out."""
    normalized = normalize("")
    assert normalized.text == ""
    assert normalized.squeezed().text == ""
    with pytest.raises(ValueError):
        normalized.span(0, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_normalize_never_raises_and_spans_stay_in_bounds(text: str) -> None:
    """Any text folds; every key range maps to an in-bounds, ordered original span."""
    normalized = normalize(text)
    size = len(normalized.text)
    for start in range(size):
        for end in (start + 1, size):
            begin, finish = normalized.span(start, end)
            assert 0 <= begin < finish <= len(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_origins_never_go_backwards(text: str) -> None:
    """Key order follows original order."""
    normalized = normalize(text)
    origins = normalized.offsets.origins(np.arange(len(normalized.text)))
    assert (np.diff(origins) >= 0).all()
    assert all(0 <= o < len(text) for o in origins.tolist())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fold_is_idempotent(text: str) -> None:
    """A key is its own key, so patterns and texts meet on the same form."""
    assert fold(fold(text)) == fold(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_ascii_fast_path_matches_the_general_path(text: str) -> None:
    """The ASCII byte path folds exactly as the per-code-point table does."""
    assert normalize(text).text == normalize(text + "é").text[: len(normalize(text).text)]


# ---------------------------------------------------------------- the `str` path is the vectorised path

SPECIAL = 'mM"%  \t\n\r\x0b\x0c\x1c\x1f\x00?'
"""ASCII characters whose key is not one character (m → rn, " → '', % → o/o), whitespace that collapses, NUL, ?."""
UNICODE_SPECIAL = (
    "\u00a0\u2003\u3000\u200b\u200d\u00ad\u202e\ufeff\U000e0041\ufe0f\u0301\u0336éÉæßﬁ½ＴⓉ𝐓οаı’—…“"
    "\ufdfa\U0001f16d\u0130\u1e9e\u2126ǅ\ud800\udfff東한ก٣𝟵"
)
"""spaces, ignorables, marks, expansions (ﬁ, ½, spaces inside U+FDFA, after 🅭), homoglyphs, a lone surrogate, digits."""


def reference(text: str) -> Normalized:
    """The vectorised numpy path, which every text took before the `str` path existed."""
    return _normalize_vectorised(text)


def parts(normalized: Normalized) -> tuple[str, list[list[int]], list[str], int]:
    """Key, offset arrays, their dtypes and the original length: everything a `Normalized` holds."""
    arrays = (normalized.offsets.starts, normalized.offsets.sources, normalized.offsets.lengths,
              normalized.offsets.shifts)
    return normalized.text, [a.tolist() for a in arrays], [str(a.dtype) for a in arrays], normalized.source_length


texts = (
    st.text(alphabet=st.characters(codec="ascii"), max_size=120)
    | st.text(alphabet=st.sampled_from(list(SPECIAL + "abTo 1!@$")), max_size=400)
    | st.text(alphabet=st.sampled_from(list(SPECIAL + UNICODE_SPECIAL + "ab ")), max_size=200)
    | st.text(max_size=100)
)


@settings(max_examples=600, deadline=None)
@given(texts)
def test_str_path_gives_the_vectorised_key_and_offsets(text: str) -> None:
    """Key, offset map (values, dtypes) and length are the vectorised path's: ASCII or not, few or many specials."""
    expected = parts(reference(text))
    assert parts(normalize(text)) == expected
    eager = _normalize_str(text)  # what makes the map of a short text when it is first asked for
    assert eager is None or parts(eager) == expected


@pytest.mark.parametrize(
    "text",
    ["", " ", "  ", "m", "mm  mm", 'a "quoted" 100% M\t\t\nb ', " " * 200, "m" * 70, "ma " * 40, "x  " * 40,
     "\x1c\x1d\x1e\x1f", "end  ", "\u00a0 \u200b \u3000x", "a \ufdfa  b", "\ufdfa\ufdfa",
     "\U0001f16d  \U0001f16d\U0001f16d", "é" * 70, "?" * 80 + "é",
     "Tom\u00a0\nHanks", "T\u0336o\u0336m\u0336", "\u200b" * 3 + "  a"],
    ids=repr,
)
def test_str_path_edge_cases(text: str) -> None:
    """Empty text, only spaces, runs at either end, ignorables between spaces, and just over the threshold."""
    expected = parts(reference(text))
    assert parts(normalize(text)) == expected
    eager = _normalize_str(text)
    assert eager is None or parts(eager) == expected


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(0, 400), st.integers(1, 400))
def test_str_path_spans_are_the_vectorised_spans(text: str, start: int, width: int) -> None:
    """A key range maps back to the same original span, and the same whole-character flag, on both paths."""
    normalized, expected = normalize(text), reference(text)
    end = min(start + width, len(normalized.text))
    if start >= end:
        return
    assert normalized.span(start, end) == expected.span(start, end)
    got, want = normalized.spans([start], [end]), expected.spans([start], [end])
    assert [a.tolist() for a in got] == [a.tolist() for a in want]


WORDY = st.text(alphabet=st.sampled_from(list("Mm_aZ09 \"%.-'\u00e9\u0130\u00bd\u2474\U0001f16d\ufdfa")), max_size=80)


@settings(max_examples=400, deadline=None)
@given(texts | WORDY)
def test_fold_words_is_fold_many_of_each_word(text: str) -> None:
    """Word keys in one pass equal `fold_many` of the words (runs of letters and digits), spaces dropped from each."""
    words = re.findall(r"[^\W_]+", text)
    assert fold_words(text) == [key.replace(" ", "") for key in fold_many(words)]


@settings(max_examples=300, deadline=None)
@given(texts | WORDY)
def test_squeezed_with_few_non_ascii_is_the_table_path(text: str) -> None:
    """Squeezing a key stretch by stretch keeps exactly the letters and digits the code-point table keeps."""
    key = normalize(text).text
    expected = "".join(c for c in key if c.isalnum())
    assert normalize(text).squeezed().text == expected
    assert _normalize_vectorised(text).squeezed().text == expected


def test_word_character_table_is_isalnum() -> None:
    """The table of letters and digits, built by the regex engine, is `str.isalnum` of every code point."""
    table = _word_characters()
    assert [code for code in range(0x110000) if chr(code).isalnum()] == np.flatnonzero(table).tolist()
