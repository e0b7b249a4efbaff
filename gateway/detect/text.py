"""Registered names, titles, characters and confidential terms in the texts of a request.

    TermIndex      compiled once: every term's key (`gateway.detect.normalize.fold`) in one
                   Aho-Corasick automaton, long terms also squeezed into a second one
    NameDetector   registry terms: talent names and aliases → `talent_name`,
                   IP titles, characters and terms → `ip_reference`
    TermDetector   a production's confidential terms → `confidential`

All texts of a request are searched as one: they are joined with a newline, so a name split
across two messages ("… Eileen" | "Collins …") is found; such a hit becomes one finding per text
it touches, each with its own span. A hit counts only on word boundaries of the *original* text
(so `Collinsworth` is not `Collins`, while `Collins!` is), never starting or ending inside one
original character's key (`m` folds to `rn`: `Tom` is not `Tor`). Term edges in scripts
written without spaces (CJK, Thai) have no boundary to check.

Squeezed matching (separators dropped: `E.i.l.e.e.n C.o.l.l.i.n.s`, `#EileenCollins`) applies to
terms of at least `SQUEEZE_MIN_LETTERS` letters, and a squeezed hit must either break where the
term's words break (`eileen_collins`, `EileenCollins`) or be spelt out a letter or two at a time
(`E i l e e n`); words run together by accident ("… ka lo mira den …") are not names.

A term that is one common word ("Will", "Up") matches only where the text writes it capitalised.
Indexes are immutable once built and safe to share between threads (build them once per
configuration load: 100,000 terms take a few seconds; see `TermIndex` for memory).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick_rs
import numpy as np
import numpy.typing as npt

from gateway.config.models import ConfidentialTerm, GatewayConfig, Production, Registry
from gateway.content.inputs import Inputs
from gateway.errors import ConfigError

from .finding import DetectionContext, Finding, FindingKind
from .normalize import Normalized, fold, fold_many, normalize

__all__ = ["SQUEEZE_MIN_LETTERS", "NameDetector", "Term", "TermDetector", "TermHit", "TermIndex", "registry_terms"]

SQUEEZE_MIN_LETTERS = 10
"""Terms whose key has at least this many letters are also matched with separators dropped."""

_SEPARATOR = "\n"
_SEPARATORS = re.compile(r"[\W_]+")
_UNSPACED_SCRIPTS = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B–G
)
"""Scripts written without spaces between words: a term there has no word boundary to check."""
_MIN_KEY_LETTERS = 2
_SPELT_OUT_RUN = 2
_PLAIN_SCORE = 1.0
_SQUEEZED_SCORE = 0.9
_COMMON_WORDS_TEXT = """
    a about after again all also an and any are as at away back be because been before being best
    big both but by call came can case come could day did do does done down each end even ever every
    face far few find first for free from get give go going good great had has have he her here him
    his home how i if in into is it its just keep kind know last left let life light like line little
    long look love made make man many may me might more most much must my name never new next night
    no not now of off old on once one only or other our out over own part people place play put read
    real right same say see she should show side so some still such take tell than that the their
    them then there these they thing think this those time to too turn two under up us use very want
    was way we well went were what when where which while who why will with word work world would
    year yes yet you young your
"""


@dataclass(frozen=True, slots=True)
class Term:
    """One string to find, and what a hit means."""

    text: str
    kind: FindingKind
    entity: str
    """talent id, IP id, or for confidential terms their kind (title, character, location, …)."""
    role: str
    """content-free description for reviewers: name, alias, title, character, term, confidential."""


@dataclass(frozen=True, slots=True)
class TermHit:
    """A term found in one text: `span` are character offsets in `texts[item]`."""

    term: Term
    item: int
    span: tuple[int, int]
    squeezed: bool
    pieces: int
    """how many texts the occurrence spans (2 or more: a name split across messages)."""
    evasive: bool
    """the original differs from the term by more than case and spacing (homoglyphs, leet, marks, …)."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    key: str
    terms: tuple[Term, ...]
    word_start: bool
    word_end: bool
    breaks: frozenset[int]
    """squeezed positions where the term's words break (for the squeezed guard)."""
    proper: bool
    """a single common word: match only where the text writes it capitalised."""


@dataclass(frozen=True, slots=True)
class _Occurrence:
    pattern: _Pattern
    span: tuple[int, int]
    squeezed: bool


class TermIndex:
    """Many terms compiled once into Aho-Corasick automata over their normalised keys.

    By default the automata are DFAs: the fastest search (55 MB/s end to end for 100,000 terms
    here) at about 90 MB of memory per automaton per 100,000 terms. `compact=True` builds
    contiguous NFAs instead: about 11 MB each, searching at roughly half the speed.
    """

    def __init__(self, terms: Iterable[Term], *, compact: bool = False) -> None:
        terms = list(terms)
        grouped: dict[str, list[Term]] = {}
        for term, key in zip(terms, fold_many([t.text for t in terms]), strict=True):
            grouped.setdefault(_checked_key(term, key), []).append(term)
        self._patterns = tuple(_pattern(key, tuple(found)) for key, found in grouped.items())
        self._plain = _automaton([p.key for p in self._patterns], compact)
        self._long = tuple(p for p in self._patterns if len(_squeeze(p.key)) >= SQUEEZE_MIN_LETTERS)
        self._squeezed = _automaton([_squeeze(p.key) for p in self._long], compact)

    @classmethod
    def from_registry(cls, registry: Registry, *, compact: bool = False) -> TermIndex:
        """Talent names and aliases, IP titles, characters and terms."""
        return cls(registry_terms(registry), compact=compact)

    @classmethod
    def from_confidential(cls, terms: Sequence[ConfidentialTerm]) -> TermIndex:
        """A production's confidential terms (a few, so compact); the finding's entity is the term's kind."""
        return cls((Term(t.term, "confidential", t.kind, t.kind) for t in terms), compact=True)

    def __len__(self) -> int:
        return len(self._patterns)

    def search(self, texts: Sequence[str]) -> list[TermHit]:
        """Every term occurring in `texts`, searched as one text so occurrences may span several."""
        if not self._patterns or not texts:
            return []
        joined = _SEPARATOR.join(texts)
        starts = _starts(texts)
        normalized = normalize(joined)
        matches = _find(self._plain, normalized.text)
        occurrences = self._plain_occurrences(joined, normalized, matches)
        plain = {(self._patterns[index].key, start, end) for index, start, end in matches.tolist()}
        occurrences += self._squeezed_occurrences(joined, normalized, plain)
        return [hit for o in occurrences for hit in _hits(o, joined, texts, starts)]

    def _plain_occurrences(
        self, joined: str, normalized: Normalized, matches: npt.NDArray[np.int64]
    ) -> list[_Occurrence]:
        if not len(matches):
            return []
        firsts, lasts, whole = normalized.spans(matches[:, 1], matches[:, 2])
        found = []
        kept = zip(matches[whole, 0].tolist(), firsts[whole].tolist(), lasts[whole].tolist(), strict=True)
        for index, first, last in kept:
            pattern = self._patterns[index]
            if _bounded(joined, (first, last), pattern) and _cased(joined, (first, last), pattern):
                found.append(_Occurrence(pattern, (first, last), squeezed=False))
        return found

    def _squeezed_occurrences(
        self, joined: str, normalized: Normalized, plain: set[tuple[str, int, int]]
    ) -> list[_Occurrence]:
        """Hits of the squeezed automaton that the plain one did not already make (same term, same key range)."""
        if self._squeezed is None:
            return []
        squeezed = normalized.squeezed()
        matches = _find(self._squeezed, squeezed.text)
        if not len(matches):
            return []
        positions = squeezed.positions()
        candidates = [
            (self._long[index], positions[start:end])
            for index, start, end in matches.tolist()
            if (self._long[index].key, int(positions[start]), int(positions[end - 1]) + 1) not in plain
            and _separated_like(positions[start:end], self._long[index], normalized.text)
        ]
        if not candidates:
            return []
        firsts, lasts, whole = normalized.spans(
            np.array([int(p[0]) for _, p in candidates]), np.array([int(p[-1]) + 1 for _, p in candidates])
        )
        found = []
        for (pattern, _), first, last, ok in zip(candidates, firsts.tolist(), lasts.tolist(), whole, strict=True):
            if ok and _bounded(joined, (first, last), pattern):
                found.append(_Occurrence(pattern, (first, last), squeezed=True))
        return found


class NameDetector:
    """Registered talent names and IP titles, characters and terms in the request's texts."""

    name = "text.names"

    def __init__(self, index: TermIndex) -> None:
        self._index = index

    @classmethod
    def from_config(cls, config: GatewayConfig) -> NameDetector:
        return cls(TermIndex.from_registry(config.registry))

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        return _findings(self._index, inputs, self.name)


class TermDetector:
    """A production's confidential terms (unreleased title, characters, locations) in the request's texts.

    Terms come from the production's index (built from its config, with their kinds) plus any
    `context.confidential_terms` it does not already hold (kind `other`).
    """

    name = "text.confidential"

    def __init__(self, indexes: Mapping[str, TermIndex], terms: Mapping[str, frozenset[str]] | None = None) -> None:
        self._indexes = dict(indexes)
        self._known = dict(terms or {})

    @classmethod
    def from_config(cls, config: GatewayConfig) -> TermDetector:
        return cls.from_productions(config.productions)

    @classmethod
    def from_productions(cls, productions: Iterable[Production]) -> TermDetector:
        productions = list(productions)
        return cls(
            {p.id: TermIndex.from_confidential(p.confidential_terms) for p in productions},
            {p.id: frozenset(t.term for t in p.confidential_terms) for p in productions},
        )

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        findings = []
        index = self._indexes.get(context.production)
        if index is not None:
            findings += _findings(index, inputs, self.name)
        known = self._known.get(context.production, frozenset())
        extra = tuple(sorted({t for t in context.confidential_terms if t not in known}))
        if extra:
            findings += _findings(_extra_index(extra), inputs, self.name)
        return findings


def registry_terms(registry: Registry) -> list[Term]:
    """Every term of the registry, with what a hit on it means."""
    terms = []
    for talent in registry.talent:
        terms.append(Term(talent.name, "talent_name", talent.id, "name"))
        terms += [Term(name, "talent_name", talent.id, "name") for name in _inverted(talent.name)]
        terms += [Term(alias, "talent_name", talent.id, "alias") for alias in talent.aliases]
    for work in registry.ip:
        terms.append(Term(work.title, "ip_reference", work.id, "title"))
        terms += [Term(character, "ip_reference", work.id, "character") for character in work.characters]
        terms += [Term(term, "ip_reference", work.id, "term") for term in work.terms]
    return terms


def _inverted(name: str) -> list[str]:
    """"Last, First" for a name of two or more words, as directories and call sheets write it."""
    words = name.split()
    return [f"{words[-1]}, {' '.join(words[:-1])}"] if len(words) > 1 else []


@lru_cache(maxsize=256)
def _extra_index(terms: tuple[str, ...]) -> TermIndex:
    return TermIndex((Term(t, "confidential", "other", "other") for t in terms), compact=True)


def _findings(index: TermIndex, inputs: Inputs, detector: str) -> list[Finding]:
    texts = [item.text for item in inputs.texts]
    return [_finding(hit, inputs, detector) for hit in index.search(texts)]


def _finding(hit: TermHit, inputs: Inputs, detector: str) -> Finding:
    details = [hit.term.role]
    if hit.pieces > 1:
        details.append(f"split across {hit.pieces} texts")
    if hit.squeezed:
        details.append("separators")
    if hit.evasive:
        details.append("obfuscated")
    return Finding(
        kind=hit.term.kind,
        entity=hit.term.entity,
        location=inputs.texts[hit.item].location,
        score=_SQUEEZED_SCORE if hit.squeezed else _PLAIN_SCORE,
        detector=detector,
        span=hit.span,
        detail="; ".join(details),
    )


def _checked_key(term: Term, key: str) -> str:
    if len(_squeeze(key)) < _MIN_KEY_LETTERS:
        raise ConfigError(f"{term.kind} {term.entity}: a {term.role} has fewer than {_MIN_KEY_LETTERS} letters "
                          "once normalised; remove it or spell it out")
    return key


def _pattern(key: str, terms: tuple[Term, ...]) -> _Pattern:
    return _Pattern(
        key=key,
        terms=terms,
        word_start=_bounded_letter(key[0]),
        word_end=_bounded_letter(key[-1]),
        breaks=_breaks(key),
        proper=" " not in key and key in _common_keys(),
    )


@lru_cache(maxsize=1)
def _common_keys() -> frozenset[str]:
    return frozenset(fold(word) for word in _COMMON_WORDS_TEXT.split())


def _automaton(keys: list[str], compact: bool) -> ahocorasick_rs.BytesAhoCorasick | None:
    """An automaton over the keys' UTF-8 bytes reporting every (overlapping) occurrence."""
    if not keys:
        return None
    implementation = ahocorasick_rs.Implementation.ContiguousNFA if compact else ahocorasick_rs.Implementation.DFA
    return ahocorasick_rs.BytesAhoCorasick(
        [key.encode("utf-8", "surrogatepass") for key in keys],
        matchkind=ahocorasick_rs.MatchKind.Standard,
        implementation=implementation,
    )


def _find(automaton: ahocorasick_rs.BytesAhoCorasick | None, text: str) -> npt.NDArray[np.int64]:
    """Every (pattern, start, end) in `text`, overlapping, in characters."""
    if automaton is None or not text:
        return np.zeros((0, 3), dtype=np.int64)
    data = text.encode("utf-8", "surrogatepass")
    found = automaton.find_matches_as_indexes(data, overlapping=True)
    if not found:
        return np.zeros((0, 3), dtype=np.int64)
    matches = np.array(found, dtype=np.int64).reshape(-1, 3)
    if len(data) != len(text) and len(matches):
        matches[:, 1:] = _characters_before(data, matches[:, 1:])
    return matches


def _characters_before(data: bytes, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Character offsets of UTF-8 byte offsets (decoding each stretch between hits once)."""
    unique = np.unique(offsets)
    counts, position, characters = [], 0, 0
    for offset in unique.tolist():
        characters += len(data[position:offset].decode("utf-8", "surrogatepass"))
        counts.append(characters)
        position = offset
    return np.array(counts, dtype=np.int64)[np.searchsorted(unique, offsets)]


def _bounded_letter(char: str) -> bool:
    """Does a term edge on this character need a word boundary? Not in scripts written without spaces."""
    return char.isalnum() and not any(low <= ord(char) <= high for low, high in _UNSPACED_SCRIPTS)


def _squeeze(key: str) -> str:
    return _SEPARATORS.sub("", key)


def _breaks(key: str) -> frozenset[int]:
    """Squeezed positions before which the key had a separator."""
    breaks, letters = set(), 0
    for part in _SEPARATORS.split(key):
        if part and letters:
            breaks.add(letters)
        letters += len(part)
    return frozenset(breaks)


def _starts(texts: Sequence[str]) -> list[int]:
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(_SEPARATOR)
    return starts


def _bounded(joined: str, span: tuple[int, int], pattern: _Pattern) -> bool:
    start, end = span
    before_ok = not pattern.word_start or start == 0 or not joined[start - 1].isalnum()
    after_ok = not pattern.word_end or end >= len(joined) or not joined[end].isalnum()
    return before_ok and after_ok


def _cased(joined: str, span: tuple[int, int], pattern: _Pattern) -> bool:
    """A common-word term counts only where the text capitalises it (a title or a name, not the word)."""
    if not pattern.proper:
        return True
    first = next((c for c in joined[span[0] : span[1]] if c.isalnum()), "")
    return first.isupper() or not first.isalpha()


def _separated_like(positions: np.ndarray, pattern: _Pattern, key: str) -> bool:
    """Every run of letters in a squeezed hit is a whole word of the term, or spelt out a letter or two at a time.

    Between two whole words the separator joins them (`_`, `.`, `-`, nothing) or is plain space;
    punctuation with space ("Eileen. Collins") ends a sentence rather than joining a name.
    """
    keys = positions.tolist()
    cuts = [i for i in range(1, len(keys)) if keys[i] - keys[i - 1] > 1]
    edges = [0, *cuts, len(keys)]
    words = {0, len(keys), *pattern.breaks}
    runs = list(itertools.pairwise(edges))
    if not all(b - a <= _SPELT_OUT_RUN or (a in words and b in words) for a, b in runs):
        return False
    for (a, b), (_, d) in itertools.pairwise(runs):
        gap = key[keys[b - 1] + 1 : keys[b]]
        if b - a > _SPELT_OUT_RUN and d - b > _SPELT_OUT_RUN and " " in gap and gap.strip(" "):
            return False
    return True


def _hits(occurrence: _Occurrence, joined: str, texts: Sequence[str], starts: list[int]) -> list[TermHit]:
    start, end = occurrence.span
    evasive = _plain(joined[start:end]) != _plain(occurrence.pattern.terms[0].text)
    pieces = []
    item = bisect.bisect_right(starts, start) - 1
    while item < len(texts) and starts[item] < end:
        low, high = max(start, starts[item]), min(end, starts[item] + len(texts[item]))
        while low < high and joined[low].isspace():
            low += 1
        while high > low and joined[high - 1].isspace():
            high -= 1
        if high > low:
            pieces.append((item, (low - starts[item], high - starts[item])))
        item += 1
    return [
        TermHit(term, item, span, occurrence.squeezed, len(pieces), evasive)
        for item, span in pieces
        for term in occurrence.pattern.terms
    ]


def _plain(text: str) -> str:
    return " ".join(text.casefold().split())
