"""A small inline-SVG line chart, drawn from numbers only.

The HTML report is self-contained and runs no JavaScript, so charts are plain
SVG markup built here. Every piece of text that enters the markup is escaped,
and coordinates are formatted from floats, so nothing from a result can become
markup. The returned `Markup` is therefore safe to place in an autoescaping
template. The numbers may be anything a notebook produced (nan, 1e308, a
million points): `chart_scale` cleans, thins and scales them, so drawing never
raises and the markup has a fixed maximum size.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from grader.report import chart_scale

# Colour-blind-safe pair (Okabe-Ito blue and vermillion) that also survives greyscale printing.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7")

WIDTH = 440
HEIGHT = 250
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 30
MARGIN_BOTTOM = 44
PLOT_W = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
PLOT_H = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
# The page's font stack, so Chinese axis labels render with the same CJK font as the text.
FONTS = ("-apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', "
         "sans-serif")
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
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [low, high]; any floats, at most MAX_TICKS."""
    return list(chart_scale.axis_for(low, high, target).ticks)


def line_chart(chart: Chart) -> Markup:
    """The chart as one `<svg>` element (scales to its container's width).

    Total and bounded for any numbers in the chart: values that are not finite
    numbers are left out, a long series is thinned to `chart_scale.MAX_PLOTTED`
    points, and the axes have at most `chart_scale.MAX_TICKS` ticks. A chart
    without a single drawable point is still a valid (empty) chart; callers
    that want a note instead check `chart_scale.clean_points` first.
    """
    cleaned = [(s, chart_scale.clean_points(s.points)) for s in chart.series]
    series = [Series(s.label, c.points, s.colour or PALETTE[i % len(PALETTE)]) for i, (s, c) in enumerate(cleaned)]
    hlines = [HLine(v, h.label) for h in chart.hlines if (v := chart_scale.as_finite(h.value)) is not None]
    x_axis = _x_axis(chart, series)
    y_axis = _y_axis(chart, series, hlines)

    def sx(x: float) -> float:
        return MARGIN_LEFT + x_axis.fraction(x) * PLOT_W

    def sy(y: float) -> float:
        return MARGIN_TOP + (1 - y_axis.fraction(y)) * PLOT_H

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}" '
        f'font-family="{FONTS}" font-size="13">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{MARGIN_LEFT}" y="18" font-size="13" font-weight="600" fill="#1f2328">{escape(chart.title)}</text>',
    ]
    parts += _grid_and_axes(chart, x_axis, y_axis, sx, sy)
    for hline in hlines:
        if y_axis.low <= hline.value <= y_axis.high:
            parts += _hline_marks(hline, sy)
    for s in series:
        parts += _series_marks(s, sx, sy)
    parts.append("</svg>")
    # Every dynamic piece above is either escaped text or a formatted float.
    return Markup("".join(parts))


def _x_axis(chart: Chart, series: list[Series]) -> chart_scale.Axis:
    xs = [x for s in series for x, _ in s.points]
    if not xs:
        return chart_scale.axis_for(0.0, 1.0, 8 if chart.integer_x else 5, chart.integer_x)
    return chart_scale.axis_for(min(xs), max(xs), 8 if chart.integer_x else 5, chart.integer_x)


def _y_axis(chart: Chart, series: list[Series], hlines: list[HLine]) -> chart_scale.Axis:
    """The value axis: the data and the reference lines, widened to `chart.y_range` when one is given.

    The range is a minimum, not a clip, so a value outside it (a tampered result)
    is drawn where it is rather than at a misleading edge.
    """
    ys = [y for s in series for _, y in s.points] + [h.value for h in hlines]
    wanted = [v for v in (chart.y_range or ()) if chart_scale.as_finite(v) is not None]
    low, high = min(ys + wanted, default=0.0), max(ys + wanted, default=1.0)
    return chart_scale.axis_for(low, high)


def _hline_marks(hline: HLine, sy: Callable[[float], float]) -> list[str]:
    y = _num(sy(hline.value))
    return [f'<line class="hline" x1="{_num(MARGIN_LEFT)}" y1="{y}" x2="{_num(MARGIN_LEFT + PLOT_W)}" '
            f'y2="{y}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="6 4"/>',
            # Left end, haloed: accuracy curves usually climb towards the threshold on the right.
            f'<text x="{_num(MARGIN_LEFT + 6)}" y="{_num(sy(hline.value) - 6)}" fill="#cf222e" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(hline.label)}</text>']


def _num(value: float) -> str:
    """A coordinate: always a plain decimal number (coordinates are clamped to the plot, so short)."""
    return f"{float(value):.1f}"


def _y_labels(chart: Chart, ticks: Sequence[float]) -> list[str]:
    if chart.y_format is None:
        return chart_scale.tick_labels(ticks)
    return [chart.y_format(t) for t in ticks]


def _grid_and_axes(chart: Chart, x_axis: chart_scale.Axis, y_axis: chart_scale.Axis,
                   sx: Callable[[float], float], sy: Callable[[float], float]) -> list[str]:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    parts = []
    for t, label in zip(y_axis.ticks, _y_labels(chart, y_axis.ticks)):
        y = _num(sy(t))
        parts.append(f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" stroke="#e6e9ed" '
                     'stroke-width="1"/>')
        parts.append(f'<text x="{_num(left - 6)}" y="{y}" text-anchor="end" dominant-baseline="middle" '
                     f'fill="#59636e">{escape(label)}</text>')
    for t, label in zip(x_axis.ticks, chart_scale.tick_labels(x_axis.ticks)):
        x = _num(sx(t))
        parts.append(f'<line x1="{x}" y1="{_num(bottom)}" x2="{x}" y2="{_num(bottom + 4)}" stroke="#59636e"/>')
        parts.append(f'<text x="{x}" y="{_num(bottom + 17)}" text-anchor="middle" fill="#59636e">'
                     f'{escape(label)}</text>')
    parts.append(f'<line x1="{_num(left)}" y1="{_num(bottom)}" x2="{_num(right)}" y2="{_num(bottom)}" '
                 'stroke="#59636e"/>')
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
    drawn = chart_scale.thin(s.points)
    coords = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in drawn)
    parts = [f'<polyline class="series" points="{coords}" fill="none" stroke="{escape(s.colour)}" '
             f'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>']
    # Markers only for a short series: on a long one they bury the line.
    if len(s.points) <= MAX_MARKERS:
        for x, y in s.points:
            parts.append(f'<circle cx="{_num(sx(x))}" cy="{_num(sy(y))}" r="3" fill="{escape(s.colour)}"/>')
    return parts
