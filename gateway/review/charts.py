"""Charts as server-rendered SVG: no script, no CDN. Each bar carries a `<title>`, so the number
shows on hover (and to screen readers), while the picture comes first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

__all__ = ["DECISION_COLOURS", "horizontal_bars", "stacked_bars"]

DECISION_COLOURS = {
    "allow": "#3b8c5a",
    "notify": "#3f74c4",
    "redact": "#8a5cc2",
    "hold": "#d99a1e",
    "block": "#c8443a",
}
_PALETTE = ("#3f74c4", "#3b8c5a", "#d99a1e", "#8a5cc2", "#c8443a", "#2a9d9b", "#b5568e", "#6b7a8f", "#9c7b3c")


def _colour(series: str, index: int, colours: Mapping[str, str] | None) -> str:
    if colours and series in colours:
        return colours[series]
    return _PALETTE[index % len(_PALETTE)]


def stacked_bars(
    chart_id: str,
    title: str,
    buckets: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colours: Mapping[str, str] | None = None,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Bars over time (one per bucket), stacked by series; a legend underneath."""
    left, right, top, bottom = 36, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(buckets))]
    peak = max(totals, default=0) or 1
    step = plot_w / max(len(buckets), 1)
    bar_w = max(step * 0.72, 1.0)
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" viewBox="0 0 {width} {height + 28}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9aa3b2"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="axis">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    for i, bucket in enumerate(buckets):
        x = left + i * step + (step - bar_w) / 2
        y: float = top + plot_h
        for index, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_colour(name, index, colours)}" data-series="{escape(name)}" data-value="{value}">'
                f"<title>{escape(bucket)} · {escape(name)}: {value}</title></rect>"
            )
        if i % max(1, len(buckets) // 8) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle" class="axis">'
                f"{escape(bucket)}</text>"
            )
    x = left
    for index, name in enumerate(series):
        total = sum(series[name])
        parts.append(
            f'<g class="legend"><rect x="{x}" y="{height + 10}" width="10" height="10" '
            f'fill="{_colour(name, index, colours)}"/><text x="{x + 14}" y="{height + 19}" class="legend-text">'
            f"{escape(name)}<title>{escape(name)}: {total}</title></text></g>"
        )
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every interpolated value is escaped above


def horizontal_bars(
    chart_id: str, title: str, items: Sequence[tuple[str, int]], colour: str = "#3f74c4", width: int = 420
) -> Markup:
    """A ranked list as bars (top rules, top users)."""
    row, label_w = 22, 150
    height = max(len(items), 1) * row + 4
    peak = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if not items:
        parts.append('<text x="4" y="16" class="axis">nothing in this period</text>')
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = (width - label_w - 8) * value / peak
        short = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="label">{escape(short)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 7}" fill="{colour}" '
            f'data-series="{escape(label)}" data-value="{value}"><title>{escape(label)}: {value}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every interpolated value is escaped above
