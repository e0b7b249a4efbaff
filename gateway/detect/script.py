"""Registered script pages and documents in the texts of a request, even after edits.

Every registered text (`IntellectualProperty.scripts`) is cut into overlapping windows of
`WINDOW_WORDS` words (every `STRIDE_WORDS`); each window becomes a set of word 3-shingles over
normalised words (`gateway.detect.normalize.fold`, so homoglyphs and accents do not hide a page)
and a MinHash signature of `PERMUTATIONS` values, banded into a locality-sensitive hash. A text
sent in a request is windowed the same way; each window's LSH candidates are verified with the
exact Jaccard similarity of the shingle sets, and a window at or above `THRESHOLD` (0.3, as
measured in media-matching.md: a page with 15 % of its words replaced keeps about 0.5; different
pages in the same format stay under 0.02) is a match. The matching windows of one text against
one document become one `ip_script` finding, its span covering them.

Texts shorter than `MIN_WORDS` words are not compared (a line or two is a quotation, not a page).
The MinHash is our own (numpy, multiply-shift hashing of 64-bit shingle hashes), so no SciPy is
needed. A `ScriptIndex` is immutable once built and safe to share between threads.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.config.models import GatewayConfig, Registry
from gateway.content.inputs import Inputs
from gateway.errors import ConfigError

from .finding import DetectionContext, Finding
from .normalize import fold_many

__all__ = [
    "MIN_WORDS",
    "THRESHOLD",
    "ScriptDetector",
    "ScriptDocument",
    "ScriptIndex",
    "ScriptMatch",
    "jaccard",
    "shingles",
]

WINDOW_WORDS = 100
STRIDE_WORDS = 25
SHINGLE_WORDS = 3
PERMUTATIONS = 128
BAND_ROWS = 2
THRESHOLD = 0.3
MIN_WORDS = 30

_WORD = re.compile(r"[^\W_]+")
_SEED = 0x6772_6565_6E72_6F6F  # "greenroo": fixed, so signatures are stable across runs and machines
_MIX = np.uint64(0x9E37_79B9_7F4A_7C15)

Hashes = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class ScriptDocument:
    """A registered script or document text."""

    ip: str
    name: str
    """the file name as registered (not content; never includes the text)."""
    text: str


@dataclass(frozen=True, slots=True)
class ScriptMatch:
    """Part of a searched text that matches a registered document; `span` in characters of the searched text."""

    ip: str
    document: int
    """index of the document in the index (registration order)."""
    span: tuple[int, int]
    jaccard: float
    """the best exact Jaccard similarity of a matching window."""
    windows: int


@dataclass(frozen=True, slots=True)
class _Window:
    document: int
    shingles: Hashes


@dataclass(frozen=True, slots=True)
class _Words:
    keys: list[str]
    spans: list[tuple[int, int]]


class ScriptIndex:
    """Registered documents as MinHash-LSH over shingled windows."""

    def __init__(self, documents: Iterable[ScriptDocument]) -> None:
        self._documents = tuple(documents)
        self._windows: list[_Window] = []
        self._buckets: dict[bytes, list[int]] = defaultdict(list)
        for number, document in enumerate(self._documents):
            words = _words(document.text)
            for first, last in _windows(len(words.keys), whole=True):
                self._add(_Window(number, shingles(words.keys[first:last])))
        self._buckets = dict(self._buckets)

    @classmethod
    def from_registry(cls, registry: Registry, directory: Path) -> ScriptIndex:
        """The registry's script texts, read from `directory/registry/ip/<id>/` (the configuration directory)."""
        return cls(_read(registry, Path(directory)))

    @classmethod
    def from_config(cls, config: GatewayConfig, directory: Path) -> ScriptIndex:
        return cls.from_registry(config.registry, directory)

    def __len__(self) -> int:
        return len(self._documents)

    def document(self, number: int) -> ScriptDocument:
        return self._documents[number]

    def search(self, text: str) -> list[ScriptMatch]:
        """Every registered document that a part of `text` matches."""
        words = _words(text)
        if len(words.keys) < MIN_WORDS or not self._windows:
            return []
        best: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
        for first, last in _windows(len(words.keys), whole=False):
            sequence = _shingle_sequence(words.keys[first:last])
            for document, (similarity, shared) in self._verified(sequence).items():
                low, high = first + int(shared[0]), first + min(int(shared[-1]) + SHINGLE_WORDS, last - first) - 1
                best[document].append((similarity, words.spans[low][0], words.spans[high][1]))
        return [_match(self._documents[d].ip, d, found) for d, found in sorted(best.items())]

    def _add(self, window: _Window) -> None:
        number = len(self._windows)
        self._windows.append(window)
        for key in _band_keys(signature(window.shingles)):
            self._buckets[key].append(number)

    def _verified(self, sequence: Hashes) -> dict[int, tuple[float, npt.NDArray[np.intp]]]:
        """Per document: the best exact Jaccard at or above the threshold, and which shingles of `sequence` match."""
        query = np.unique(sequence)
        candidates = {n for key in _band_keys(signature(query)) for n in self._buckets.get(key, ())}
        found: dict[int, tuple[float, npt.NDArray[np.intp]]] = {}
        for number in sorted(candidates):
            window = self._windows[number]
            similarity = jaccard(query, window.shingles)
            if similarity >= THRESHOLD and similarity > found.get(window.document, (0.0,))[0]:
                found[window.document] = (similarity, np.flatnonzero(np.isin(sequence, window.shingles)))
        return found


class ScriptDetector:
    """Registered script pages and documents in each text of the request."""

    name = "text.scripts"

    def __init__(self, index: ScriptIndex) -> None:
        self._index = index

    @classmethod
    def from_config(cls, config: GatewayConfig, directory: Path) -> ScriptDetector:
        return cls(ScriptIndex.from_config(config, directory))

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        findings = []
        for item in inputs.texts:
            for match in self._index.search(item.text):
                findings.append(
                    Finding(
                        kind="ip_script",
                        entity=match.ip,
                        location=item.location,
                        score=round(match.jaccard, 3),
                        detector=self.name,
                        span=match.span,
                        detail=f"document {match.document}; jaccard {match.jaccard:.2f}; {match.windows} windows",
                    )
                )
        return findings


def shingles(words: list[str]) -> Hashes:
    """Sorted unique 64-bit hashes of the word 3-shingles of `words` (fewer words: one shingle of them all)."""
    return np.unique(_shingle_sequence(words))


def _shingle_sequence(words: list[str]) -> Hashes:
    """The shingle hashes in text order: entry i is the shingle starting at word i."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    hashed = np.array([_word_hash(w) for w in words], dtype=np.uint64)
    with np.errstate(over="ignore"):
        if len(hashed) < SHINGLE_WORDS:
            combined = np.array([np.bitwise_xor.reduce(hashed * _MIX)], dtype=np.uint64)
        else:
            count = len(hashed) - SHINGLE_WORDS + 1
            combined = np.zeros(count, dtype=np.uint64)
            for offset in range(SHINGLE_WORDS):
                combined = (combined * _MIX) ^ hashed[offset : offset + count]
    return _finalise(combined)


def jaccard(first: Hashes, second: Hashes) -> float:
    """Exact Jaccard similarity of two sorted unique hash sets."""
    if not len(first) and not len(second):
        return 1.0
    common = len(np.intersect1d(first, second, assume_unique=True))
    return common / (len(first) + len(second) - common)


def signature(hashes: Hashes) -> npt.NDArray[np.uint32]:
    """MinHash signature: for each of `PERMUTATIONS` multiply-shift hashes, the least value over the set."""
    if not len(hashes):
        return np.full(PERMUTATIONS, np.iinfo(np.uint32).max, dtype=np.uint32)
    multipliers, offsets = _permutations()
    with np.errstate(over="ignore"):
        mixed = multipliers[:, None] * hashes[None, :] + offsets[:, None]
    return (mixed >> np.uint64(32)).min(axis=1).astype(np.uint32)


def _permutations() -> tuple[Hashes, Hashes]:
    return _PERMUTATIONS


def _make_permutations() -> tuple[Hashes, Hashes]:
    rng = np.random.default_rng(_SEED)
    multipliers = rng.integers(1, 2**63, size=PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    offsets = rng.integers(0, 2**63, size=PERMUTATIONS, dtype=np.uint64)
    return multipliers, offsets


_PERMUTATIONS = _make_permutations()


def _band_keys(values: npt.NDArray[np.uint32]) -> list[bytes]:
    rows = values.reshape(-1, BAND_ROWS)
    return [band.to_bytes(2, "big") + row.tobytes() for band, row in enumerate(rows)]


def _finalise(values: Hashes) -> Hashes:
    """splitmix64 finaliser: spreads the combined word hashes over all 64 bits."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58_476D_1CE4_E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D0_49BB_1331_11EB)
        return values ^ (values >> np.uint64(31))


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _words(text: str) -> _Words:
    found = [(m.group(), m.span()) for m in _WORD.finditer(text)]
    keys = fold_many([word for word, _ in found])
    return _Words([k.replace(" ", "") for k in keys], [span for _, span in found])


def _windows(count: int, *, whole: bool) -> list[tuple[int, int]]:
    """Word ranges [first, last) of the windows over `count` words (one window if there are fewer)."""
    if count <= WINDOW_WORDS:
        return [(0, count)] if count and (whole or count >= MIN_WORDS) else []
    starts = list(range(0, count - WINDOW_WORDS + 1, STRIDE_WORDS))
    if starts[-1] + WINDOW_WORDS < count:
        starts.append(count - WINDOW_WORDS)
    return [(start, start + WINDOW_WORDS) for start in starts]


def _match(ip: str, document: int, found: list[tuple[float, int, int]]) -> ScriptMatch:
    return ScriptMatch(
        ip=ip,
        document=document,
        span=(min(start for _, start, _ in found), max(end for _, _, end in found)),
        jaccard=max(similarity for similarity, _, _ in found),
        windows=len(found),
    )


def _read(registry: Registry, directory: Path) -> list[ScriptDocument]:
    documents = []
    for work in registry.ip:
        folder = directory / "registry" / "ip" / work.id
        for name in work.scripts:
            path = folder / name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read the registered script ({type(exc).__name__}); "
                                  "it must be a UTF-8 text file") from exc
            documents.append(ScriptDocument(work.id, name, text))
    return documents
