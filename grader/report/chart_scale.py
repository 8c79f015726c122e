"""The numbers behind the report's charts: cleaning, thinning, axis ranges, ticks and tick labels.

The values come from a student's notebook (its `losses` list, the losses and
accuracies of the grader training the student's model) or from a stored result
file anyone may have edited, so nothing here trusts them: any value may be
nan, infinite, near the float limit, subnormal, a string, a bool, None, a
nested list or an integer too large for a float. Every function is total (it
never raises on its input) and bounded: at most `MAX_PLOTTED` points are
drawn, at most `MAX_TICKS` ticks are made, every loop has a fixed bound, and
every label has a fixed maximum length.
"""
from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grader.plain_numbers import finite_float

Point = tuple[float, float]

MAX_TICKS = 12
# Beyond this many points a polyline only repeats pixels (the plot is ~370 units wide).
MAX_PLOTTED = 400
# Ranges narrower than this, relative to their values, are drawn flat: tick labels
# would need more digits than a float holds, and stepping a tick by less than one
# ulp never reaches the end of the range.
FLAT_RELATIVE = 1e-9
# Ranges narrower than this, in absolute terms, are drawn flat: below it steps and
# ratios lose their precision in the subnormal floats.
FLAT_ABSOLUTE = 1e-290
# A flat range around a centre smaller than this gets a unit pad (10 % of it would be a flat range again).
TINY_CENTRE = 1e-280
FLOAT_MAX = sys.float_info.max
NICE_MANTISSAS = (1.0, 2.0, 2.5, 5.0, 10.0)
# Up to this many digits after the point are tried for a tick label (1 + 16 significant digits round-trip any float).
MAX_LABEL_DIGITS = 16


# ---------------------------------------------------------------- values


# (kept under its chart name: svg_plot and html call it so)
as_finite = finite_float


@dataclass(frozen=True)
class CleanPoints:
    points: list[Point]
    dropped: int  # entries that were not a pair of finite numbers


def clean_points(points: Any) -> CleanPoints:
    """The (x, y) pairs of `points` whose both values are finite numbers, in order."""
    if isinstance(points, (str, bytes, dict)):
        return CleanPoints([], 0)
    try:
        items = iter(points)
    except TypeError:
        return CleanPoints([], 0)
    kept: list[Point] = []
    dropped = 0
    for item in items:
        pair = _as_pair(item)
        if pair is None:
            dropped += 1
        else:
            kept.append(pair)
    return CleanPoints(kept, dropped)


def _as_pair(item: Any) -> Point | None:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        return None
    x, y = as_finite(item[0]), as_finite(item[1])
    return None if x is None or y is None else (x, y)


def thin(points: Sequence[Point], limit: int = MAX_PLOTTED) -> list[Point]:
    """At most `limit` points with the shape of the series: each stretch keeps its lowest and highest point.

    A plain every-n-th sample would hide a spike (a diverging epoch); keeping
    both extremes of every stretch keeps it, in the stretch's own order.
    """
    count = len(points)
    if count <= limit:
        return list(points)
    stretches = max(1, limit // 2)
    ys = [y for _, y in points]
    out: list[Point] = []
    for k in range(stretches):
        start, end = k * count // stretches, (k + 1) * count // stretches
        low = min(range(start, end), key=ys.__getitem__)
        high = max(range(start, end), key=ys.__getitem__)
        out.extend(points[i] for i in sorted({low, high}))
    return out


# ---------------------------------------------------------------- axes


@dataclass(frozen=True)
class Axis:
    """A finite range with low < high, and its ticks (within the range, increasing, at most MAX_TICKS)."""

    low: float
    high: float
    ticks: tuple[float, ...]

    def fraction(self, value: float) -> float:
        """Where `value` lies on the axis: 0 at `low`, 1 at `high`; clamped, never nan."""
        span = self.high - self.low
        if math.isfinite(span):
            where = (value - self.low) / span
        else:
            # The span of [-1.7e308, 1.7e308] overflows; halves never do.
            where = (value / 2 - self.low / 2) / (self.high / 2 - self.low / 2)
        if math.isnan(where):
            return 0.5
        return min(1.0, max(0.0, where))


def axis_for(low: float, high: float, target: int = 5, integer: bool = False) -> Axis:
    """An axis covering [low, high] with round ticks; any input (non-finite: the unit range)."""
    low_f, high_f = as_finite(low), as_finite(high)
    if low_f is None or high_f is None:
        low_f, high_f = 0.0, 1.0
    if high_f < low_f:
        low_f, high_f = high_f, low_f
    low_f, high_f = _widen_if_flat(low_f, high_f)
    target = min(max(int(target), 2), MAX_TICKS - 2)
    ticks = (_integer_ticks(low_f, high_f, target) if integer else None) or _nice_ticks(low_f, high_f, target)
    ticks = ticks or _even_ticks(low_f, high_f, target)
    return Axis(min(low_f, ticks[0]), max(high_f, ticks[-1]), tuple(ticks))


def axis_of(values: Iterable[float], target: int = 5, integer: bool = False) -> Axis:
    """The axis for the finite numbers among `values` (none: the unit range)."""
    finite = [v for v in (as_finite(value) for value in values) if v is not None]
    if not finite:
        return axis_for(0.0, 1.0, target, integer)
    return axis_for(min(finite), max(finite), target, integer)


def is_flat(low: float, high: float) -> bool:
    """True when [low, high] is too narrow to draw ticks in: zero, below float resolution, or subnormal."""
    span = high - low
    return span <= FLAT_ABSOLUTE or span <= FLAT_RELATIVE * max(abs(low), abs(high))


def _widen_if_flat(low: float, high: float) -> tuple[float, float]:
    """A flat range as 10 % either side of its centre, clamped to the float range."""
    if not is_flat(low, high):
        return low, high
    centre = low / 2 + high / 2
    pad = abs(centre) * 0.1 if abs(centre) >= TINY_CENTRE else 1.0
    return max(centre - pad, -FLOAT_MAX), min(centre + pad, FLOAT_MAX)


def _nice_ticks(low: float, high: float, target: int) -> list[float] | None:
    """Multiples of a 1, 2, 2.5 or 5 x 10^k step covering [low, high]; None where floats cannot hold them."""
    span = high - low
    if not math.isfinite(span) or span <= 0:
        return None
    raw = span / target
    exponent = math.floor(math.log10(raw))
    magnitude = 10.0 ** exponent
    step = next((m * magnitude for m in NICE_MANTISSAS if m * magnitude >= raw), None)
    if step is None or not math.isfinite(step) or step <= 0:
        return None
    # Ticks are k * step for whole k, so no error accumulates and the count is known before the loop.
    first, last = math.floor(low / step), math.ceil(high / step)
    if last - first + 1 > MAX_TICKS:
        return None
    ticks = [_round_tick(k * step, exponent) for k in range(first, last + 1)]
    return ticks if _usable(ticks) else None


def _round_tick(value: float, exponent: int) -> float:
    """k * step without its float noise (0.30000000000000004 -> 0.3); 2.5 x 10^k needs one digit more."""
    try:
        rounded = round(value, 1 - exponent)
    except OverflowError:
        return value
    return rounded if math.isfinite(rounded) else value


def _integer_ticks(low: float, high: float, target: int) -> list[float] | None:
    """Whole-number ticks (epochs), thinned so labels never collide; None beyond exact integers."""
    if max(abs(low), abs(high)) > 2.0 ** 52:
        return None
    lo, hi = math.floor(low), math.ceil(high)
    step = max(1, math.ceil((hi - lo) / target))
    ticks = [float(v) for v in range(lo, hi + 1, step)]
    return ticks if len(ticks) <= MAX_TICKS and _usable(ticks) else None


def _even_ticks(low: float, high: float, target: int) -> list[float]:
    """`target` + 1 evenly spaced ticks from low to high: the fallback for ranges near the float limit."""
    # A weighted mean of the ends never exceeds them (low + i * gap can overflow near the float limit).
    inner = [min(max(low * (1 - i / target) + high * (i / target), low), high) for i in range(1, target)]
    ticks = sorted({low, high, *inner})
    return [*ticks[:MAX_TICKS - 1], high] if len(ticks) > MAX_TICKS else ticks


def _usable(ticks: list[float]) -> bool:
    return (0 < len(ticks) <= MAX_TICKS and all(math.isfinite(t) for t in ticks)
            and all(a < b for a, b in itertools.pairwise(ticks)))


# ---------------------------------------------------------------- labels


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Short labels that tell the ticks apart: fixed-point for everyday sizes, else scientific.

    The fewest digits that put every label within a hundredth of a tick gap of
    its tick, so 0.25 is never shown as "0.2" and 10500 never as "1e+04".
    """
    values = [float(t) if math.isfinite(t) else 0.0 for t in ticks]
    if not values:
        return []
    largest = max(abs(v) for v in values)
    gaps = [b - a for a, b in itertools.pairwise(values) if b > a]
    tolerance = min(gaps) * 1e-2 if gaps else max(largest, 1.0) * 1e-2
    scientific = largest >= 1e5 or 0 < largest < 1e-3
    for digits in range(MAX_LABEL_DIGITS + 1):
        labels = [_label(v, digits, scientific) for v in values]
        if _labels_fit(labels, values, tolerance):
            return labels
    return labels


def _label(value: float, digits: int, scientific: bool) -> str:
    if value == 0:
        return "0"
    if not scientific:
        text = f"{value:.{digits}f}"
        return "0" if float(text) == 0 else text
    mantissa, _, power = f"{value:.{digits}e}".partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{power}"


def _labels_fit(labels: list[str], values: list[float], tolerance: float) -> bool:
    if len(set(labels)) != len(labels):
        return False
    return all(abs(float(text) - value) <= tolerance for text, value in zip(labels, values))
