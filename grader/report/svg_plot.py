"""A small inline-SVG line chart, drawn from numbers only.

The HTML report is self-contained and runs no JavaScript, so charts are plain
SVG markup built here. Every piece of text that enters the markup is escaped,
and coordinates are formatted from floats, so nothing from a result can become
markup. The returned `Markup` is therefore safe to place in an autoescaping
template.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from markupsafe import Markup, escape

# Colour-blind-safe pair (Okabe-Ito blue and vermillion) that also survives greyscale printing.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7")

WIDTH = 440
HEIGHT = 250
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 30
MARGIN_BOTTOM = 44
# The page's font stack, so Chinese axis labels render with the same CJK font as the text.
FONTS = "-apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif"
# Beyond this many points the markers clutter the line more than they help.
MAX_MARKERS = 60


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    colour: str = ""


@dataclass(frozen=True)
class HLine:
    """A horizontal reference line, such as a pass threshold."""

    value: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    hlines: Sequence[HLine] = field(default_factory=tuple)
    y_range: tuple[float, float] | None = None
    y_format: Callable[[float], str] | None = None
    integer_x: bool = True


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _integer_ticks(low: float, high: float, target: int = 8) -> list[float]:
    """Epoch ticks: whole numbers only, thinned so labels never collide."""
    lo, hi = math.floor(low), math.ceil(high)
    step = max(1, math.ceil((hi - lo) / target))
    return [float(v) for v in range(lo, hi + 1, step)]


def _fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.0e}"
    return f"{value:.4g}"


def _finite_points(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for x, y in points:
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            continue
        if math.isfinite(fx) and math.isfinite(fy):
            out.append((fx, fy))
    return out


def _num(value: float) -> str:
    """A coordinate: always a plain decimal number."""
    return f"{float(value):.1f}"


def line_chart(chart: Chart) -> Markup:
    """The chart as one `<svg>` element (scales to its container's width)."""
    series = [Series(s.label, _finite_points(s.points), s.colour or PALETTE[i % len(PALETTE)])
              for i, s in enumerate(chart.series)]
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points] + [h.value for h in chart.hlines if math.isfinite(h.value)]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if chart.y_range is not None:
        y_ticks = nice_ticks(*chart.y_range)
    else:
        y_ticks = nice_ticks(min(ys), max(ys)) if ys else [0.0, 1.0]
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    x_ticks = _integer_ticks(x_lo, x_hi) if chart.integer_x else nice_ticks(x_lo, x_hi)
    x_lo, x_hi = min(x_lo, x_ticks[0]), max(x_hi, x_ticks[-1])

    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return MARGIN_TOP + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    y_format = chart.y_format or _fmt_tick
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}" '
        f'font-family="{FONTS}" font-size="13">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{MARGIN_LEFT}" y="18" font-size="13" font-weight="600" fill="#1f2328">{escape(chart.title)}</text>',
    ]
    parts += _grid_and_axes(chart, x_ticks, y_ticks, sx, sy, y_format)
    for hline in chart.hlines:
        if math.isfinite(hline.value) and y_lo <= hline.value <= y_hi:
            y = _num(sy(hline.value))
            parts.append(f'<line class="hline" x1="{_num(MARGIN_LEFT)}" y1="{y}" x2="{_num(MARGIN_LEFT + plot_w)}" '
                         f'y2="{y}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="6 4"/>')
            # Left end, haloed: accuracy curves usually climb towards the threshold on the right.
            parts.append(f'<text x="{_num(MARGIN_LEFT + 6)}" y="{_num(sy(hline.value) - 6)}" fill="#cf222e" '
                         f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(hline.label)}</text>')
    for s in series:
        parts += _series_marks(s, sx, sy)
    parts.append("</svg>")
    # Every dynamic piece above is either escaped text or a formatted float.
    return Markup("".join(parts))


def _grid_and_axes(chart: Chart, x_ticks: list[float], y_ticks: list[float],
                   sx: Callable[[float], float], sy: Callable[[float], float],
                   y_format: Callable[[float], str]) -> list[str]:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    parts = []
    for t in y_ticks:
        y = _num(sy(t))
        parts.append(f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" stroke="#e6e9ed" stroke-width="1"/>')
        parts.append(f'<text x="{_num(left - 6)}" y="{y}" text-anchor="end" dominant-baseline="middle" '
                     f'fill="#59636e">{escape(y_format(t))}</text>')
    for t in x_ticks:
        x = _num(sx(t))
        parts.append(f'<line x1="{x}" y1="{_num(bottom)}" x2="{x}" y2="{_num(bottom + 4)}" stroke="#59636e"/>')
        parts.append(f'<text x="{x}" y="{_num(bottom + 17)}" text-anchor="middle" fill="#59636e">'
                     f'{escape(_fmt_tick(t))}</text>')
    parts.append(f'<line x1="{_num(left)}" y1="{_num(bottom)}" x2="{_num(right)}" y2="{_num(bottom)}" stroke="#59636e"/>')
    parts.append(f'<line x1="{_num(left)}" y1="{_num(top)}" x2="{_num(left)}" y2="{_num(bottom)}" stroke="#59636e"/>')
    parts.append(f'<text x="{_num((left + right) / 2)}" y="{_num(HEIGHT - 6)}" text-anchor="middle" '
                 f'fill="#1f2328">{escape(chart.x_label)}</text>')
    mid_y = _num((top + bottom) / 2)
    parts.append(f'<text x="14" y="{mid_y}" text-anchor="middle" transform="rotate(-90 14 {mid_y})" '
                 f'fill="#1f2328">{escape(chart.y_label)}</text>')
    return parts


def _series_marks(s: Series, sx: Callable[[float], float], sy: Callable[[float], float]) -> list[str]:
    if not s.points:
        return []
    coords = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in s.points)
    parts = [f'<polyline class="series" points="{coords}" fill="none" stroke="{escape(s.colour)}" '
             f'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>']
    if len(s.points) <= MAX_MARKERS:
        for x, y in s.points:
            parts.append(f'<circle cx="{_num(sx(x))}" cy="{_num(sy(y))}" r="3" fill="{escape(s.colour)}"/>')
    return parts

