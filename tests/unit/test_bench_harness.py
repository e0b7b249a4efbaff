"""The pure parts of `make bench` (bench/benchlib.py): hey parsing, medians and pair-by-pair ratios, the
LiteLLM config, targets, the profile aggregation. No load is generated here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "benchlib.py"
_spec = importlib.util.spec_from_file_location("greenroom_benchlib", _PATH)
assert _spec and _spec.loader
benchlib = importlib.util.module_from_spec(_spec)
sys.modules["greenroom_benchlib"] = benchlib
_spec.loader.exec_module(benchlib)

HEY_OK = """
Summary:
  Total:\t6.0011 secs
  Slowest:\t0.0123 secs
  Fastest:\t0.0002 secs
  Average:\t0.0011 secs
  Requests/sec:\t862.3417

  Total data:\t5493246 bytes
  Size/request:\t1061 bytes

Latency distribution:
  10% in 0.0008 secs
  25% in 0.0009 secs
  50% in 0.0011 secs
  75% in 0.0012 secs
  90% in 0.0014 secs
  95% in 0.0016 secs
  99% in 0.0020 secs

Status code distribution:
  [200]\t5170 responses
  [403]\t4 responses
"""

HEY_ERRORS = """
Summary:
  Requests/sec:\t0.1104

Latency distribution:
  10% in 0.0252 secs
  50% in 0.0493 secs
  90% in 0.1386 secs
  0% in 0.0000 secs

Status code distribution:
  [200]\t17 responses

Error distribution:
  [3]\tPost "https://api.openai.com/v1/chat/completions": context deadline exceeded
"""


def test_parse_hey_figures_and_codes() -> None:
    r = benchlib.parse_hey(HEY_OK)
    assert r["rps"] == pytest.approx(862.3417)
    assert r["p50_ms"] == pytest.approx(1.1)
    assert r["p90_ms"] == pytest.approx(1.4)
    assert r["p99_ms"] == pytest.approx(2.0)
    assert r["codes"] == {"200": 5170, "403": 4}
    assert r["errors"] == 0
    assert benchlib.ok_fraction(r["codes"]) == pytest.approx(5170 / 5174)


def test_parse_hey_errors_and_missing_percentiles() -> None:
    r = benchlib.parse_hey(HEY_ERRORS)
    assert r["p50_ms"] == pytest.approx(49.3)
    assert r["p99_ms"] is None  # hey printed "0% in 0.0000 secs" for the percentiles it had no sample for
    few = benchlib.parse_hey(HEY_ERRORS.replace("Summary:", "Summary:\n  Slowest:\t0.1386 secs"))
    assert few["p99_ms"] == pytest.approx(138.6)  # < 100 answers: nearest-rank p99 = the slowest
    assert r["errors"] == 3 and "deadline exceeded" in r["error_sample"]
    assert benchlib.ok_fraction(r["codes"], r["errors"]) == pytest.approx(17 / 20)
    assert benchlib.parse_hey("")["rps"] is None


def test_median_and_percentile() -> None:
    assert benchlib.median([3.0, None, 1.0, 2.0]) == 2.0
    assert benchlib.median([None, float("nan")]) is None
    assert benchlib.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert benchlib.percentile(list(map(float, range(1, 101))), 99) == 99.0
    assert benchlib.percentile([], 50) is None


def _run(system: str, rep: int, rps: float, p50: float, workload: str = "chat_c1") -> dict:
    return {"system": system, "workload": workload, "rep": rep, "rps": rps, "p50_ms": p50, "p99_ms": p50 * 2,
            "codes": {"200": 100}, "errors": 0, "cpu_ms": None if system == "direct" else 1000 / rps}


def test_ratios_are_paired_by_repetition() -> None:
    # The machine slowed down in rep 1 for both systems: the paired ratio stays 0.5; medians alone would not.
    base = [_run("bare", 0, 1000, 1.0), _run("bare", 1, 500, 2.0), _run("bare", 2, 900, 1.1)]
    gr = [_run("greenroom", 0, 500, 1.5), _run("greenroom", 1, 250, 2.5), _run("greenroom", 2, 450, 1.6)]
    assert benchlib.pair_ratios(gr, base, "rps") == pytest.approx(0.5)
    assert benchlib.pair_diffs(gr, base, "p50_ms") == pytest.approx(0.5)
    # an unpaired repetition is ignored
    assert benchlib.pair_ratios([*gr, _run("greenroom", 3, 1, 1)], base, "rps") == pytest.approx(0.5)


def test_summarize_and_targets() -> None:
    results = []
    for rep in range(3):
        results += [_run("direct", rep, 10000, 0.1), _run("bare", rep, 900, 1.0),
                    _run("greenroom", rep, 850, 1.2), _run("litellm", rep, 400, 2.5)]
    cells = benchlib.summarize(results, ["chat_c1"])
    assert [c.system for c in cells] == ["direct", "bare", "greenroom", "litellm"]
    g = next(c for c in cells if c.system == "greenroom")
    assert g.rps == 850 and g.x_bare == pytest.approx(850 / 900) and g.x_litellm == pytest.approx(850 / 400)
    assert g.added_p50_direct_ms == pytest.approx(1.1) and g.added_p50_bare_ms == pytest.approx(0.2)
    assert g.ok == 1.0
    targets = {t.name: t for t in benchlib.evaluate_targets(cells)}
    assert targets["chat_c1: throughput >= 90% of bare mitmdump"].verdict == "PASS"
    assert targets["chat_c1: added p50 <= 0.3 ms over bare mitmdump"].verdict == "PASS"
    assert targets["chat_c1: lower added latency than LiteLLM"].verdict == "PASS"
    assert targets["RSS <= 300 MB with 500 open streams"].verdict == "n/a"  # not measured
    table = benchlib.format_table(cells)
    assert table.splitlines()[0].startswith("| system | workload | req/s")
    assert "| greenroom | chat_c1 | 850 |" in table
    assert g.cpu_ms == pytest.approx(1000 / 850) and "| 1.18 |" in table
    assert next(c for c in cells if c.system == "direct").cpu_ms is None


@pytest.mark.parametrize(
    ("before", "after", "codes", "cpu_ms"),
    [
        (10.0, 12.0, {"200": 1000}, 2.0),
        (10.0, 12.0, {"200": 900, "403": 100}, 2.0),   # every answered request counts
        (None, 12.0, {"200": 1000}, None),             # no process to measure (direct)
        (10.0, 12.0, {}, None),                         # nothing answered
    ],
)
def test_cpu_per_request(before: float | None, after: float | None, codes: dict, cpu_ms: float | None) -> None:
    expected = None if cpu_ms is None else pytest.approx(cpu_ms)
    assert benchlib.cpu_per_request(before, after, {"codes": codes}) == expected


def test_litellm_config() -> None:
    cfg = benchlib.litellm_config("https://127.0.0.1:1000/v1", "https://127.0.0.1:2000/v1", "/tmp/ca.pem", "sk-x")
    names = {m["model_name"]: m["litellm_params"] for m in cfg["model_list"]}
    assert names["gpt-4o-mini"] == {"model": "openai/gpt-4o-mini", "api_base": "https://127.0.0.1:1000/v1",
                                    "api_key": "sk-bench"}
    assert names["stream-long"]["api_base"] == "https://127.0.0.1:2000/long/v1"
    assert cfg["litellm_settings"]["ssl_verify"] == "/tmp/ca.pem"
    assert cfg["general_settings"]["master_key"] == "sk-x"
    assert not any(k in cfg["litellm_settings"] for k in ("guardrails", "callbacks", "success_callback"))
    assert json.loads(benchlib.litellm_config_yaml(cfg)) == cfg  # JSON is valid YAML
    assert "stream-fast" not in {m["model_name"] for m in
                                 benchlib.litellm_config("https://a/v1", None, "ca", "k")["model_list"]}


def test_profile_tops() -> None:
    raw = ("process 1;<module> (greenroom:6);run (asyncio/runners.py:194);request (addons/greenroom.py:10);"
           "loads (json/__init__.py:346) 30\n"
           "<module> (greenroom:6);run (asyncio/runners.py:194);request (addons/greenroom.py:12) 10\n"
           "garbage line\n")
    tops = benchlib.profile_tops(raw)
    assert tops["total"] == 40
    assert tops["self"][0] == ("loads (json/__init__.py)", 30)
    assert dict(tops["inclusive"])["request (addons/greenroom.py)"] == 40  # both lines of the same function
    text = benchlib.format_profile(tops, 5)
    assert "75.0" in text and "40 samples" in text


@pytest.mark.parametrize(
    ("frame", "name"),
    [
        ("request (addons/greenroom.py:120)", "request (addons/greenroom.py)"),
        ("f (/work/.venv/lib/python3.13/site-packages/mitmproxy/addonmanager.py:248)", "f (mitmproxy/addonmanager.py)"),
        ("g (/root/.pyenv/versions/3.12.8/lib/python3.12/asyncio/base_events.py:9)", "g (asyncio/base_events.py)"),
        ("h (/usr/lib/python3/dist-packages/x.py:1)", "h (/usr/lib/python3/dist-packages/x.py)"),
        ("<lambda> (<string>:1)", "<lambda> (<string>)"),
        ("thread (0x7f) (idle)", "thread (0x7f) (idle)"),
    ],
)
def test_profile_frame_names(frame: str, name: str) -> None:
    """py-spy frames of any Python version's standard library or site-packages shorten to the module path."""
    assert benchlib._frame_name(frame) == name


@pytest.mark.parametrize(
    ("bare_rps", "says"),
    [
        ({"chat_c1": 611, "chat_c8": 800}, "a quiet run"),
        ({"chat_c1": 317, "chat_c8": 240}, "about 2.4x slower"),
        ({}, None),
    ],
)
def test_machine_note(bare_rps: dict[str, float], says: str | None) -> None:
    """The run says how slow the box was against the reference, from bare mitmdump's best chat req/s."""
    cells = [benchlib.Cell("bare", w, rps=r) for w, r in bare_rps.items()]
    cells.append(benchlib.Cell("greenroom", "chat_c1", rps=5000))  # not the baseline
    note = benchlib.machine_note(cells)
    assert (note is None) if says is None else (says in (note or ""))
