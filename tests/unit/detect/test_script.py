"""Registered script pages: found verbatim, edited, excerpted or obfuscated; other pages and short texts are not."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.models import IntellectualProperty, Registry
from gateway.content.inputs import Inputs, TextItem
from gateway.detect import script
from gateway.detect.finding import DetectionContext
from gateway.detect.normalize import fold_many, fold_words
from gateway.detect.script import (
    MIN_WORDS,
    PERMUTATIONS,
    SHINGLE_WORDS,
    THRESHOLD,
    ScriptDetector,
    ScriptDocument,
    ScriptIndex,
    ScriptMatch,
    jaccard,
    shingles,
    signature,
)
from gateway.errors import ConfigError

VOCABULARY = (
    "the a door opens she he looks at camera walks into room quietly rain phone rings we see window "
    "detective coffee letter gun stairs silence shadow mother brother train station night"
)
WORDS = VOCABULARY.split()
CONTEXT = DetectionContext(capability="chat", production="northern-lights")


def page(seed: int) -> str:
    """A screenplay-like page: sluglines, character cues and action lines from one small vocabulary."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    lines = []
    for _ in range(38):
        roll = rng.random()
        if roll < 0.12:
            lines.append(f"INT. {rng.choice(['KITCHEN', 'OFFICE', 'CAR', 'STATION'])} - {rng.choice(['NIGHT', 'DAY'])}")
        elif roll < 0.3:
            lines.append(rng.choice(["MAYA", "JONAH", "DETECTIVE REYES"]))
        else:
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 10))))
    return "\n".join(lines)


def edited(text: str, share: float, seed: int = 5) -> str:
    """`share` of the words replaced by others from the vocabulary."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    return " ".join(w if rng.random() > share else rng.choice(WORDS) for w in text.split(" "))


PAGES = [page(seed) for seed in range(40)]
INDEX = ScriptIndex(
    [
        ScriptDocument("blue-meridian", "draft.txt", "\n\f".join(PAGES[:20])),
        ScriptDocument("other-show", "pilot.txt", "\n\f".join(PAGES[20:30])),
    ]
)

FOUND = [
    ("a registered page", PAGES[3], "blue-meridian"),
    ("a page of the second document", PAGES[25], "other-show"),
    ("15 % of words replaced", edited(PAGES[7], 0.15), "blue-meridian"),
    ("half a page", "\n".join(PAGES[10].split("\n")[:19]), "blue-meridian"),
    ("upper-cased", PAGES[4].upper(), "blue-meridian"),
    ("reflowed on one line", " ".join(PAGES[5].split()), "blue-meridian"),
    ("homoglyphs", PAGES[6].replace("o", "ο").replace("a", "а"), "blue-meridian"),
    ("inside a request", "Punch up this scene, keep the tone:\n\n" + PAGES[12] + "\n\nThanks!", "blue-meridian"),
]


@pytest.mark.parametrize(("case", "text", "ip"), FOUND, ids=[c for c, _, _ in FOUND])
def test_registered_pages_are_found(case: str, text: str, ip: str) -> None:
    """A registered page is found in its usual disguises, with the right IP and a Jaccard above the threshold."""
    matches = INDEX.search(text)
    assert [m.ip for m in matches] == [ip]
    assert matches[0].jaccard >= THRESHOLD


NOT_FOUND = [
    ("an unregistered page in the same format", PAGES[35]),
    ("heavily rewritten", edited(PAGES[8], 0.6)),
    ("too short to compare", " ".join(PAGES[3].split()[:20])),
    ("empty", ""),
    ("ordinary prose", "Please summarise the attached budget and list the three largest line items. " * 10),
]


@pytest.mark.parametrize(("case", "text"), NOT_FOUND, ids=[c for c, _ in NOT_FOUND])
def test_other_texts_are_not_found(case: str, text: str) -> None:
    """Different pages in the same format and vocabulary, heavy rewrites and short quotes do not match."""
    assert INDEX.search(text) == []


def test_span_covers_the_pasted_page() -> None:
    """The span of a match covers the registered page inside the request text, not the words around it."""
    before, after = "Rewrite this, please.\n\n", "\n\nKeep it under two pages."
    text = before + PAGES[2] + after
    (match,) = INDEX.search(text)
    start, end = match.span
    assert len(before) - 1 <= start <= len(before) + 20
    assert len(before) + len(PAGES[2]) - 20 <= end <= len(before) + len(PAGES[2])


def test_detector_findings() -> None:
    """Findings: kind ip_script, the IP id, the item's location and span, a content-free detail."""
    inputs = Inputs(
        texts=(TextItem("hello", "body.messages[0].content"), TextItem(PAGES[9], "body.messages[1].content"))
    )
    (finding,) = ScriptDetector(INDEX).detect(inputs, CONTEXT)
    assert (finding.kind, finding.entity, finding.location, finding.detector) == (
        "ip_script", "blue-meridian", "body.messages[1].content", "text.scripts"
    )
    assert finding.score >= THRESHOLD and finding.span is not None
    assert finding.detail.startswith("document 0; jaccard ")
    assert not any(word in finding.detail.split() for word in WORDS)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ([1, 2, 3], [1, 2, 3], 1.0),
        ([1, 2, 3], [4, 5], 0.0),
        ([1, 2, 3, 4], [3, 4, 5, 6], 2 / 6),
        ([], [], 1.0),
    ],
)
def test_exact_jaccard(first: list[int], second: list[int], expected: float) -> None:
    """The verification step is the exact Jaccard of the shingle sets."""
    assert jaccard(np.array(first, dtype=np.uint64), np.array(second, dtype=np.uint64)) == pytest.approx(expected)


def test_shingles_follow_word_order_and_normalisation() -> None:
    """Shingles are of normalised words in order: case and accents do not matter, order does."""
    assert np.array_equal(shingles(["door", "opens", "slowly"]), shingles(["door", "opens", "slowly"]))
    assert not np.array_equal(shingles(["door", "opens", "slowly"]), shingles(["opens", "door", "slowly"]))
    assert len(shingles(["a", "b", "c", "d"])) == 2
    assert len(shingles(["a"])) == 1 and len(shingles([])) == 0


def test_minhash_estimates_jaccard() -> None:
    """The share of equal signature values estimates the Jaccard similarity (within sampling error)."""
    first = shingles(" ".join(PAGES[1].split()).split())
    second = shingles(edited(" ".join(PAGES[1].split()), 0.15).split())
    estimate = float(np.mean(signature(first) == signature(second)))
    assert abs(estimate - jaccard(first, second)) < 0.15


def test_from_registry_reads_script_files(tmp_path: Path) -> None:
    """Scripts are read relative to the IP's folder in the configuration directory."""
    folder = tmp_path / "registry" / "ip" / "blue-meridian"
    folder.mkdir(parents=True)
    (folder / "draft.txt").write_text(PAGES[0], encoding="utf-8")
    registry = Registry(ip=[IntellectualProperty(id="blue-meridian", title="Blue Meridian", scripts=["draft.txt"])])
    index = ScriptIndex.from_registry(registry, tmp_path)
    assert len(index) == 1 and index.document(0).name == "draft.txt"
    assert [m.ip for m in index.search(PAGES[0])] == ["blue-meridian"]


@pytest.mark.parametrize("content", [None, b"\xff\xfe\x00 not utf-8 \xc3\x28"])
def test_unreadable_scripts_are_config_errors(tmp_path: Path, content: bytes | None) -> None:
    """A missing or non-UTF-8 script fails the build with ConfigError naming the file."""
    folder = tmp_path / "registry" / "ip" / "blue-meridian"
    folder.mkdir(parents=True)
    if content is not None:
        (folder / "draft.txt").write_bytes(content)
    registry = Registry(ip=[IntellectualProperty(id="blue-meridian", title="Blue Meridian", scripts=["draft.txt"])])
    with pytest.raises(ConfigError, match=r"draft\.txt"):
        ScriptIndex.from_registry(registry, tmp_path)


def test_empty_index() -> None:
    """No registered scripts: nothing is ever found."""
    assert ScriptIndex([]).search(PAGES[0]) == []


# ---------------------------------------------------------------- the search gives the window-by-window results

DOCUMENTS = [
    ScriptDocument("blue-meridian", "draft.txt", "\n\f".join(PAGES[:20])),
    ScriptDocument("other-show", "pilot.txt", "\n\f".join(PAGES[20:30])),
]


def reference_shingles(words: list[str]) -> np.ndarray:
    """`_shingle_sequence` as first written: every word hashed where it stands."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    hashed = np.array([script._word_hash(w) for w in words], dtype=np.uint64)
    with np.errstate(over="ignore"):
        if len(hashed) < SHINGLE_WORDS:
            combined = np.array([np.bitwise_xor.reduce(hashed * script._MIX)], dtype=np.uint64)
        else:
            count = len(hashed) - SHINGLE_WORDS + 1
            combined = np.zeros(count, dtype=np.uint64)
            for offset in range(SHINGLE_WORDS):
                combined = (combined * script._MIX) ^ hashed[offset : offset + count]
    return script._finalise(combined)


def reference_band_keys(values: np.ndarray) -> list[bytes]:
    return [band.to_bytes(2, "big") + row.tobytes() for band, row in enumerate(values.reshape(-1, 2))]


class ReferenceIndex:
    """The index and search as first written: words with their spans, each window hashed, signed and looked up alone."""

    def __init__(self, documents: list[ScriptDocument]) -> None:
        self.documents = documents
        self.windows: list[tuple[int, np.ndarray]] = []
        self.buckets: dict[bytes, list[int]] = defaultdict(list)
        for number, document in enumerate(documents):
            keys, _ = self.words(document.text)
            for first, last in script._windows(len(keys), whole=True):
                window = np.unique(reference_shingles(keys[first:last]))
                for key in reference_band_keys(signature(window)):
                    self.buckets[key].append(len(self.windows))
                self.windows.append((number, window))

    @staticmethod
    def words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
        found = [(m.group(), m.span()) for m in re.finditer(r"[^\W_]+", text)]
        return [k.replace(" ", "") for k in fold_many([w for w, _ in found])], [span for _, span in found]

    def candidates(self, keys: list[str], first: int, last: int) -> set[int]:
        query = np.unique(reference_shingles(keys[first:last]))
        return {n for key in reference_band_keys(signature(query)) for n in self.buckets.get(key, ())}

    def search(self, text: str) -> list[ScriptMatch]:
        keys, spans = self.words(text)
        if len(keys) < MIN_WORDS or not self.windows:
            return []
        best: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
        for first, last in script._windows(len(keys), whole=False):
            sequence = reference_shingles(keys[first:last])
            query = np.unique(sequence)
            candidates = self.candidates(keys, first, last)
            found: dict[int, tuple[float, np.ndarray]] = {}
            for number in sorted(candidates):
                document, shingled = self.windows[number]
                similarity = jaccard(query, shingled)
                if similarity >= THRESHOLD and similarity > found.get(document, (0.0,))[0]:
                    found[document] = (similarity, np.flatnonzero(np.isin(sequence, shingled)))
            for document, (similarity, shared) in found.items():
                low, high = first + int(shared[0]), first + min(int(shared[-1]) + SHINGLE_WORDS, last - first) - 1
                best[document].append((similarity, spans[low][0], spans[high][1]))
        return [script._match(self.documents[d].ip, d, found) for d, found in sorted(best.items())]


REFERENCE = ReferenceIndex(DOCUMENTS)


@st.composite
def request_texts(draw: st.DrawFn) -> str:
    """Registered pages, edited, cut, joined, disguised or not, with other text around them."""
    pages = draw(st.lists(st.sampled_from(PAGES), min_size=1, max_size=3))
    text = "\n".join(edited(p, draw(st.sampled_from([0.0, 0.1, 0.3, 0.6])), seed=draw(st.integers(0, 99)))
                     for p in pages)
    words = text.split(" ")
    start = draw(st.integers(0, len(words)))
    text = " ".join(words[start : start + draw(st.integers(0, 600))])
    disguise = draw(st.sampled_from(["", "upper", "homoglyphs", "punctuation"]))
    if disguise == "upper":
        text = text.upper()
    elif disguise == "homoglyphs":
        text = text.replace("o", "ο").replace("a", "а")
    elif disguise == "punctuation":
        text = text.replace(" ", draw(st.sampled_from([", ", " — ", "_", "\u200b ", "  "])))
    return draw(st.text(max_size=40)) + text + draw(st.text(max_size=40))


@settings(max_examples=150, deadline=None)
@given(st.one_of(request_texts(), st.text(max_size=300), st.lists(st.sampled_from(WORDS), max_size=400).map(" ".join)))
def test_search_gives_what_the_window_by_window_search_gave(text: str) -> None:
    """Same LSH candidates per window, and same documents, spans, Jaccard values and window counts, for any text."""
    keys = fold_words(text)
    ranges = script._windows(len(keys), whole=False)
    assert keys == REFERENCE.words(text)[0]
    assert INDEX._candidates(script._shingle_sequence(keys), ranges) == [
        REFERENCE.candidates(keys, first, last) for first, last in ranges
    ]
    assert INDEX.search(text) == REFERENCE.search(text)


@pytest.mark.parametrize(("case", "text", "_"), FOUND, ids=[c for c, _, _ in FOUND])
def test_registered_pages_match_as_before(case: str, text: str, _: str) -> None:
    """Each disguise of a registered page gives the original search's exact matches."""
    assert INDEX.search(text) == REFERENCE.search(text)


def test_long_text_signatures_are_built_in_pieces() -> None:
    """A text longer than one signature table (several thousand words) matches as the original search does."""
    text = "\n".join(PAGES[25:40] + PAGES[:15] + PAGES[30:40]) * 2
    assert len(text.split()) > 3 * script._SIGNATURE_COLUMNS
    assert INDEX.search(text) == REFERENCE.search(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORDS[:12]), min_size=MIN_WORDS, max_size=700), st.sampled_from([100, 300, 4096]))
def test_window_signatures_are_each_windows_signature(words: list[str], columns: int) -> None:
    """Every window's signature from the one table is `signature` of that window's own shingles, in pieces or not."""
    ranges = script._windows(len(words), whole=False)
    with mock.patch.object(script, "_SIGNATURE_COLUMNS", columns):
        signatures = script._window_signatures(script._shingle_sequence(words), ranges)
    expected = [signature(np.unique(reference_shingles(words[first:last]))) for first, last in ranges]
    assert signatures.tolist() == [e.tolist() for e in expected]


VALUES = st.sampled_from([0, 1, 255, 256, 2**24, 2**32 - 1]) | st.integers(0, 2**32 - 1)


@settings(max_examples=100, deadline=None)
@given(st.lists(VALUES, min_size=2 * PERMUTATIONS, max_size=2 * PERMUTATIONS))
def test_band_keys_are_the_original_keys(values: list[int]) -> None:
    """Each key is the original band number + rows bytes without trailing zero bytes, which keeps keys apart."""
    signatures = np.array(values, dtype=np.uint32).reshape(2, PERMUTATIONS)
    original = [key for row in signatures for key in reference_band_keys(row)]
    assert script._band_keys(signatures) == [key.rstrip(b"\x00") for key in original]
    assert len(set(script._band_keys(signatures))) == len(set(original))
