"""Pure helpers of `make bench` (bench/run.py): parsing hey, medians, pair-by-pair ratios, the LiteLLM
config, the issue's targets and the printed table. No processes, no sockets: unit-tested in
tests/unit/test_bench_harness.py.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SYSTEMS",
    "Target",
    "cell_summary",
    "evaluate_targets",
    "format_profile",
    "format_table",
    "format_targets",
    "litellm_config",
    "litellm_config_yaml",
    "median",
    "pair_diffs",
    "pair_ratios",
    "parse_hey",
    "percentile",
    "profile_tops",
    "summarize",
]

# Display order; ratios are taken against "bare" (mitmdump, no addons) and "litellm".
SYSTEMS = ("direct", "bare", "greenroom", "litellm")


# ------------------------------------------------------------------------------------------------
# hey


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_SLOWEST = re.compile(r"Slowest:\s+([\d.]+)\s+secs")
_PCT = re.compile(r"^\s*(\d+)%\s+in\s+([\d.]+)\s+secs", re.M)
_CODE = re.compile(r"^\s*\[(\d{3})\]\s+(\d+)\s+responses", re.M)
_ERR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.M)


def parse_hey(text: str) -> dict[str, Any]:
    """Figures of one `hey` run: req/s, latency percentiles (ms), status codes, transport errors.

    Missing figures (for example when every request failed) are None; `errors` counts the lines of
    hey's "Error distribution" (connection refused, timeouts, ...), which are not HTTP statuses.
    """
    out: dict[str, Any] = {"rps": None, "p50_ms": None, "p90_ms": None, "p99_ms": None, "codes": {}, "errors": 0,
                           "error_sample": ""}
    m = _RPS.search(text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, secs in _PCT.findall(text):
        if pct in ("50", "90", "99"):
            out[f"p{pct}_ms"] = float(secs) * 1000.0
    m = _SLOWEST.search(text)
    out["slowest_ms"] = float(m.group(1)) * 1000.0 if m else None
    if out["p99_ms"] is None and out["slowest_ms"] is not None and out["rps"]:
        # hey prints no 99% line with fewer than 100 answers; the nearest-rank p99 of < 100 samples is the max
        out["p99_ms"] = out["slowest_ms"]
    out["codes"] = {code: int(n) for code, n in _CODE.findall(text)}
    if "Error distribution:" in text:
        tail = text.split("Error distribution:", 1)[1]
        errs = _ERR.findall(tail)
        out["errors"] = sum(int(n) for n, _ in errs)
        out["error_sample"] = errs[0][1][:200] if errs else tail.strip()[:200]
    return out


def ok_fraction(codes: dict[str, int], errors: int = 0) -> float | None:
    total = sum(codes.values()) + errors
    if not total:
        return None
    return codes.get("200", 0) / total


# ------------------------------------------------------------------------------------------------
# statistics


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100) of a sample; None for an empty sample."""
    if not values:
        return None
    vals = sorted(values)
    k = max(0, min(len(vals) - 1, math.ceil(pct / 100.0 * len(vals)) - 1))
    return vals[k]


def _by_rep(runs: Iterable[dict[str, Any]], key: str) -> dict[int, float]:
    return {r["rep"]: r[key] for r in runs if r.get(key) is not None}


def pair_ratios(runs: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]], key: str) -> float | None:
    """Median over repetitions of run[key] / base[key], pairing the runs of the same repetition.

    Pairing within a repetition (the two were measured back to back) cancels the slow drift of a
    shared machine better than dividing two medians.
    """
    a, b = _by_rep(runs, key), _by_rep(base, key)
    return median(a[i] / b[i] for i in a.keys() & b.keys() if b[i])


def pair_diffs(runs: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]], key: str) -> float | None:
    """Median over repetitions of run[key] - base[key] (same repetition)."""
    a, b = _by_rep(runs, key), _by_rep(base, key)
    return median(a[i] - b[i] for i in a.keys() & b.keys())


def cpu_per_request(before: float | None, after: float | None, hey: dict[str, Any]) -> float | None:
    """The system's CPU milliseconds per answered request over one cell (None for `direct`)."""
    answered = sum((hey.get("codes") or {}).values())
    if before is None or after is None or not answered:
        return None
    return (after - before) * 1000 / answered


@dataclass
class Cell:
    system: str
    workload: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    added_p50_direct_ms: float | None = None
    added_p50_bare_ms: float | None = None
    x_bare: float | None = None
    x_litellm: float | None = None
    peak_rss_mb: float | None = None
    cpu_ms: float | None = None
    """the system's process-tree CPU time per answered request (user + system), median of the runs."""
    ok: float | None = None
    reps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def cell_summary(results: Sequence[dict[str, Any]], system: str, workload: str) -> Cell | None:
    """One row of the table from the raw runs: medians, and ratios/differences pair by pair."""
    runs = [r for r in results if r["system"] == system and r["workload"] == workload]
    if not runs:
        return None

    def others(name: str) -> list[dict[str, Any]]:
        return [r for r in results if r["system"] == name and r["workload"] == workload]

    c = Cell(system, workload, reps=len(runs))
    c.rps = median(r.get("rps") for r in runs)
    c.p50_ms = median(r.get("p50_ms") for r in runs)
    c.p99_ms = median(r.get("p99_ms") for r in runs)
    rss = [r["rss_mb"] for r in runs if r.get("rss_mb") is not None]
    c.peak_rss_mb = max(rss) if rss else None
    c.cpu_ms = median(r.get("cpu_ms") for r in runs)
    oks = [ok_fraction(r.get("codes") or {}, r.get("errors") or 0) for r in runs]
    c.ok = median(oks)
    if system != "direct":
        c.added_p50_direct_ms = pair_diffs(runs, others("direct"), "p50_ms")
    if system not in ("direct", "bare"):
        c.added_p50_bare_ms = pair_diffs(runs, others("bare"), "p50_ms")
    rkey = "rps" if any(r.get("rps") is not None for r in runs) else None
    if rkey and system != "bare":
        c.x_bare = pair_ratios(runs, others("bare"), rkey)
    if rkey and system != "litellm":
        c.x_litellm = pair_ratios(runs, others("litellm"), rkey)
    for key in ("alone_p99_ms", "loaded_p99_ms", "p99_ratio", "open_streams", "idle_rss_mb", "image_rps",
                "single_rps", "scale"):
        vals = [r.get(key) for r in runs if r.get(key) is not None]
        if vals:
            c.extra[key] = median(vals)
    return c


def summarize(results: Sequence[dict[str, Any]], workloads: Sequence[str]) -> list[Cell]:
    cells = []
    for w in workloads:
        for s in SYSTEMS:
            c = cell_summary(results, s, w)
            if c is not None:
                cells.append(c)
    return cells


# ------------------------------------------------------------------------------------------------
# LiteLLM


def litellm_config(chat_base: str, stream_base: str | None, ca_file: str, master_key: str) -> dict[str, Any]:
    """LiteLLM proxy config: no guardrails, no database, no callbacks; every model an OpenAI-compatible
    upstream. `ca_file` is the test CA the upstreams' certificates chain to (litellm `ssl_verify`
    accepts a CA bundle path; SSL_CERT_FILE is set to it as well). LiteLLM refuses to start without a
    master key, so clients send `Authorization: Bearer <master_key>` (one cached key check, no guardrail)."""
    models: list[dict[str, Any]] = []

    def add(name: str, base: str) -> None:
        models.append({"model_name": name,
                       "litellm_params": {"model": "openai/gpt-4o-mini" if name != "gpt-image-1" else
                                          "openai/gpt-image-1", "api_base": base, "api_key": "sk-bench"}})

    add("gpt-4o-mini", chat_base)
    add("gpt-image-1", chat_base)
    if stream_base:
        add("stream-fast", stream_base)
        add("stream-long", stream_base.replace("/v1", "/long/v1", 1))
    return {
        "model_list": models,
        "litellm_settings": {
            "ssl_verify": ca_file,
            "drop_params": True,
            "telemetry": False,
            "set_verbose": False,
            "json_logs": False,
            "request_timeout": 600,
        },
        "general_settings": {"master_key": master_key, "disable_spend_logs": True, "disable_error_logs": True},
    }


def litellm_config_yaml(cfg: dict[str, Any]) -> str:
    """YAML is a superset of JSON: write the config as JSON so no YAML library is needed."""
    return json.dumps(cfg, indent=2) + "\n"


# ------------------------------------------------------------------------------------------------
# targets (issue 9)


@dataclass
class Target:
    name: str
    figure: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _get(cells: Sequence[Cell], system: str, workload: str) -> Cell | None:
    return next((c for c in cells if c.system == system and c.workload == workload), None)


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def evaluate_targets(cells: Sequence[Cell]) -> list[Target]:
    """The issue's targets for Greenroom, from the summarized cells (informational)."""
    out: list[Target] = []

    def add(name: str, value: float | None, test: Callable[[float], bool], figure: str) -> None:
        out.append(Target(name, figure, None if value is None else test(value)))

    for w in ("chat_c1", "chat_c8", "chat_c64"):
        c = _get(cells, "greenroom", w)
        v = c.x_bare if c else None
        add(f"{w}: throughput >= 90% of bare mitmdump", v, lambda x: x >= 0.9, f"{_fmt(v)}x bare")
    c = _get(cells, "greenroom", "chat_c1")
    v = c.added_p50_bare_ms if c else None
    add("chat_c1: added p50 <= 0.3 ms over bare mitmdump", v, lambda x: x <= 0.3, f"+{_fmt(v)} ms")
    lit = _get(cells, "litellm", "chat_c1")
    g, lv = (c.added_p50_direct_ms if c else None), (lit.added_p50_direct_ms if lit else None)
    diff = None if g is None or lv is None else g - lv
    add("chat_c1: lower added latency than LiteLLM", diff, lambda x: x < 0,
        f"greenroom +{_fmt(g)} ms vs litellm +{_fmt(lv)} ms over direct")
    c = _get(cells, "greenroom", "scale2")
    v = c.extra.get("scale") if c else None
    add("two processes on two cores >= 1.7x one", v, lambda x: x >= 1.7, f"{_fmt(v)}x")
    c = _get(cells, "greenroom", "image_face")
    v = c.added_p50_direct_ms if c else None
    add("1 MP image with a face: <= 150 ms added (p50)", v, lambda x: x <= 150, f"+{_fmt(v, '.1f')} ms")
    c = _get(cells, "greenroom", "text_under_image")
    v = c.extra.get("p99_ratio") if c else None
    add("text p99 under image load <= 1.5x without", v, lambda x: x <= 1.5, f"{_fmt(v)}x")
    c = _get(cells, "greenroom", "stream_ttfe")
    v = c.added_p50_direct_ms if c else None
    add("time to first streamed event within 5 ms of direct (p50)", v, lambda x: x <= 5, f"+{_fmt(v)} ms")
    c = _get(cells, "greenroom", "streams500")
    v = c.peak_rss_mb if c else None
    add("RSS <= 300 MB with 500 open streams", v, lambda x: x <= 300, f"{_fmt(v, '.0f')} MB")
    return out


REFERENCE_BARE_RPS = (770.0, 900.0)
"""bare mitmdump, keep-alive, one core, on this machine when it was quiet (shared/reference/mitmproxy-baseline.md)."""


def machine_note(cells: Sequence[Cell]) -> str | None:
    """How fast the box was during this run, from bare mitmdump's chat req/s against the reference: the
    absolute-millisecond targets (image, first streamed event) scale with it, the ratios do not."""
    bare = [c.rps for c in cells if c.system == "bare" and c.workload in ("chat_c1", "chat_c8", "chat_c64")
            and c.rps]
    if not bare:
        return None
    low, high = REFERENCE_BARE_RPS
    best = max(bare)
    if best >= low:
        return f"machine: bare mitmdump up to {best:.0f} req/s (reference {low:.0f}-{high:.0f}): a quiet run"
    return (f"machine: bare mitmdump up to {best:.0f} req/s against {low:.0f}-{high:.0f} when this box is quiet, "
            f"so it ran about {low / best:.1f}x slower; the millisecond targets (image, first streamed event) "
            "measured this run are inflated by about as much, the ratios are not")


# ------------------------------------------------------------------------------------------------
# table


_HEADER = ("system", "workload", "req/s", "p50 ms", "p99 ms", "+p50 vs direct", "+p50 vs bare", "x bare",
           "x LiteLLM", "CPU ms/req", "peak RSS MB", "200s", "notes")


def format_table(cells: Sequence[Cell], notes: dict[tuple[str, str], str] | None = None) -> str:
    """A markdown table, one row per (workload, system)."""
    notes = notes or {}
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    for c in cells:
        extra = []
        if "alone_p99_ms" in c.extra:
            extra.append(f"text p99 alone {c.extra['alone_p99_ms']:.1f} → loaded {c.extra['loaded_p99_ms']:.1f} ms "
                         f"({c.extra['p99_ratio']:.2f}x)")
        if "open_streams" in c.extra:
            extra.append(f"{c.extra['open_streams']:.0f} streams open; idle {c.extra.get('idle_rss_mb', 0):.0f} MB")
        if "scale" in c.extra:
            extra.append(f"1 proc {c.extra['single_rps']:.0f} req/s → 2 procs {c.rps:.0f} ({c.extra['scale']:.2f}x)")
        if (c.system, c.workload) in notes:
            extra.append(notes[(c.system, c.workload)])
        row = (
            c.system,
            c.workload,
            _fmt(c.rps, ".0f"),
            _fmt(c.p50_ms, ".2f"),
            _fmt(c.p99_ms, ".2f"),
            "" if c.added_p50_direct_ms is None else f"{c.added_p50_direct_ms:+.2f}",
            "" if c.added_p50_bare_ms is None else f"{c.added_p50_bare_ms:+.2f}",
            "" if c.x_bare is None else f"{c.x_bare:.2f}",
            "" if c.x_litellm is None else f"{c.x_litellm:.2f}",
            "" if c.cpu_ms is None else f"{c.cpu_ms:.2f}",
            _fmt(c.peak_rss_mb, ".0f"),
            "" if c.ok is None else f"{c.ok * 100:.0f}%",
            "; ".join(extra),
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_targets(targets: Sequence[Target]) -> str:
    lines = ["| target (issue 9, Greenroom) | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t.name} | {t.figure} | {t.verdict} |" for t in targets]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# profile (py-spy --format raw: one collapsed stack per line, "frame;frame;...;leaf COUNT")


_LINE = re.compile(r":\d+\)$")
_PREFIX = re.compile(r"\((?:[^()]*/)?(?:site-packages|lib/python3\.\d+)/")
"""a frame's file path up to the package or standard-library module: `(…/site-packages/x/y.py` → `(x/y.py`."""


def _frame_name(frame: str) -> str:
    """'request (addons/greenroom.py:120)' -> 'request (addons/greenroom.py)'; site-packages and
    standard-library paths shortened to the module's path."""
    return _PREFIX.sub("(", _LINE.sub(")", frame.strip()), count=1)


def profile_tops(raw: str) -> dict[str, Any]:
    """Self time (leaf frame) and inclusive time (anywhere on the stack, once per stack) per function."""
    total = 0
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        self_c[frames[-1]] = self_c.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count
    return {"total": total,
            "self": sorted(self_c.items(), key=lambda kv: -kv[1]),
            "inclusive": sorted(incl.items(), key=lambda kv: -kv[1])}


def format_profile(tops: dict[str, Any], n: int = 25, filt: Callable[[str], bool] | None = None) -> str:
    total = tops["total"] or 1
    out = []
    for kind in ("self", "inclusive"):
        rows = [(f, c) for f, c in tops[kind] if filt is None or filt(f)][:n]
        out.append(f"| {kind} % | function (file) |\n|---|---|")
        out.append("\n".join(f"| {100.0 * c / total:.1f} | `{f}` |" for f, c in rows))
        out.append("")
    return f"{tops['total']} samples\n\n" + "\n".join(out)
