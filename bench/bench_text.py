"""Throughput of registry-term matching: 100,000 terms against 1 MB of text (not a test).

    .venv/bin/python bench/bench_text.py [--terms 100000] [--megabytes 1]
    .venv/bin/python bench/bench_text.py --short [--body bench/.lab/bodies/chat.json] [--config config/demo ...]

Prints build time, then MB/s of normalisation alone, of the Aho-Corasick search alone, and of the
whole `TermIndex.search` (normalise + plain + squeezed automata + boundary checks), each next to
baselines measured in the same run on the same text (`str.casefold`, and a plain `in` search for
one name), so a loaded machine shows as a ratio rather than a wrong absolute number. Times are
the least CPU time (`time.process_time`) of several runs; everything measured is single-threaded.
The target from issue 4 is 50 MB/s for the whole search on ASCII prose.

`--short` measures what every prompt pays instead: the four text detectors (`text.names`,
`text.confidential`, `text.scripts`, `text.pii`) on the Inputs of one ~2 KB chat request (the
bench's chat body, or a built-in one like it, plus a prose prompt with paragraphs, curly quotes,
an e-mail and a phone number), per configuration, in µs per request and as a multiple of
`json.loads` of the same body in the same run. Each request is treated as new text: the
remembered normalisations, word hashes and phone numbers are forgotten before each one (real
traffic repeats words and resends earlier messages, so it is usually cheaper than shown).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.config import load_config
from gateway.content import ContentLimits, Inputs
from gateway.content.request import RequestContent, extract_inputs
from gateway.detect import normalize as normalisation
from gateway.detect import pii, script
from gateway.detect.finding import DetectionContext, Detector
from gateway.detect.normalize import normalize
from gateway.detect.pii import PiiDetector
from gateway.detect.script import ScriptDetector
from gateway.detect.text import NameDetector, Term, TermDetector, TermIndex

REPO = Path(__file__).resolve().parents[1]
CHAT_BODY = REPO / "bench" / ".lab" / "bodies" / "chat.json"
CONFIGS = (REPO / "config" / "demo", REPO / "config" / "example")

_SYLLABLES = (
    "ka lo mi ra den tor vel san mar ell ion bry cor dan fen gal har ist jon kel lin mor nat or pel quin "
    "ros sul tam ver wyn xan yor zel bel cas dor"
)
_PROSE = (
    "the production schedule for the next block includes night exteriors and a rain unit please confirm "
    "with the assistant director that the call sheet is final and approved make sure the camera team has "
    "the lighting plan for tomorrow morning and the stunt meeting moved to monday"
)
_UNICODE_WORDS = "café naïve résumé Zoë Saldaña Björk Ørsted Łódź Москва 東京 “quoted” — déjà vu"
SYLLABLES = _SYLLABLES.split()
PROSE = _PROSE.split()
PROSE_UNICODE = PROSE + _UNICODE_WORDS.split()
PLANT_RATE = 0.0012


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--compact", action="store_true", help="contiguous NFAs instead of DFAs (less memory)")
    parser.add_argument("--short", action="store_true", help="per-detector time for one ~2 KB chat request instead")
    parser.add_argument("--body", type=Path, default=CHAT_BODY, help="chat request body for --short")
    parser.add_argument("--config", type=Path, action="append", help="configuration directories for --short")
    parser.add_argument("--requests", type=int, default=300, help="requests per timed run for --short")
    args = parser.parse_args()
    if args.short:
        short_prompts(args.config or list(CONFIGS), args.body, args.requests)
        return
    rng = random.Random(7)
    names = make_names(rng, args.terms)
    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    terms = [Term(name, "talent_name", f"t{i}", "name") for i, name in enumerate(names)]
    index = TermIndex(terms, compact=args.compact)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory) / 1024
    print(f"terms: {len(names):,} (mean {sum(map(len, names)) / len(names):.1f} chars), "
          f"build {time.process_time() - started:.2f} s CPU, peak memory +{grown:.0f} MB")
    for label, vocabulary in (("ASCII prose", PROSE), ("prose with 13% non-ASCII words", PROSE_UNICODE)):
        text, planted = make_text(rng, names, vocabulary, int(args.megabytes * 1_000_000))
        report(label, index, text, planted)


def make_names(rng: random.Random, count: int) -> list[str]:
    def word(parts: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()

    names: set[str] = set()
    while len(names) < count:
        names.add(f"{word(rng.randint(1, 3))} {word(rng.randint(2, 3))}")
    return sorted(names)


def make_text(rng: random.Random, names: list[str], vocabulary: list[str], size: int) -> tuple[str, int]:
    parts, planted, length = [], 0, 0
    while length < size:
        if rng.random() < PLANT_RATE:
            parts.append(rng.choice(names))
            planted += 1
        else:
            parts.append(rng.choice(vocabulary))
        length += len(parts[-1]) + 1
    return " ".join(parts), planted


def report(label: str, index: TermIndex, text: str, planted: int) -> None:
    megabytes = len(text.encode()) / 1e6
    casefold = best(lambda: text.casefold())
    contains = best(lambda: "Zelbel Castor" in text)
    normalise = best(lambda: normalize(text))
    hits: list = []
    search = best(lambda: hits.extend(index.search([text])) or hits.clear())
    found = len(index.search([text]))
    print(f"\n{label}: {megabytes:.2f} MB, {planted} names planted, {found} found")
    for name, seconds in (("baseline str.casefold", casefold), ("baseline `in` (one name)", contains),
                          ("normalize", normalise), ("TermIndex.search (all)", search)):
        rate = megabytes / seconds
        print(f"  {name:26s} {seconds * 1000:8.1f} ms  {rate:8.0f} MB/s  "
              f"{seconds / casefold:6.1f}x casefold  {seconds / contains:6.1f}x `in`")
    verdict = "meets" if megabytes / search >= 50 else "MISSES"
    print(f"  → {megabytes / search:.0f} MB/s end to end: {verdict} the 50 MB/s target")


def short_prompts(configs: Sequence[Path], body_path: Path, requests: int) -> None:
    bodies = {"bench chat": chat_body(body_path), "prose prompt": prose_body()}
    for label, body in bodies.items():
        inputs = extract_inputs(
            RequestContent("POST", "/v1/chat/completions", body=body, content_type="application/json"), ContentLimits()
        )
        baseline = best(lambda: [json.loads(body) for _ in range(requests)]) / requests  # noqa: B023
        print(f"\n{label}: {len(body):,} bytes, {len(inputs.texts)} texts; json.loads {baseline * 1e6:.1f} µs")
        for directory in configs:
            loaded = load_config(directory)
            config = loaded.config
            production = config.productions[0]
            context = DetectionContext(capability="chat", production=production.id,
                                       confidential_terms=tuple(t.term for t in production.confidential_terms))
            detectors: list[Detector] = [
                NameDetector.from_config(config), TermDetector.from_config(config),
                ScriptDetector.from_config(config, loaded.directory), PiiDetector(),
            ]
            scripts = sum(len(work.scripts) for work in config.registry.ip)
            print(f"  {directory.name} ({len(config.registry.talent)} talent, {len(config.registry.ip)} IP, "
                  f"{scripts} scripts)")
            total = 0.0
            for detector, seconds in zip(detectors, per_detector(detectors, inputs, context, requests), strict=True):
                total += seconds
                print(f"    {detector.name:18s} {seconds * 1e6:8.1f} µs  {seconds / baseline:6.1f}x json.loads")
            print(f"    {'all four':18s} {total * 1e6:8.1f} µs  {total / baseline:6.1f}x json.loads")


def per_detector(
    detectors: Sequence[Detector], inputs: Inputs, context: DetectionContext, requests: int
) -> list[float]:
    """Seconds per request of each detector, run in order as a request runs them, each request forgetting the last.

    Each call is timed with `time.perf_counter` (`process_time` costs more than the smallest
    detector takes); the least total of several runs counts, as elsewhere in this file.
    """
    rounds = []
    for _ in range(7):
        totals = [0.0] * len(detectors)
        for _ in range(requests):
            forget_texts()
            for number, detector in enumerate(detectors):
                started = time.perf_counter()
                detector.detect(inputs, context)
                totals[number] += time.perf_counter() - started
        rounds.append(totals)
    return [min(totals[number] for totals in rounds) / requests for number in range(len(detectors))]


def forget_texts() -> None:
    """Forget the normalised texts, word hashes and phone numbers remembered from the last request (if remembered)."""
    names = ((normalisation, "_normalize_few"), (normalisation, "_normalize_short"), (script, "_word_hash"),
             (pii, "_phone_valid_remembered"))
    for module, name in names:
        remembered = getattr(module, name, None)
        if hasattr(remembered, "cache_clear"):
            remembered.cache_clear()


def chat_body(path: Path) -> bytes:
    """The bench's 2 KB chat body (bench/run.py writes it), or one made the same way."""
    if path.exists():
        return path.read_bytes()
    notes = "Scene 12, INT. STUDIO - NIGHT. The crew resets the dolly track while the gaffer re-rigs the key. "
    body = {"model": "gpt-4o-mini", "temperature": 0.2, "messages": [
        {"role": "system", "content": "You are a helpful assistant for a film studio. " * 6},
        {"role": "user", "content": "Summarise the following scene notes. "}]}
    while len(json.dumps(body)) < 2000 - len(notes):
        body["messages"][1]["content"] += notes  # type: ignore[operator]
    return json.dumps(body).encode()


def prose_body() -> bytes:
    """A ~2 KB prompt as people write them: paragraphs, curly quotes, a dash, an e-mail and a phone number."""
    paragraphs = [
        "I’m putting together the schedule for next week’s shoot and I’d like your help — the notes are a mess.",
        "We have three locations: the harbour warehouse, the old train station and the roof of the hotel. "
        "The warehouse is only free on Tuesday and Wednesday, the station needs a permit that takes two days, "
        "and the roof depends on the weather forecast, which currently says rain until Thursday afternoon.",
        "The lead actors are available every day except Friday; the supporting cast can only work mornings. "
        "The camera team wants at least one full day for the night exteriors, and the stunt coordinator asked "
        "for a rehearsal before anything on the roof.",
        "Please propose a day-by-day plan, point out the risks, and draft a short message to the location "
        "manager (maria.lopez@harbourfilms.example, +44 20 7946 0958) asking whether the permit can be "
        "sped up. Keep the tone friendly and brief, and list anything you think we forgot.",
    ]
    body = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a careful production coordinator. Answer in plain English."},
        {"role": "user", "content": "\n\n".join(paragraphs * 2)}]}
    return json.dumps(body, ensure_ascii=False).encode()


def best(run: Callable[[], object], repeat: int = 7) -> float:
    """Least CPU time of `repeat` runs: on a shared, loaded machine wall-clock time mostly measures the neighbours."""
    run()
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


if __name__ == "__main__":
    main()
