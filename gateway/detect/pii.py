"""Personal data in the texts of a request, offline: patterns plus checksums and validity rules.

Each `Recogniser` is data: a stable name, the kind of personal data it finds (`email`, `phone`,
`government_id`, `card`, `iban`, `address` — the kinds a production's `personal_data.kinds`
lists), a pattern, a validator and a score. `RECOGNISERS` holds them by name and refuses a
second one with the same name; `PiiDetector` runs the ones for the kinds asked for, and refuses
a kind no recogniser provides (a misspelt kind must not silently detect nothing).

    email          addresses with a dotted domain
    phone          candidates validated by Google's libphonenumber metadata (`phonenumbers`)
    us_ssn         123-45-6789 / 123 45 6789 with the SSA's rules (no 000/666/9xx area, no 00
                   group, no 0000 serial, no advertised specimen numbers); 9 bare digits only
                   right after "SSN" / "social security"
    uk_nino        National Insurance numbers with the HMRC prefix rules
    card           13–19 digits, Luhn checksum and a known issuer prefix
    iban           country length table and the ISO 7064 mod-97 checksum
    us_address     street number, name and suffix, optional unit and "City, ST 12345"
    uk_postcode    full UK postcodes (SW1A 1AA)

No NER model is involved: personal names in free text are not found here (registered talent
names are, by `gateway.detect.text`). Findings carry the kind and the recogniser name, never the
matched value.

Most prompts are prose with a few numbers, so a recogniser may declare an `Anchor`: what every
one of its matches contains (digits, or an "@") and how far from its start. `find_pii` then
tries the pattern only around the runs of those characters instead of at every position of the
text, and finds exactly the matches a scan of the whole text finds; a text dense with them, and
a recogniser without an anchor, is scanned whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal, get_args

import numpy as np
import phonenumbers

from gateway.content.inputs import Inputs
from gateway.errors import ConfigError

from .finding import DetectionContext, Finding

__all__ = [
    "PII_KINDS",
    "RECOGNISERS",
    "Anchor",
    "PiiDetector",
    "PiiKind",
    "PiiMatch",
    "Recogniser",
    "RecogniserRegistry",
    "card_valid",
    "email_valid",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "nino_valid",
    "phone_valid",
    "ssn_valid",
]

PiiKind = Literal["email", "phone", "government_id", "card", "iban", "address"]
PII_KINDS: tuple[str, ...] = get_args(PiiKind)

_CONTEXT_CHARS = 40
_NATIONAL_DIGITS = {"US": (10, 11), "CA": (10, 11), "GB": (10, 11)}
"""digit counts of national numbers worth handing to libphonenumber (parsing costs ~0.1 ms)."""
_DEFAULT_REGION = "US"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SPARSE_RUNS = 16
"""a bounded recogniser searches around its anchor runs while there is at most one per this many characters."""
_SPARSE_STARTS = 4
"""an unbounded one tries its pattern at each candidate start while there is at most one per this many characters."""
_FEW_STARTS = 8
"""an unbounded anchor with a longer lead searches onwards from a run's first candidate start instead."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """What every match of a recogniser's pattern holds, so that a text is searched only around it.

    A promise about the pattern (tests/unit/detect/test_pii.py checks it on generated matches): every
    match contains at least `count` characters of the class (`digit`: what `\\d` matches, any Unicode
    decimal digit; `at`: "@"); the first of them is at most `lead` characters after the match starts,
    and is not right after another character of the class; if `before` is set, the match holds the
    character right before that first one, and it is one of `before`. From the start of a match, the
    pattern never looks `reach` or more characters ahead, lookarounds included (None: no such bound).
    """

    characters: Literal["digit", "at"]
    lead: int
    count: int = 1
    reach: int | None = None
    before: str = ""


@dataclass(frozen=True, slots=True)
class Recogniser:
    """One kind of personal data as a pattern and a validator."""

    name: str
    kind: PiiKind
    pattern: re.Pattern[str]
    validate: Callable[[str], bool]
    score: float
    context: re.Pattern[str] | None = None
    """if set, a match counts only when this occurs in the `_CONTEXT_CHARS` characters before it."""
    group: int | str = 0
    """the regex group whose span is reported."""
    anchor: Anchor | None = None
    """where matches can be (see `Anchor`); None: the whole text is scanned."""


@dataclass(frozen=True, slots=True)
class PiiMatch:
    recogniser: Recogniser
    span: tuple[int, int]


class RecogniserRegistry:
    """Recognisers by name; a second recogniser with a known name is an error."""

    def __init__(self, recognisers: Iterable[Recogniser] = ()) -> None:
        self._by_name: dict[str, Recogniser] = {}
        for recogniser in recognisers:
            self.add(recogniser)

    def add(self, recogniser: Recogniser) -> Recogniser:
        if recogniser.name in self._by_name:
            raise ValueError(f"recogniser {recogniser.name!r} is already registered")
        if recogniser.kind not in PII_KINDS:
            raise ValueError(f"recogniser {recogniser.name!r}: unknown kind {recogniser.kind!r}")
        self._by_name[recogniser.name] = recogniser
        return recogniser

    def __getitem__(self, name: str) -> Recogniser:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Recogniser]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def for_kinds(self, kinds: Iterable[str]) -> tuple[Recogniser, ...]:
        """The recognisers of `kinds`; ConfigError for a kind none provides."""
        wanted = set(kinds)
        provided = {r.kind for r in self}
        unknown = sorted(wanted - provided)
        if unknown:
            raise ConfigError(f"personal data kinds {unknown} are not recognised; use {sorted(provided)}")
        return tuple(r for r in self if r.kind in wanted)


# ---------------------------------------------------------------- validators


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_CARD_PREFIXES = (
    (("4",), (13, 16, 19)),                                             # Visa
    (tuple(str(p) for p in range(51, 56)), (16,)),                      # Mastercard
    (tuple(str(p) for p in range(2221, 2721)), (16,)),                  # Mastercard 2-series
    (("34", "37"), (15,)),                                              # American Express
    (("6011", "65", *(str(p) for p in range(644, 650))), (16, 19)),     # Discover
    (tuple(str(p) for p in range(3528, 3590)), (16, 19)),               # JCB
    (("36", "38", "39", *(str(p) for p in range(300, 306))), (14, 16, 19)),  # Diners Club
    (("62",), (16, 17, 18, 19)),                                        # UnionPay
    (("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763"), tuple(range(12, 20))),  # Maestro
)


def card_valid(text: str) -> bool:
    """13–19 digits from a known issuer whose Luhn checksum holds."""
    digits = re.sub(r"[ -]", "", text)
    if not luhn_valid(digits) or len(set(digits)) == 1:
        return False
    return any(
        digits.startswith(prefixes) and len(digits) in lengths for prefixes, lengths in _CARD_PREFIXES
    )


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def iban_valid(text: str) -> bool:
    """An IBAN of its country's length whose ISO 7064 mod-97 checksum is 1."""
    compact = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    if _IBAN_LENGTHS.get(compact[:2], len(compact)) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


_SSN_SPECIMENS = frozenset({"078051120", "219099999", "123456789", "111111111", "333333333"})


def ssn_valid(text: str) -> bool:
    """A US social security number the SSA could have issued (no 000/666/9xx area, 00 group, 0000 serial)."""
    digits = re.sub(r"[ -]", "", text)
    if len(digits) != 9 or not digits.isdigit() or digits in _SSN_SPECIMENS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_valid(text: str) -> bool:
    """A UK National Insurance number: allowed letters, no administrative prefix, suffix A–D."""
    compact = re.sub(r"\s", "", text).upper()
    return bool(re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", compact)) and (
        compact[:2] not in _NINO_BAD_PREFIXES
    )


def email_valid(text: str) -> bool:
    local = text.split("@", 1)[0]
    return not (local.startswith(".") or local.endswith(".") or ".." in text)


def phone_valid(text: str, region: str = _DEFAULT_REGION) -> bool:
    """A number libphonenumber considers valid (international with +, else in `region`)."""
    digits = sum(c.isdigit() for c in text)
    international = text.lstrip().startswith("+")
    national = _NATIONAL_DIGITS.get(region, range(7, 16))
    if not (8 <= digits <= 15 if international else digits in national):
        return False
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


@lru_cache(maxsize=4096)
def _phone_valid_remembered(text: str) -> bool:
    """`phone_valid`, remembered: parsing costs ~30 us, and chats resend earlier messages with every request."""
    return phone_valid(text)


def _always(_: str) -> bool:
    return True


# ---------------------------------------------------------------- the recognisers

_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Aly|Plaza|Plz)"
)

RECOGNISERS = RecogniserRegistry(
    [
        Recogniser(
            "email",
            "email",
            re.compile(
                r"(?<![\w.+%-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                r"[A-Za-z]{2,24}(?![\w-])"
            ),
            email_valid,
            1.0,
            anchor=Anchor("at", lead=64),
        ),
        Recogniser(
            "phone",
            "phone",
            re.compile(
                r"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}(?![\w/-]|\.\d)"
                r"|(?<![\w+/.-])\+?\d{10,13}(?![\w/.-])"
            ),
            _phone_valid_remembered,
            0.75,
            anchor=Anchor("digit", lead=1, count=3, reach=40),
        ),
        Recogniser(
            "us_ssn",
            "government_id",
            re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"),
            ssn_valid,
            0.85,
            anchor=Anchor("digit", lead=0, count=9, reach=14),
        ),
        Recogniser(
            "us_ssn_bare",
            "government_id",
            re.compile(r"(?<![\w-])\d{9}(?![\w-])"),
            ssn_valid,
            0.6,
            context=re.compile(r"\b(?:ssn|ss#|social\s+security)", re.IGNORECASE),
            anchor=Anchor("digit", lead=0, count=9, reach=12),
        ),
        Recogniser(
            "uk_nino",
            "government_id",
            re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d](?![A-Za-z0-9])"),
            nino_valid,
            0.85,
            anchor=Anchor("digit", lead=3, count=6, reach=16, before=_UPPER + _UPPER.lower() + " "),
        ),
        Recogniser(
            "card",
            "card",
            re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
            card_valid,
            1.0,
            anchor=Anchor("digit", lead=0, count=13, reach=40),
        ),
        Recogniser(
            "iban",
            "iban",
            re.compile(
                r"(?<![A-Za-z0-9])(?P<iban>[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?)(?![A-Za-z0-9])"
            ),
            iban_valid,
            1.0,
            group="iban",
            anchor=Anchor("digit", lead=2, count=2, reach=47, before=_UPPER),
        ),
        Recogniser(
            "us_address",
            "address",
            re.compile(
                r"(?<![\w-])\d{1,6}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z0-9][A-Za-z0-9'-]*\.?\s+){1,4}"
                + _STREET_SUFFIX
                + r"\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[\w-]+)?"
                r"(?:,\s*[A-Z][A-Za-z .'-]{1,40},\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?"
            ),
            _always,
            0.7,
            anchor=Anchor("digit", lead=0),
        ),
        Recogniser(
            "uk_postcode",
            "address",
            re.compile(r"(?<![A-Za-z0-9])(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?) ?\d[ABD-HJLNP-UW-Z]{2}(?![A-Za-z0-9])"),
            _always,
            0.5,
            anchor=Anchor("digit", lead=2, count=2, reach=11, before=_UPPER),
        ),
    ]
)


# ---------------------------------------------------------------- the detector


def find_pii(text: str, recognisers: Iterable[Recogniser]) -> list[PiiMatch]:
    """Every validated match of `recognisers` in `text`, in order of position."""
    found = []
    recognisers = tuple(recognisers)
    anchors = _Anchors(text, recognisers)
    if anchors.none:
        recognisers = tuple(r for r in recognisers if r.anchor is None)
    for recogniser in recognisers:
        for match in anchors.matches(recogniser):
            value = match.group(recogniser.group)
            if recogniser.context is not None:
                before = text[max(0, match.start() - _CONTEXT_CHARS) : match.start()]
                if not recogniser.context.search(before):
                    continue
            if recogniser.validate(value):
                found.append(PiiMatch(recogniser, match.span(recogniser.group)))
    return sorted(found, key=lambda m: (m.span, m.recogniser.name))


class _Anchors:
    """The runs of each anchor class in one text, and how many of its characters lie near each run.

    "Near" is the widest window any of the recognisers' bounded anchors of that class searches
    around a run, so a run with fewer than an anchor's `count` near it cannot hold its match.
    """

    def __init__(self, text: str, recognisers: tuple[Recogniser, ...]) -> None:
        self._text = text
        self._recognisers = recognisers
        self._digits = _digit_flags(text)
        self._runs = {"digit": _run_starts(self._digits, b"\x01", b"\x00"), "at": _run_starts(text, "@", None)}
        self._near: dict[str, list[int]] = {}
        self.none = not any(self._runs.values())
        """no character of any class: no anchored recogniser can match."""

    def matches(self, recogniser: Recogniser) -> Iterator[re.Match[str]]:
        """Exactly `recogniser.pattern.finditer(text)`, tried only where its anchor lets a match start."""
        anchor, pattern, size = recogniser.anchor, recogniser.pattern, len(self._text)
        if anchor is None:
            return pattern.finditer(self._text)
        runs = self._runs[anchor.characters]
        if not runs:
            return iter(())
        if anchor.reach is None:
            if anchor.lead > _FEW_STARTS:
                return _searched_from_runs(pattern, self._text, runs, anchor.lead)
            if len(runs) * (anchor.lead + 1) * _SPARSE_STARTS > size:
                return pattern.finditer(self._text)
            return _matched_at_starts(pattern, self._text, runs, anchor.lead)
        if anchor.count > 1:
            near = self._near_counts(anchor.characters)
            runs = [run for run, count in zip(runs, near, strict=True) if count >= anchor.count]
        if anchor.before:
            runs = [run for run in runs if run and self._text[run - 1] in anchor.before]
        if len(runs) * _SPARSE_RUNS > size:
            return pattern.finditer(self._text)
        return _searched_near_runs(pattern, self._text, runs, anchor.lead, anchor.reach)

    def _near_counts(self, characters: str) -> list[int]:
        """Per run of the class: its characters in the widest window the recognisers' bounded anchors search."""
        near = self._near.get(characters)
        if near is None:
            windows = [(r.anchor.lead, r.anchor.reach) for r in self._recognisers
                       if r.anchor is not None and r.anchor.reach is not None and r.anchor.characters == characters]
            lead, reach = max(lead for lead, _ in windows), max(reach for _, reach in windows)
            runs = self._runs[characters]
            if characters == "digit":
                near = [self._digits.count(b"\x01", max(run - lead, 0), run + reach) for run in runs]
            else:
                near = [self._text.count("@", max(run - lead, 0), run + reach) for run in runs]
            self._near[characters] = near
        return near


def _searched_near_runs(
    pattern: re.Pattern[str], text: str, runs: list[int], lead: int, reach: int
) -> Iterator[re.Match[str]]:
    """`finditer` for a bounded pattern: a search per run, over the starts it allows and only as far as it reaches.

    A match starts at most `lead` before the run its first anchor character opens. With the end of
    the searched text moved to `reach` past the run, a start up to the run sees the same characters
    as in the whole text, so a match found starting there is the whole text's; one starting later
    is left for the next run.
    """
    position = 0
    for run in runs:
        start = max(run - lead, position)
        end = min(run + reach, len(text))
        while start <= run:
            match = pattern.search(text, start, end)
            if match is None or match.start() > run:
                break
            yield match
            position = start = max(match.end(), match.start() + 1)


def _searched_from_runs(pattern: re.Pattern[str], text: str, runs: list[int], lead: int) -> Iterator[re.Match[str]]:
    """`finditer` for an unbounded pattern with a long lead: a search from the first start each run allows.

    Nothing starts before that start, so the search finds the whole text's next match, however far
    on (no match: there is none left); the runs it passed over hold none. At most one scan of the text.
    """
    position = 0
    for run in runs:
        start = max(run - lead, position)
        if start > run:
            continue
        match = pattern.search(text, start)
        if match is None:
            return
        yield match
        position = max(match.end(), match.start() + 1)


def _matched_at_starts(pattern: re.Pattern[str], text: str, runs: list[int], lead: int) -> Iterator[re.Match[str]]:
    """`finditer` for an unbounded pattern: matched at each start a run allows, in order."""
    position = 0
    for run in runs:
        start = max(run - lead, position)
        while start <= run:
            match = pattern.match(text, start)
            if match is None:
                start += 1
                continue
            yield match
            position = start = max(match.end(), match.start() + 1)


_DIGIT_FLAGS = bytes(int(chr(code).isdecimal()) for code in range(128)) + bytes(128)


def _digit_flags(text: str) -> bytes:
    """One byte per character: 1 where `\\d` matches (any Unicode decimal digit), else 0."""
    if text.isascii():
        return text.encode("ascii").translate(_DIGIT_FLAGS)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return _decimal_table()[codes].tobytes()


@cache
def _decimal_table() -> np.ndarray:
    """For every code point, 1 if `\\d` matches it: found by the regex engine itself, so the two cannot disagree."""
    everything = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(0x110000, dtype=np.uint8)
    table[[m.start() for m in re.finditer(r"\d", everything)]] = 1
    return table


def _run_starts[T: (str, bytes)](flags: T, flag: T, other: T | None) -> list[int]:
    """Indices where a run of `flag` starts in `flags` (`other`: any other single element; None: find the run's end)."""
    starts = []
    index = flags.find(flag)
    while index >= 0:
        starts.append(index)
        end = index + 1
        if other is None:
            while flags.startswith(flag, end):
                end += 1
        else:
            end = flags.find(other, end)
            if end < 0:
                break
        index = flags.find(flag, end)
    return starts


class PiiDetector:
    """Personal data of the given kinds (all by default) in each text of the request."""

    name = "text.pii"

    def __init__(self, kinds: Iterable[str] | None = None, registry: RecogniserRegistry = RECOGNISERS) -> None:
        self._recognisers = registry.for_kinds(PII_KINDS if kinds is None else kinds)
        _decimal_table()  # built now, at configuration load, rather than on the first non-ASCII request

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(r.kind for r in self._recognisers)

    def detect(self, inputs: Inputs, context: DetectionContext) -> list[Finding]:
        return [
            Finding(
                kind="pii",
                entity=match.recogniser.kind,
                location=item.location,
                score=match.recogniser.score,
                detector=self.name,
                span=match.span,
                detail=match.recogniser.name,
            )
            for item in inputs.texts
            for match in find_pii(item.text, self._recognisers)
        ]
