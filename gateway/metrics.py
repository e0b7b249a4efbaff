"""Prometheus metrics without a dependency: counters and histograms rendered as text exposition.

Labels are ids only (decision, tool, production, rule), never content.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["Metrics"]

_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Thread-safe counters, gauges and millisecond histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            self._help.setdefault(name, ("counter", help_text))
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, help_text: str, value: float, **labels: str) -> None:
        with self._lock:
            self._help.setdefault(name, ("gauge", help_text))
            self._gauges[name][_labels(labels)] = value

    def observe_ms(self, name: str, help_text: str, value_ms: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            self._help.setdefault(name, ("histogram", help_text))
            series = self._histograms[name].setdefault(key, [0.0] * (len(_BUCKETS_MS) + 2))
            series[bisect.bisect_left(_BUCKETS_MS, value_ms)] += 1
            series[-1] += value_ms

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get(name, {}).get(_labels(labels), 0.0) or \
                self._gauges.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                if kind == "counter":
                    lines += [f"{name}{_fmt(k)} {v:g}" for k, v in sorted(self._counters[name].items())]
                elif kind == "gauge":
                    lines += [f"{name}{_fmt(k)} {v:g}" for k, v in sorted(self._gauges[name].items())]
                else:
                    for key, series in sorted(self._histograms[name].items()):
                        lines += _histogram_lines(name, key, series)
        return "\n".join(lines) + "\n"


def _histogram_lines(name: str, key: Labels, series: list[float]) -> Iterable[str]:
    cumulative = 0.0
    for bound, count in zip((*_BUCKETS_MS, float("inf")), series[:-1], strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        yield f"{name}_bucket{_fmt((*key, ('le', le)))} {cumulative:g}"
    yield f"{name}_sum{_fmt(key)} {series[-1]:g}"
    yield f"{name}_count{_fmt(key)} {cumulative:g}"


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
