"""Personal data offline: recognisers with checksums and validity rules, a registry refusing duplicates."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.content.inputs import Inputs, TextItem
from gateway.detect import pii
from gateway.detect.finding import DetectionContext
from gateway.detect.pii import (
    PII_KINDS,
    RECOGNISERS,
    Anchor,
    PiiDetector,
    Recogniser,
    RecogniserRegistry,
    _digit_flags,
    card_valid,
    find_pii,
    iban_valid,
    luhn_valid,
    nino_valid,
    phone_valid,
    ssn_valid,
)
from gateway.errors import ConfigError

CONTEXT = DetectionContext(capability="chat", production="northern-lights")


def found(text: str) -> list[tuple[str, str]]:
    """(recogniser, matched text) of every match in `text`."""
    return [(m.recogniser.name, text[m.span[0] : m.span[1]]) for m in find_pii(text, RECOGNISERS)]


MATCHES = [
    ("email", "write to maya.chen@northwind-pictures.com today", "email", "maya.chen@northwind-pictures.com"),
    ("email with plus", "<j.reyes+dailies@studio.example.co.uk>", "email", "j.reyes+dailies@studio.example.co.uk"),
    ("US phone, brackets", "My cell is (415) 555-0132, thanks", "phone", "(415) 555-0132"),
    ("US phone, dashes", "call 212-555-0100 now", "phone", "212-555-0100"),
    ("US phone, dots", "fax 415.555.0132.", "phone", "415.555.0132"),
    ("UK phone, international", "London office +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("French phone", "Paris: +33 1 42 68 53 00", "phone", "+33 1 42 68 53 00"),
    ("SSN dashed", "SSN 536-22-1234 on file", "us_ssn", "536-22-1234"),
    ("SSN spaced", "ssn 536 22 1234", "us_ssn", "536 22 1234"),
    ("SSN bare after keyword", "Social Security: 536221234", "us_ssn_bare", "536221234"),
    ("UK NI number", "NI number AB 12 34 56 C.", "uk_nino", "AB 12 34 56 C"),
    ("UK NI number compact", "nino ab123456c", "uk_nino", "ab123456c"),
    ("Visa spaced", "card 4111 1111 1111 1111 exp 04/27", "card", "4111 1111 1111 1111"),
    ("Mastercard dashed", "5555-5555-5555-4444", "card", "5555-5555-5555-4444"),
    ("Amex", "amex 378282246310005.", "card", "378282246310005"),
    ("IBAN grouped", "wire to IBAN GB82 WEST 1234 5698 7654 32 AND confirm", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN compact", "DE89370400440532013000", "iban", "DE89370400440532013000"),
    ("US address", "lives at 221 Baker Street, Los Angeles, CA 90012.", "us_address",
     "221 Baker Street, Los Angeles, CA 90012"),
    ("US address with unit", "ship to 1600 N. Vine St. Apt 4B", "us_address", "1600 N. Vine St. Apt 4B"),
    ("UK postcode", "office SW1A 1AA, London", "uk_postcode", "SW1A 1AA"),
]


@pytest.mark.parametrize(("case", "text", "recogniser", "value"), MATCHES, ids=[c for c, *_ in MATCHES])
def test_personal_data_is_found(case: str, text: str, recogniser: str, value: str) -> None:
    """Each kind of personal data is found with the span of exactly the value."""
    assert (recogniser, value) in found(text)


NEAR_MISSES = [
    ("invalid Luhn", "card 4111 1111 1111 1112"),
    ("unknown issuer", "ref 9111 1111 1111 1116"),
    ("order number", "order 1234567890123"),
    ("IBAN with bad checksum", "IBAN GB82 WEST 1234 5698 7654 33"),
    ("IBAN of the wrong length", "GB82 WEST 1234 5698 7654"),
    ("SSN area 000", "SSN 000-12-3456"),
    ("SSN area 666", "SSN 666-12-3456"),
    ("SSN area 9xx", "SSN 912-12-3456"),
    ("SSN group 00", "SSN 536-00-1234"),
    ("SSN serial 0000", "SSN 536-22-0000"),
    ("SSN specimen", "SSN 078-05-1120"),
    ("mixed SSN separators", "536-22 1234"),
    ("9 digits without keyword", "tracking 536221234"),
    ("NI number with admin prefix", "GB 12 34 56 A"),
    ("NI number with bad suffix", "AB 12 34 56 E"),
    ("date", "shoot on 2024-11-27 at 10.30"),
    ("IP address", "server 10.20.30.40"),
    ("version and time", "v1.2.3 released 12:45"),
    ("short number", "scene 42, take 7"),
    ("not an email", "user@localhost and a@b"),
    ("street word in prose", "we walked down the street at 5"),
]


@pytest.mark.parametrize(("case", "text"), NEAR_MISSES, ids=[c for c, _ in NEAR_MISSES])
def test_near_misses_are_not_personal_data(case: str, text: str) -> None:
    """Failed checksums, impossible numbers, dates, addresses of machines and prose are not reported."""
    assert found(text) == []


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("79927398710", False),
     ("0", True), ("", False), ("12a4", False)],
)
def test_luhn(digits: str, valid: bool) -> None:
    """The Luhn checksum, including the textbook example 79927398713."""
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4111 1111 1111 1111", True), ("4111-1111-1111-1111", True), ("378282246310005", True),
     ("6011111111111117", True), ("3530111333300000", True), ("0000000000000000", False),
     ("4111111111111111111111", False), ("1234567812345670", False)],
)
def test_card_numbers(number: str, valid: bool) -> None:
    """Cards need a known issuer prefix and length as well as the checksum."""
    assert card_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [("GB82 WEST 1234 5698 7654 32", True), ("GB82WEST12345698765432", True), ("DE89 3704 0044 0532 0130 00", True),
     ("FR14 2004 1010 0505 0001 3M02 606", True), ("NL91 ABNA 0417 1643 00", True),
     ("GB82 WEST 1234 5698 7654 33", False), ("DE89 3704 0044 0532 0130 0", False), ("XX00", False),
     ("gb82 west 1234 5698 7654 32", True)],
)
def test_iban_checksum(iban: str, valid: bool) -> None:
    """The ISO 7064 mod-97 checksum and the country's length."""
    assert iban_valid(iban) is valid


@pytest.mark.parametrize(
    ("ssn", "valid"),
    [("536-22-1234", True), ("000-22-1234", False), ("666-22-1234", False), ("900-22-1234", False),
     ("536-00-1234", False), ("536-22-0000", False), ("078-05-1120", False), ("123-45-6789", False)],
)
def test_ssn_rules(ssn: str, valid: bool) -> None:
    """SSA issuance rules and advertised specimens."""
    assert ssn_valid(ssn) is valid


@pytest.mark.parametrize(
    ("nino", "valid"),
    [("AB123456C", True), ("ab 12 34 56 c", True), ("QQ123456C", False), ("GB123456A", False),
     ("AB123456E", False), ("DA123456A", False)],
)
def test_nino_rules(nino: str, valid: bool) -> None:
    """HMRC letter rules: no D, F, I, Q, U, V first; no O second; no administrative prefixes; suffix A–D."""
    assert nino_valid(nino) is valid


@pytest.mark.parametrize(
    ("number", "valid"), [("(415) 555-0132", True), ("+44 20 7946 0958", True), ("123-456-7890", False),
                          ("555-0132", False), ("+1 000 000 0000", False)],
)
def test_phone_validation(number: str, valid: bool) -> None:
    """Phone candidates are validated against libphonenumber's metadata, offline."""
    assert phone_valid(number) is valid


@pytest.mark.parametrize(
    "number", ["(415) 555-0132", "+44 20 7946 0958", "123-456-7890", "555-0132", "+1 000 000 0000"]
)
def test_phone_recogniser_validates_as_phone_valid(number: str) -> None:
    """The phone recogniser remembers answers (chats resend earlier messages) and gives `phone_valid`'s, twice."""
    validate = RECOGNISERS["phone"].validate
    assert validate(number) is phone_valid(number)
    assert validate(number) is phone_valid(number)


def test_registry_refuses_duplicates() -> None:
    """A second recogniser with a known name is an error, not a silent replacement."""
    registry = RecogniserRegistry()
    email = RECOGNISERS["email"]
    registry.add(email)
    with pytest.raises(ValueError, match="already registered"):
        registry.add(email)


def test_registry_refuses_unknown_kinds() -> None:
    """Every recogniser declares one of the known kinds."""
    bogus = Recogniser("x", "passport", re.compile("x"), bool, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown kind"):
        RecogniserRegistry([bogus])


def test_every_kind_has_a_recogniser() -> None:
    """Each kind a production may list is provided by at least one recogniser."""
    assert {r.kind for r in RECOGNISERS} == set(PII_KINDS)


def test_unknown_configured_kind_fails() -> None:
    """A production asking for a kind no recogniser provides fails when the detector is built."""
    with pytest.raises(ConfigError, match="passport"):
        PiiDetector(kinds=["email", "passport"])


def test_detector_findings_filter_kinds_and_carry_no_content() -> None:
    """Findings: kind pii, entity = the kind, detail = the recogniser; only the kinds asked for."""
    text = "mail maya@example.com or call (415) 555-0132; card 4111 1111 1111 1111"
    inputs = Inputs(texts=(TextItem(text, "body.prompt"),))
    findings = PiiDetector(kinds=["email", "card"]).detect(inputs, CONTEXT)
    assert [(f.kind, f.entity, f.detail, text[f.span[0] : f.span[1]]) for f in findings if f.span] == [
        ("pii", "email", "email", "maya@example.com"),
        ("pii", "card", "card", "4111 1111 1111 1111"),
    ]
    assert all(f.detector == "text.pii" and f.location == "body.prompt" for f in findings)
    assert PiiDetector().kinds == frozenset(PII_KINDS)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_find_pii_never_raises_and_spans_stay_in_bounds(text: str) -> None:
    """Arbitrary text: no exception, every span inside the text."""
    for match in find_pii(text, RECOGNISERS):
        assert 0 <= match.span[0] < match.span[1] <= len(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=15, max_size=15))
def test_luhn_check_digit_always_validates(body: list[int]) -> None:
    """Appending the computed check digit to any digits gives a valid Luhn number."""
    digits = "4" + "".join(map(str, body))
    check = next(d for d in range(10) if luhn_valid(digits + str(d)))
    assert luhn_valid(digits + str(check))
    assert not luhn_valid(digits + str((check + 1) % 10))


# ---------------------------------------------------------------- anchors: searching near them finds it all

ANCHORED = [r for r in RECOGNISERS if r.anchor is not None]
FULL_SCAN = [dataclasses.replace(r, anchor=None) for r in RECOGNISERS]
"""the same recognisers without anchors: `find_pii` then scans every position, as it always used to."""

UNICODE_DIGITS = "٠١٢٣٤٥٦٧٨٩०१२३४５６７８𝟵𝟎߃৫"
SEPARATORS = [" ", "", "", "\n", "-", ".", ",", "(", ")", "+", "/", "@", "#", ":", "\u200b", "\u00a0", "  ", "\t"]
SAMPLES = [
    "maya.chen@northwind-pictures.com", "j.reyes+dailies@studio.example.co.uk", "user@localhost", "a@b", "@@x.io",
    "(415) 555-0132", "+44 20 7946 0958", "212-555-0100", "415.555.0132", "+33 1 42 68 53 00", "+14155550132",
    "536-22-1234", "536 22 1234", "536221234", "SSN", "ssn ", "Social Security: ", "ss# ",
    "AB 12 34 56 C", "ab123456c", "GB 12 34 56 A",
    "4111 1111 1111 1111", "4222222222222", "5555-5555-5555-4444", "378282246310005", "4111111111111112",
    "6011111111111117",
    "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR14 2004 1010 0505 0001 3M02 606", "gb82 west 1234",
    "221 Baker Street, Los Angeles, CA 90012", "1600 N. Vine St. Apt 4B", "12 Main St", "SW1A 1AA", "EC1A 1BB",
    "Scene 12, INT. STUDIO - NIGHT.", "2024-11-27", "10.20.30.40", "v1.2.3", "Tom H4nks", "Τοm Ηanks", "０１２",
]


@st.composite
def luhn_numbers(draw: st.DrawFn) -> str:
    """A card-like number with a valid check digit, grouped by spaces or dashes or not at all."""
    digits = draw(st.sampled_from(["4", "51", "34", "6011", "3530", "62", "5018"])) + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=10, max_size=16))
    )
    digits += next(d for d in "0123456789" if luhn_valid(digits + d))
    separator = draw(st.sampled_from(["", " ", "-"]))
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


FRAGMENTS = st.one_of(
    st.sampled_from(SAMPLES),
    st.sampled_from(SEPARATORS),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.text(alphabet="0123456789" + UNICODE_DIGITS, min_size=1, max_size=12),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
    st.sampled_from(["the", "call", "Street", "Ave", "office", "wire to", "on file", "Room", "N.", "Apt", "#"]),
    st.emails(),
    luhn_numbers(),
    st.text(max_size=8),
)
TEXTS = st.one_of(
    st.lists(FRAGMENTS, max_size=40).map("".join),
    st.text(alphabet="0123456789 -.()+/@#,ABCDEFGHIJKLMNOPQRSTUVWXYZabcdeSt\n" + UNICODE_DIGITS[:6], max_size=300),
    st.text(max_size=200),
)


def spans(text: str, recognisers: list[Recogniser]) -> list[tuple[str, tuple[int, int]]]:
    return [(m.recogniser.name, m.span) for m in find_pii(text, recognisers)]


def never_dense() -> contextlib.AbstractContextManager[object]:
    """No text counts as dense with digits or "@": anchored recognisers always search near them, never scan it all."""
    return mock.patch.multiple(pii, _SPARSE_RUNS=0, _SPARSE_STARTS=0)


@settings(max_examples=700, deadline=None)
@given(TEXTS)
def test_anchored_search_finds_what_a_full_scan_finds(text: str) -> None:
    """Searching only near digits and "@" gives exactly the full scan's findings: same recognisers, same spans."""
    expected = spans(text, FULL_SCAN)
    assert spans(text, list(RECOGNISERS)) == expected
    with never_dense():
        assert spans(text, list(RECOGNISERS)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ".join(SAMPLES),
        "\n".join(SAMPLES) * 3,
        "12 " * 400,  # a run per 3 characters: dense, scanned whole
        "1" * 500,
        "a@b.co " * 60,  # many "@": each candidate start, or the whole text
        "x" * 100 + "@" + "y" * 100 + ".com",  # an "@" far from where its local part would start
        "@channel see the notes @ 5, then ask maya@studio.example or @ops; j@x.io@y.io and a@b.c@d.ef",
        "SSN: " + "5" * 9 + " and 536221234 after social security",
        "card 4111 1111 1111 1111 4111 1111 1111 1111",  # back to back: the second starts inside the first's window
        "AB12 34 56 C 4111111111111111 GB82WEST12345698765432",
        "٣٣٣-٢٢-١٢٣٤ and ५३६-२२-१२३४ in other scripts",
    ],
    ids=lambda t: repr(t[:30]),
)
def test_anchored_search_edge_cases(text: str) -> None:
    """Empty, dense and back-to-back texts, Unicode digits and far-away "@": the full scan's findings."""
    expected = spans(text, FULL_SCAN)
    assert spans(text, list(RECOGNISERS)) == expected
    with never_dense():
        assert spans(text, list(RECOGNISERS)) == expected


def _lookahead_width(pattern: re.Pattern[str]) -> int:
    """The most characters any lookahead of `pattern` (or a word boundary) inspects past where it stands."""
    from re import _constants, _parser  # the regex engine's own parser: the widths it matches with

    def walk(items: _parser.SubPattern) -> int:
        widest = 0
        for op, argument in items.data if isinstance(items, _parser.SubPattern) else items:
            if op in (_constants.ASSERT, _constants.ASSERT_NOT) and argument[0] == 1:
                widest = max(widest, argument[1].getwidth()[1])
            if op is _constants.AT:
                widest = max(widest, 1)
            for nested in argument if isinstance(argument, (list, tuple)) else [argument]:
                if isinstance(nested, _parser.SubPattern):
                    widest = max(widest, walk(nested))
                elif isinstance(nested, (list, tuple)):
                    widest = max(widest, *(walk(n) for n in nested if isinstance(n, _parser.SubPattern)), 0)
        return widest

    return walk(_parser.parse(pattern.pattern, pattern.flags))


@pytest.mark.parametrize("recogniser", [r for r in ANCHORED if r.anchor.reach is not None], ids=lambda r: r.name)
def test_anchor_reach_covers_the_pattern(recogniser: Recogniser) -> None:
    """The widest match plus the widest lookahead stays short of the declared reach."""
    from re import _parser

    width = _parser.parse(recogniser.pattern.pattern, recogniser.pattern.flags).getwidth()[1]
    assert width + _lookahead_width(recogniser.pattern) < recogniser.anchor.reach


def _anchor_characters(anchor: Anchor) -> str:
    return "@" if anchor.characters == "at" else "0123456789" + UNICODE_DIGITS


@pytest.mark.parametrize("recogniser", ANCHORED, ids=lambda r: r.name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_anchor_promises_hold_for_generated_matches(recogniser: Recogniser, data: st.DataObject) -> None:
    """Every match has `count` anchor characters, the first within `lead`, opening its run, after one of `before`."""
    anchor = recogniser.anchor
    value = data.draw(st.from_regex(recogniser.pattern, fullmatch=True))
    assume(recogniser.pattern.fullmatch(value))
    is_anchor = (lambda c: c == "@") if anchor.characters == "at" else (lambda c: re.fullmatch(r"\d", c) is not None)
    positions = [i for i, c in enumerate(value) if is_anchor(c)]
    assert len(positions) >= anchor.count
    first = positions[0]
    assert first <= anchor.lead
    if first:
        assert not is_anchor(value[first - 1])
    else:
        for before in ("@",) if anchor.characters == "at" else ("7", "٣"):
            assert recogniser.pattern.match(before + value, 1) is None
    if anchor.before:
        assert first >= 1 and value[first - 1] in anchor.before


def test_decimal_table_is_what_backslash_d_matches() -> None:
    """Digit runs of non-ASCII text are found with a table of every code point `\\d` matches."""
    everything = "".join(map(chr, range(0x110000)))
    digits = [i for i, c in enumerate(everything) if c.isdecimal()]
    found = [m.start() for m in re.finditer(r"\d", everything)]
    assert found == digits
    flags = _digit_flags(everything)
    assert [i for i, f in enumerate(flags) if f] == found
