"""gateway/metrics.py: Prometheus text exposition of counters, gauges and histograms."""

from __future__ import annotations

import re
import threading

import pytest

from gateway.metrics import Metrics

# One exposition sample line: name, optional {labels}, value (label values may hold escaped quotes).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse exposition text strictly: every line is blank (ignored), a HELP, a TYPE or a sample."""
    assert text.endswith("\n")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith(("# HELP ", "# TYPE ")):
            continue
        match = SAMPLE.match(line)
        assert match, f"not an exposition line: {line!r}"
        labels = tuple(
            (k, v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\"))
            for k, v in LABEL.findall(match.group(2) or "")
        )
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def test_counter() -> None:
    """Counters add up per label set and are typed `counter`."""
    m = Metrics()
    m.inc("greenroom_requests_total", "Requests by decision.", decision="allow", tool="openai-api")
    m.inc("greenroom_requests_total", "Requests by decision.", decision="allow", tool="openai-api")
    m.inc("greenroom_requests_total", "Requests by decision.", 3, tool="openai-api", decision="block")
    text = m.render()
    assert "# HELP greenroom_requests_total Requests by decision.\n# TYPE greenroom_requests_total counter\n" in text
    assert parse(text) == {
        ("greenroom_requests_total", (("decision", "allow"), ("tool", "openai-api"))): 2.0,
        ("greenroom_requests_total", (("decision", "block"), ("tool", "openai-api"))): 3.0,
    }
    assert m.value("greenroom_requests_total", tool="openai-api", decision="block") == 3.0
    assert m.value("greenroom_requests_total", decision="hold") == 0.0


def test_gauge() -> None:
    """Gauges keep the last value set."""
    m = Metrics()
    m.set("greenroom_inflight", "In-flight requests.", 5)
    m.set("greenroom_inflight", "In-flight requests.", 2)
    text = m.render()
    assert "# TYPE greenroom_inflight gauge" in text
    assert parse(text) == {("greenroom_inflight", ()): 2.0}
    assert m.value("greenroom_inflight") == 2.0


@pytest.mark.parametrize(
    ("observations", "buckets", "total"),
    [
        ([0.1, 0.5, 7, 7, 20000], {"0.5": 2, "1": 2, "5": 2, "10": 4, "10000": 4, "+Inf": 5}, 20014.6),
        ([], None, None),
        ([1], {"0.5": 0, "1": 1, "+Inf": 1}, 1.0),
    ],
)
def test_histogram(observations: list[float], buckets: dict[str, int] | None, total: float | None) -> None:
    """Histogram buckets are cumulative, `le` bounds are inclusive, and _count equals the +Inf bucket."""
    m = Metrics()
    for value in observations:
        m.observe_ms("greenroom_inspect_ms", "Inspection time.", value, tool="t")
    samples = parse(m.render())
    if buckets is None:
        assert samples == {}
        return
    got = {dict(k[1])["le"]: v for k, v in samples.items() if k[0] == "greenroom_inspect_ms_bucket"}
    for le, count in buckets.items():
        assert got[le] == count
    counts = list(got.values())
    assert counts == sorted(counts)
    assert samples[("greenroom_inspect_ms_count", (("tool", "t"),))] == len(observations)
    assert samples[("greenroom_inspect_ms_sum", (("tool", "t"),))] == pytest.approx(total)
    assert "# TYPE greenroom_inspect_ms histogram" in m.render()


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "back\\slash", "two\nlines", 'all "three"\\\n', "plain", "ünïcode"],
)
def test_label_escaping(value: str) -> None:
    """Quotes, backslashes and newlines in label values are escaped and round-trip."""
    m = Metrics()
    m.inc("greenroom_blocks_total", "Blocks.", rule=value)
    text = m.render()
    assert len(text.splitlines()) == 3
    assert parse(text) == {("greenroom_blocks_total", (("rule", value),)): 1.0}


def test_thread_safe_counting() -> None:
    """Concurrent increments are not lost."""
    m = Metrics()

    def work() -> None:
        for _ in range(1000):
            m.inc("greenroom_requests_total", "Requests.", decision="allow")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.value("greenroom_requests_total", decision="allow") == 8000
