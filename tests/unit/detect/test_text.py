"""Registered names, titles, characters and confidential terms in text: matches, near-misses, evasions, splits."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.loader import load_config
from gateway.config.models import ConfidentialTerm, IntellectualProperty, Production, Registry, Talent
from gateway.content.inputs import Inputs, TextItem
from gateway.detect.finding import DetectionContext
from gateway.detect.text import NameDetector, Term, TermDetector, TermIndex, registry_terms
from gateway.errors import ConfigError

DEMO = Path(__file__).resolve().parents[3] / "config" / "demo"

REGISTRY = Registry(
    talent=[
        Talent(id="eileen-collins", name="Eileen Collins", aliases=["Leenie C"]),
        Talent(id="tom-hanks", name="Tom Hanks"),
    ],
    ip=[
        IntellectualProperty(
            id="blue-meridian", title="Blue Meridian", characters=["Captain Ysolde Varga", "Will"], terms=["Varga-7"]
        )
    ],
)
INDEX = TermIndex.from_registry(REGISTRY)
CONTEXT = DetectionContext(capability="chat", production="northern-lights")


def found(text: str, index: TermIndex = INDEX) -> list[tuple[str, str]]:
    """(entity, matched original text) of every hit in one text."""
    return sorted((h.term.entity, text[h.span[0] : h.span[1]]) for h in index.search([text]))


MATCHES = [
    ("plain", "Ask Eileen Collins about it", "Eileen Collins"),
    ("start and end", "Eileen Collins", "Eileen Collins"),
    ("punctuation after", "was it Eileen Collins?!", "Eileen Collins"),
    ("possessive", "Eileen Collins's agent", "Eileen Collins"),
    ("upper", "EILEEN COLLINS in the lead", "EILEEN COLLINS"),
    ("last, first", "cast: Collins, Eileen (lead)", "Collins, Eileen"),
    ("alias", "as Leenie C said", "Leenie C"),
    ("nbsp", "Eileen\u00a0Collins", "Eileen\u00a0Collins"),
    ("newline and spaces", "Eileen \n\n  Collins", "Eileen \n\n  Collins"),
    ("zero-width", "Ei\u200bleen Col\u200dlins", "Ei\u200bleen Col\u200dlins"),
    ("soft hyphen", "Eileen Col\u00adlins", "Eileen Col\u00adlins"),
    ("bidi override", "say \u202eEileen Collins\u202c now", "Eileen Collins\u202c"),
    ("fullwidth", "Ｅｉｌｅｅｎ Ｃｏｌｌｉｎｓ", "Ｅｉｌｅｅｎ Ｃｏｌｌｉｎｓ"),
    ("math bold", "𝐄𝐢𝐥𝐞𝐞𝐧 𝐂𝐨𝐥𝐥𝐢𝐧𝐬", "𝐄𝐢𝐥𝐞𝐞𝐧 𝐂𝐨𝐥𝐥𝐢𝐧𝐬"),
    ("circled", "Ⓔⓘⓛⓔⓔⓝ Ⓒⓞⓛⓛⓘⓝⓢ", "Ⓔⓘⓛⓔⓔⓝ Ⓒⓞⓛⓛⓘⓝⓢ"),
    ("diacritics", "Éíléén Cöllíns", "Éíléén Cöllíns"),
    ("combining strike-through", "E\u0336i\u0336leen Collins", "E\u0336i\u0336leen Collins"),
    ("Cyrillic homoglyphs", "Еіlееn Соllіns", "Еіlееn Соllіns"),
    ("Greek homoglyphs", "Tοm Hanks", "Tοm Hanks"),
    ("rn for m", "Torn Hanks", "Torn Hanks"),
    ("leet", "3il33n C0ll1n5", "3il33n C0ll1n5"),
    ("capital I for l", "Eileen CoIIins", "Eileen CoIIins"),
    ("dotted", "E.i.l.e.e.n C.o.l.l.i.n.s", "E.i.l.e.e.n C.o.l.l.i.n.s"),
    ("spaced letters", "E i l e e n  C o l l i n s", "E i l e e n  C o l l i n s"),
    ("half spaced", "Eileen C o l l i n s", "Eileen C o l l i n s"),
    ("hashtag", "love #EileenCollins", "EileenCollins"),
    ("underscore", "@eileen_collins", "eileen_collins"),
    ("hyphen", "the Eileen-Collins look", "Eileen-Collins"),
    ("dot", "Eileen.Collins@", "Eileen.Collins"),
    ("spelt out, dots and spaces", "E. i. l. e. e. n. C. o. l. l. i. n. s.", "E. i. l. e. e. n. C. o. l. l. i. n. s"),
    ("title", "a sequel to Blue Meridian", "Blue Meridian"),
    ("character", "Captain Ysolde Varga enters", "Captain Ysolde Varga"),
    ("term with punctuation", "the Varga-7 drive", "Varga-7"),
    ("capitalised common word", "Will enters the bridge", "Will"),
]


@pytest.mark.parametrize(("case", "text", "matched"), MATCHES, ids=[c for c, _, _ in MATCHES])
def test_matches_and_evasions(case: str, text: str, matched: str) -> None:
    """Each spelling is found, and its span is exactly the text as written."""
    assert matched in [m for _, m in found(text)]


NEAR_MISSES = [
    ("surname alone", "Collins will call back"),
    ("first name alone", "Eileen from accounts"),
    ("inside a longer word", "Eileen Collinsworth"),
    ("prefixed", "McEileen Collins"),
    ("glued digit", "Eileen Collins2"),
    ("typo", "Eileen Colins"),
    ("other title", "Blue Meridiam"),
    ("half a character", "Tor Hanks"),
    ("common word in prose", "I will go"),
    ("words run together by accident", "the blue meridian"[:0] + "tom hank"),
    ("squeezed across ordinary words", "ei leen col lins"),
    ("sentence boundary between the names", "thanks Eileen. Collins will call"),
    ("dash with spaces", "Eileen - Collins"),
]


@pytest.mark.parametrize(("case", "text"), NEAR_MISSES, ids=[c for c, _ in NEAR_MISSES])
def test_near_misses(case: str, text: str) -> None:
    """Partial names, longer words and ordinary prose are not registered names."""
    assert found(text) == []


def test_terms_in_scripts_without_spaces() -> None:
    """A Japanese title inside Japanese text has no word boundaries to check, and is still found."""
    index = TermIndex([Term("東京物語", "ip_reference", "tokyo-story", "title")])
    assert found("私は東京物語が好きです", index) == [("tokyo-story", "東京物語")]
    assert found("東京の物語", index) == []


@pytest.mark.parametrize("compact", [False, True])
def test_compact_and_fast_indexes_agree(compact: bool) -> None:
    """The memory-saving NFA index finds exactly what the DFA index finds."""
    index = TermIndex.from_registry(REGISTRY, compact=compact)
    for _, text, _ in MATCHES:
        assert found(text, index) == found(text)


def test_empty_index_and_no_texts() -> None:
    """No terms or no texts: nothing found, nothing raised."""
    assert TermIndex([]).search(["Eileen Collins"]) == []
    assert INDEX.search([]) == []
    assert INDEX.search(["", ""]) == []


def test_concurrent_searches_agree() -> None:
    """One index shared by many threads (the detector pool) gives every thread the same answer."""
    texts = [f"{prefix} Еіlееn Соllіns and Captain Ysolde Varga {suffix}" for prefix, suffix in
             [("ℌ𝔢𝔩𝔩𝔬", "ↈ"), ("スター", "ꙮ"), ("Ωμέγα", "🎬"), ("ok", "ok")]]
    expected = [found(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(found, texts * 25))
    assert results == expected * 25


def test_overlapping_terms_are_all_reported() -> None:
    """A registered name inside a longer registered term is reported for both."""
    index = TermIndex(
        [Term("Ysolde Varga", "ip_reference", "a", "character"), Term("Captain Ysolde Varga", "ip_reference", "b", "x")]
    )
    assert found("Captain Ysolde Varga", index) == [("a", "Ysolde Varga"), ("b", "Captain Ysolde Varga")]


SPLITS = [
    (["hi there Eileen", "Collins was great"], [(0, "Eileen"), (1, "Collins")]),
    (["Eileen ", " Collins"], [(0, "Eileen"), (1, "Collins")]),
    (["Captain", "Ysolde", "Varga"], [(0, "Captain"), (1, "Ysolde"), (2, "Varga")]),
    (["E.i.l.e.e.n", "C.o.l.l.i.n.s"], [(0, "E.i.l.e.e.n"), (1, "C.o.l.l.i.n.s")]),
]


@pytest.mark.parametrize(("texts", "pieces"), SPLITS)
def test_names_split_across_texts(texts: list[str], pieces: list[tuple[int, str]]) -> None:
    """A name split across texts of one request is found; each text gets a finding for its piece."""
    inputs = Inputs(texts=tuple(TextItem(t, f"body.messages[{i}].content") for i, t in enumerate(texts)))
    findings = NameDetector(INDEX).detect(inputs, CONTEXT)
    got = [(int(f.location.split("[")[1][0]), texts[int(f.location.split("[")[1][0])][f.span[0] : f.span[1]])
           for f in findings if f.span]
    assert sorted(got) == pieces
    assert all(f"split across {len(texts)} texts" in f.detail for f in findings)


def test_separate_texts_do_not_join_words() -> None:
    """Texts are joined with a separator, never glued: "Eile" + "en Collins" is not a name."""
    assert INDEX.search(["Eile", "en Collins"]) == []


def test_findings_carry_ids_and_no_content() -> None:
    """Findings name the entity and role, never the matched text."""
    inputs = Inputs(texts=(TextItem("Eileen Collins stars in Blue Meridian as 3ileen", "body.prompt"),))
    findings = NameDetector(INDEX).detect(inputs, CONTEXT)
    assert {(f.kind, f.entity, f.detail) for f in findings} == {
        ("talent_name", "eileen-collins", "name"),
        ("ip_reference", "blue-meridian", "title"),
    }
    assert all(f.detector == "text.names" and f.location == "body.prompt" and f.score == 1.0 for f in findings)
    evasive = NameDetector(INDEX).detect(Inputs(texts=(TextItem("E.i.l.e.e.n C.o.l.l.i.n.s", "q"),)), CONTEXT)
    assert [(f.detail, f.score) for f in evasive] == [("name; separators; obfuscated", 0.9)]
    for finding in findings + evasive:
        assert "eileen" not in finding.detail.lower() and "meridian" not in finding.detail.lower()


def test_demo_registry() -> None:
    """The demo configuration's talent and IP are found by the detector built from it."""
    config = load_config(DEMO).config
    detector = NameDetector.from_config(config)
    inputs = Inputs(texts=(TextItem("Eileen Collins as Captain Ysolde Varga", "body.prompt"),))
    assert {(f.kind, f.entity) for f in detector.detect(inputs, CONTEXT)} == {
        ("talent_name", "eileen-collins"),
        ("ip_reference", "blue-meridian"),
    }


def test_confidential_terms_per_production() -> None:
    """A production's confidential terms are found for that production only, with the term's kind as entity."""
    productions = [
        Production(
            id="northern-lights",
            name="Northern Lights",
            kind="scripted",
            confidential_terms=[
                ConfidentialTerm(term="Project Aurora", kind="title"),
                ConfidentialTerm(term="Kestrel Bay", kind="location"),
            ],
        ),
        Production(id="harbor-nights", name="Harbor Nights", kind="scripted"),
    ]
    detector = TermDetector.from_productions(productions)
    inputs = Inputs(texts=(TextItem("Scene 4 of PROJECT  AUR0RA, shot at Kestrel Bay.", "body.prompt"),))
    findings = detector.detect(inputs, CONTEXT)
    assert sorted((f.kind, f.entity, inputs.texts[0].text[f.span[0] : f.span[1]]) for f in findings if f.span) == [
        ("confidential", "location", "Kestrel Bay"),
        ("confidential", "title", "PROJECT  AUR0RA"),
    ]
    other = DetectionContext(capability="chat", production="harbor-nights")
    assert detector.detect(inputs, other) == []


def test_context_terms_extend_the_production() -> None:
    """Terms passed in the context and not configured are matched too, as kind `other`."""
    detector = TermDetector.from_productions([])
    context = DetectionContext(capability="chat", production="p", confidential_terms=("Kestrel Bay",))
    findings = detector.detect(Inputs(texts=(TextItem("at kestrel bay", "q"),)), context)
    assert [(f.kind, f.entity, f.span) for f in findings] == [("confidential", "other", (3, 14))]


@pytest.mark.parametrize("bad", ["", "--", "x", "\u200b\u200b", "a\u0301"])
def test_terms_without_letters_are_refused(bad: str) -> None:
    """A term that folds to fewer than two letters would match everywhere: building the index fails."""
    with pytest.raises(ConfigError, match="fewer than 2 letters"):
        TermIndex([Term(bad, "ip_reference", "some-ip", "term")])


def test_registry_terms_include_every_field() -> None:
    """Names, aliases, the inverted name, titles, characters and terms are all registered."""
    roles = {(t.entity, t.role, t.text) for t in registry_terms(REGISTRY)}
    assert ("eileen-collins", "name", "Collins, Eileen") in roles
    assert ("eileen-collins", "alias", "Leenie C") in roles
    assert ("blue-meridian", "term", "Varga-7") in roles


SYLLABLES = "ka lo mi ra den tor vel san mar ell ion bry cor dan fen gal har ist jon kel lin mor nat"
FILLER = ("the production schedule for the next block includes night exteriors and a rain unit please "
          "confirm with the assistant director that the call sheet is final and approved")


def test_no_false_names_in_filler() -> None:
    """Thousands of syllable names against prose with none planted: nothing found, squeezed or not."""
    rng = random.Random(3)  # noqa: S311 - reproducible test data
    syllables = SYLLABLES.split()

    def word() -> str:
        return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()

    index = TermIndex(Term(f"{word()} {word()}", "talent_name", f"t{i}", "name") for i in range(5000))
    filler = FILLER.split()
    text = " ".join(rng.choice(filler) for _ in range(30_000))
    assert index.search([text]) == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.sampled_from(["Eileen Collins", "3il33n C0llins", "E.i.l.e.e.n"]))
def test_spans_stay_in_their_texts(before: str, after: str, name: str) -> None:
    """Any surrounding text: search never raises and every span lies inside its own text."""
    texts = [before + " " + name, after]
    for hit in INDEX.search(texts):
        assert 0 <= hit.span[0] < hit.span[1] <= len(texts[hit.item])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4))
def test_search_never_raises(texts: list[str]) -> None:
    """Arbitrary texts, including lone surrogates and control characters, are searched without error."""
    for hit in INDEX.search(texts):
        assert 0 <= hit.item < len(texts)
