"""Registered script pages: found verbatim, edited, excerpted or obfuscated; other pages and short texts are not."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from gateway.config.models import IntellectualProperty, Registry
from gateway.content.inputs import Inputs, TextItem
from gateway.detect.finding import DetectionContext
from gateway.detect.script import (
    THRESHOLD,
    ScriptDetector,
    ScriptDocument,
    ScriptIndex,
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
