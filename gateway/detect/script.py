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

A searched text is folded and hashed once, each distinct word once; every window's signature is
the minimum over its columns of one table of permuted shingle hashes, and where in the text the
words sit is worked out only for a text that matches.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.config.models import GatewayConfig, Registry
from gateway.content.inputs import Inputs
from gateway.errors import ConfigError

from .finding import DetectionContext, Finding
from .normalize import fold_many, fold_words

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
_SIGNATURE_COLUMNS = 4096
"""shingles permuted at a time for the window signatures of a searched text (this × 128 × 8 bytes)."""

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
        if not self._windows:
            return []
        keys = fold_words(text)
        if len(keys) < MIN_WORDS:
            return []
        ranges = _windows(len(keys), whole=False)
        sequence = _shingle_sequence(keys)
        best: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
        spans: list[tuple[int, int]] = []
        for (first, last), candidates in zip(ranges, self._candidates(sequence, ranges), strict=True):
            if not candidates:
                continue
            verified = self._verified(sequence[first : last - SHINGLE_WORDS + 1], candidates)
            spans = spans or _word_spans(text)
            for document, (similarity, shared) in verified.items():
                low, high = first + int(shared[0]), first + min(int(shared[-1]) + SHINGLE_WORDS, last - first) - 1
                best[document].append((similarity, spans[low][0], spans[high][1]))
        return [_match(self._documents[d].ip, d, found) for d, found in sorted(best.items())]

    def _add(self, window: _Window) -> None:
        number = len(self._windows)
        self._windows.append(window)
        for key in _band_keys(signature(window.shingles)[None, :]):
            self._buckets[key].append(number)

    def _candidates(self, sequence: Hashes, ranges: list[tuple[int, int]]) -> list[set[int]]:
        """Per word range of the searched text: the registered windows sharing at least one LSH band with it."""
        signatures = _window_signatures(sequence, ranges)
        buckets = list(map(self._buckets.get, _band_keys(signatures)))
        bands = PERMUTATIONS // BAND_ROWS
        found = []
        for start in range(0, len(buckets), bands):
            hits = [bucket for bucket in buckets[start : start + bands] if bucket]
            found.append({number for bucket in hits for number in bucket})
        return found

    def _verified(self, sequence: Hashes, candidates: set[int]) -> dict[int, tuple[float, npt.NDArray[np.intp]]]:
        """Per document: the best exact Jaccard at or above the threshold, and which shingles of `sequence` match."""
        query = np.unique(sequence)
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
    distinct = {word: number for number, word in enumerate(dict.fromkeys(words))}
    hashes = np.array([_word_hash(word) for word in distinct], dtype=np.uint64)
    hashed = hashes[np.array([distinct[word] for word in words], dtype=np.intp)]
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


def _window_signatures(sequence: Hashes, ranges: list[tuple[int, int]]) -> npt.NDArray[np.uint32]:
    """`signature` of the shingles of each word range (a row each): the least value over its rows of one table.

    Shingle i of `sequence` starts at word i, so words [first, last) hold shingles [first, last - 2]
    (every searched window has at least `MIN_WORDS` words). The table is built a few thousand
    shingles at a time, for the windows that fit.
    """
    spans = [(first, last - SHINGLE_WORDS + 1) for first, last in ranges]
    signatures = np.empty((len(spans), PERMUTATIONS), dtype=np.uint32)
    done = 0
    while done < len(spans):
        low = spans[done][0]
        group = [span for span in spans[done:] if span[1] - low <= _SIGNATURE_COLUMNS] or [spans[done]]
        table = _permuted(sequence[low : max(end for _, end in group)])
        for row, (start, end) in enumerate(group, done):
            signatures[row] = table[start - low : end - low].min(axis=0)
        done += len(group)
    return signatures


def _permuted(hashes: Hashes) -> npt.NDArray[np.uint32]:
    """Every hash (row) under every permutation (column), as `signature` takes its minimum over."""
    multipliers, offsets = _permutations()
    with np.errstate(over="ignore"):
        mixed = hashes[:, None] * multipliers[None, :] + offsets[None, :]
    return (mixed >> np.uint64(32)).astype(np.uint32)


def _permutations() -> tuple[Hashes, Hashes]:
    return _PERMUTATIONS


def _make_permutations() -> tuple[Hashes, Hashes]:
    rng = np.random.default_rng(_SEED)
    multipliers = rng.integers(1, 2**63, size=PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    offsets = rng.integers(0, 2**63, size=PERMUTATIONS, dtype=np.uint64)
    return multipliers, offsets


_PERMUTATIONS = _make_permutations()


def _band_keys(signatures: npt.NDArray[np.uint32]) -> list[bytes]:
    """The LSH key of every band of every signature (a row each), signature by signature.

    A key is the band's number (2 bytes, big-endian) then its rows' values (native byte order), as
    numpy's fixed-width bytes give them back: without trailing zero bytes (every key has the same
    width, so that keeps keys distinct).
    """
    bands = signatures.shape[1] // BAND_ROWS
    rows = np.ascontiguousarray(signatures, dtype=np.uint32).reshape(-1, BAND_ROWS).view(np.uint8)
    numbers = np.tile(_band_numbers(bands), (len(signatures), 1))
    keyed = np.concatenate([numbers, rows], axis=1)
    return keyed.view(f"S{keyed.shape[1]}").ravel().tolist()


@cache
def _band_numbers(bands: int) -> npt.NDArray[np.uint8]:
    numbers = np.array([band.to_bytes(2, "big") for band in range(bands)], dtype="S2").view(np.uint8).reshape(bands, 2)
    numbers.flags.writeable = False
    return numbers


def _finalise(values: Hashes) -> Hashes:
    """splitmix64 finaliser: spreads the combined word hashes over all 64 bits."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58_476D_1CE4_E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D0_49BB_1331_11EB)
        return values ^ (values >> np.uint64(31))


@lru_cache(maxsize=1 << 15)
def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _words(text: str) -> _Words:
    found = [(m.group(), m.span()) for m in _WORD.finditer(text)]
    keys = fold_many([word for word, _ in found])
    return _Words([k.replace(" ", "") for k in keys], [span for _, span in found])


def _word_spans(text: str) -> list[tuple[int, int]]:
    """Where each word of `fold_words(text)` sits in `text`."""
    return [m.span() for m in _WORD.finditer(text)]


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
