"""Student numbers in charts (issue #12, part 5): any list of values renders or is left out with a note,
never raises, in bounded time and size.

A notebook's `losses` list reaches the HTML report's chart; so do the losses and
accuracies of the grader training the student's model, and a stored result may
have been edited by anyone. Measured before the fix: [1.7e308, -1.7e308] raised
OverflowError, [1.0, 1.0 + 4 * 2**-52] ZeroDivisionError (no HTML, exit 3), and
[1e16, 1e16 + 2] looped forever in the tick code, growing 25 MB/s.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.checks.student_curve import parse_curve
from grader.report import chart_scale, svg_plot
from grader.report.html import render_submission_html
from grader.report.summary import BINS, histogram

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
MEASURED = {
    "overflow": [1.7e308, -1.7e308],
    "below_resolution": [1.0, 1.0 + 4 * 2**-52],
    "tick_loop": [1e16, 1e16 + 2],
}
# Found while fixing: an absolute round(tick, 12) made every tick 0.0 (ZeroDivisionError).
TINY_RANGE = [1e-14, 3e-14]
# The chart's markup for short titles: 12 + 12 ticks, <= 400 line points, <= 60 markers, a few lines.
MAX_SVG_CHARS = 25_000
SECONDS = 10  # per call, even on a busy two-core machine; a hang is what this catches
FUZZ = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

any_float = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
extreme_float = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1.0,
                                 1.0 + 2**-52, 1e16, 1e16 + 2, 1.7e308, -1.7e308, sys.float_info.max,
                                 -sys.float_info.max, math.inf, -math.inf, math.nan])
number = st.one_of(any_float, extreme_float)
# What json.loads can hand over from a stored result besides floats.
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(min_value=-10**400, max_value=10**400),
                 st.lists(number, max_size=3), st.dictionaries(st.text(max_size=3), number, max_size=2))


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: the tick loop once never ended."""
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _chart(values: list[Any], **extra: Any) -> str:
    series = [svg_plot.Series("s", [(i + 1, v) for i, v in enumerate(values)])]
    with time_limit(SECONDS):
        return str(svg_plot.line_chart(svg_plot.Chart("title", "x", "y", series, **extra)))


def _assert_valid_svg(svg: str) -> ET.Element:
    assert len(svg) <= MAX_SVG_CHARS
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for element in root.iter():
        for name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy"):
            if name in element.attrib:
                value = float(element.attrib[name])
                assert math.isfinite(value) and -svg_plot.WIDTH <= value <= 2 * svg_plot.WIDTH, (name, value)
    for line in root.iter("{http://www.w3.org/2000/svg}polyline"):
        points = line.attrib["points"].split()
        assert len(points) <= chart_scale.MAX_PLOTTED
        assert all(re.fullmatch(r"\d+\.\d,\d+\.\d", p) for p in points)
    return root


def _polyline_points(svg: str) -> list[str]:
    match = re.search(r'<polyline class="series" points="([^"]+)"', svg)
    return match.group(1).split() if match else []


# ---------------------------------------------------------------- the measured lists


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_each_measured_list_draws_a_chart_with_both_points(name: str):
    svg = _chart(MEASURED[name])
    _assert_valid_svg(svg)
    assert len(_polyline_points(svg)) == 2


def test_a_range_far_below_one_draws_distinct_ticks():
    svg = _chart(TINY_RANGE)
    _assert_valid_svg(svg)
    labels = re.findall(r'text-anchor="end" dominant-baseline="middle" fill="#59636e">([^<]+)<', svg)
    assert len(labels) == len(set(labels)) >= 3
    assert "1e-14" in labels and "3e-14" in labels


def test_nearly_equal_values_are_drawn_flat_with_readable_ticks():
    axis = chart_scale.axis_for(*MEASURED["tick_loop"])
    assert len(axis.ticks) <= chart_scale.MAX_TICKS
    assert chart_scale.tick_labels(axis.ticks) == ["9e+15", "9.5e+15", "1e+16", "1.05e+16", "1.1e+16"]
    assert chart_scale.is_flat(*MEASURED["below_resolution"])


def test_the_float_limits_get_even_ticks_inside_the_float_range():
    axis = chart_scale.axis_for(-sys.float_info.max, sys.float_info.max)
    assert axis.low == -sys.float_info.max and axis.high == sys.float_info.max
    assert all(math.isfinite(t) for t in axis.ticks) and 3 <= len(axis.ticks) <= chart_scale.MAX_TICKS
    assert axis.fraction(0.0) == pytest.approx(0.5)


def test_a_million_points_are_thinned_and_the_markup_stays_small():
    values = [math.sin(i / 1000) + (50.0 if i == 777_777 else 0.0) for i in range(10**6)]
    started = time.monotonic()
    svg = _chart(values)
    assert time.monotonic() - started < SECONDS
    _assert_valid_svg(svg)
    points = _polyline_points(svg)
    assert 2 <= len(points) <= chart_scale.MAX_PLOTTED
    # The one spike (51, the rest within +-1) survives thinning: the highest point of its stretch is kept.
    heights = sorted(float(p.split(",")[1]) for p in points)
    assert heights[0] < svg_plot.MARGIN_TOP + 0.3 * svg_plot.PLOT_H < heights[1]
    assert "<circle" not in svg  # no markers on a long series


@pytest.mark.parametrize("values", [[], [3.0], [float("nan")] * 5, [float("inf"), float("-inf")], [0.0] * 100,
                                    [5e-324, 1e-323], [None, "1", True, [1.0], {"a": 1}, 10**400]],
                         ids=["empty", "one", "nans", "infs", "zeros", "subnormal", "junk"])
def test_degenerate_lists_draw_a_valid_chart(values: list[Any]):
    _assert_valid_svg(_chart(values))


def test_hostile_reference_lines_and_ranges_are_ignored_or_drawn_inside():
    svg = _chart([0.5, 0.6], hlines=[svg_plot.HLine(math.nan, "nan"), svg_plot.HLine(10**400, "big"),  # type: ignore[arg-type]
                                     svg_plot.HLine(0.55, "ok")],
                 y_range=(math.inf, -math.inf), y_format=lambda v: f"{v * 100:.0f}%")
    _assert_valid_svg(svg)
    assert ">ok<" in svg and ">nan<" not in svg and ">big<" not in svg


# ---------------------------------------------------------------- fuzzing


@FUZZ
@given(st.lists(st.one_of(number, junk), max_size=300), st.booleans())
def test_fuzz_line_chart_never_raises_and_stays_bounded(values: list[Any], integer_x: bool):
    _assert_valid_svg(_chart(values, integer_x=integer_x))


@FUZZ
@given(st.lists(st.tuples(number, number), max_size=200), st.lists(number, max_size=3),
       st.one_of(st.none(), st.tuples(number, number)), st.booleans())
def test_fuzz_line_chart_with_any_x_lines_and_range(points: list[tuple[float, float]], lines: list[float],
                                                    y_range: tuple[float, float] | None, integer_x: bool):
    chart = svg_plot.Chart("t", "x", "y", [svg_plot.Series("s", points)],
                           hlines=[svg_plot.HLine(v, "h") for v in lines], y_range=y_range, integer_x=integer_x)
    with time_limit(SECONDS):
        svg = str(svg_plot.line_chart(chart))
    _assert_valid_svg(svg)


@settings(deadline=None, max_examples=400)
@given(number, number, st.integers(min_value=-3, max_value=30), st.booleans())
def test_fuzz_axis_is_finite_increasing_and_covers_the_range(low: float, high: float, target: int, integer: bool):
    with time_limit(SECONDS):
        axis = chart_scale.axis_for(low, high, target, integer)
        labels = chart_scale.tick_labels(axis.ticks)
    assert math.isfinite(axis.low) and math.isfinite(axis.high) and axis.low < axis.high
    assert 1 <= len(axis.ticks) <= chart_scale.MAX_TICKS
    assert all(axis.low <= t <= axis.high for t in axis.ticks)
    assert all(a < b for a, b in zip(axis.ticks, axis.ticks[1:]))
    if math.isfinite(low) and math.isfinite(high):
        assert axis.low <= min(low, high) and axis.high >= max(low, high)
    assert len(labels) == len(axis.ticks) and all(len(label) <= 24 for label in labels)
    assert len(set(labels)) == len(labels)
    for value in (low, high, axis.low, axis.high):
        assert 0.0 <= axis.fraction(value) <= 1.0


@settings(deadline=None, max_examples=300)
@given(st.lists(number, max_size=20))
def test_fuzz_tick_labels_of_any_floats_are_short_strings(ticks: list[float]):
    labels = chart_scale.tick_labels(ticks)
    assert len(labels) == len(ticks) and all(isinstance(s, str) and len(s) <= 24 for s in labels)


@settings(deadline=None, max_examples=150)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(allow_nan=False, allow_infinity=False)),
                min_size=1, max_size=3000), st.integers(min_value=0, max_value=500))
def test_fuzz_thinning_keeps_order_and_both_extremes(points: list[tuple[float, float]], limit: int):
    thinned = chart_scale.thin(points, limit)
    assert len(thinned) <= max(limit, 2)
    positions = iter(range(len(points)))
    assert all(any(points[i] is p for i in positions) for p in thinned)  # a subsequence, in order
    ys = [y for _, y in thinned]
    assert min(ys) == min(y for _, y in points) and max(ys) == max(y for _, y in points)


@settings(deadline=None, max_examples=200)
@given(st.one_of(st.lists(st.one_of(st.tuples(junk, junk), junk, st.tuples(number, number))), junk))
def test_fuzz_clean_points_accepts_anything(points: Any):
    clean = chart_scale.clean_points(points)
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in clean.points)


# ---------------------------------------------------------------- the report page


def _result_with_curve(losses: Any) -> dict[str, Any]:
    result = json.loads((FIXTURES / "fails_lstm_first_step_logits.json").read_text(encoding="utf-8"))
    result["student_curve"] = {"variable": "losses", "losses": losses}
    return result


def _student_section(html: str) -> str:
    section = html[html.index("data-student-curve"):]
    return section[:section.index("</section>")]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_report_renders_a_stored_result_with_each_measured_curve(name: str, lang: str):
    with time_limit(SECONDS):
        html = render_submission_html(_result_with_curve(MEASURED[name]), lang)
    section = _student_section(html)
    assert len(_polyline_points(section)) == 2
    _assert_valid_svg(re.search(r"<svg.*?</svg>", section, re.S).group(0))


@pytest.mark.parametrize("lang, note", [("en", "No chart: none of the 3 values is a finite number."),
                                        ("zh", "未绘图：3 个值中没有一个是有限数字。")])
def test_a_curve_without_one_finite_number_is_left_out_with_a_note(lang: str, note: str):
    html = render_submission_html(_result_with_curve([None, float("nan"), "x"]), lang)
    section = _student_section(html)
    assert "<svg" not in section and note in section


@pytest.mark.parametrize("lang, note", [("en", "2 of 4 values are not finite numbers"),
                                        ("zh", "4 个值中有 2 个不是有限数字")])
def test_values_left_out_of_a_curve_are_counted_in_a_note(lang: str, note: str):
    section = _student_section(render_submission_html(_result_with_curve([1.0, None, 10**400, 0.5]), lang))
    assert len(_polyline_points(section)) == 2 and note in section


def test_a_stored_curve_of_a_million_points_renders_a_bounded_page():
    losses = [1.0 / (i + 1) for i in range(10**6)]
    small = len(render_submission_html(_result_with_curve(losses[:2]), "en"))
    with time_limit(3 * SECONDS):
        html = render_submission_html(_result_with_curve(losses), "en")
    section = _student_section(html)
    assert len(_polyline_points(section)) <= chart_scale.MAX_PLOTTED
    assert f"1000000 values: the line is thinned to {chart_scale.MAX_PLOTTED} points" in section
    assert len(html) - small < MAX_SVG_CHARS


def test_a_training_curve_with_hostile_numbers_still_renders_both_charts_or_notes():
    result = _result_with_curve([1.0])
    check = next(c for c in result["checks"] if c["id"] == "lstm.train")
    check["details"]["threshold"] = 10**400
    check["details"]["curve"] = [
        {"epoch": 1, "loss": 1.7e308, "accuracy": float("nan")},
        {"epoch": 10**400, "loss": -1.7e308, "accuracy": "high"},
        {"epoch": 3, "loss": 1e16 + 2, "accuracy": None},
        {"epoch": 4, "loss": float("inf"), "accuracy": True},
    ]
    for lang in ("en", "zh"):
        html = render_submission_html(result, lang)
        section = html[html.index("data-training"):]
        section = section[:section.index("</section>")]
        svgs = re.findall(r"<svg.*?</svg>", section, re.S)
        assert len(svgs) == 1  # the loss chart; no accuracy is a number, so that chart is a note
        _assert_valid_svg(svgs[0])
        assert ("No chart: none of the 4 values is a finite number." in section
                or "未绘图：4 个值中没有一个是有限数字。" in section)


def test_training_curve_that_is_not_a_list_is_no_chart():
    result = _result_with_curve([1.0])
    next(c for c in result["checks"] if c["id"] == "lstm.train")["details"]["curve"] = 5
    assert "data-training" not in render_submission_html(result, "en")


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.one_of(number, junk), max_size=50), junk))
def test_fuzz_report_with_any_stored_curve_renders(losses: Any):
    result = _result_with_curve(copy.deepcopy(losses))
    with time_limit(SECONDS):
        html = render_submission_html(result, "en")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


# ---------------------------------------------------------------- feeding the charts


def test_the_kernels_answer_keeps_non_finite_losses_as_gaps():
    answer = '{"curve": [1.0, NaN, Infinity, -Infinity, ' + "9" * 400 + ", 2]}"
    assert parse_curve(answer) == {"variable": "losses", "losses": [1.0, None, None, None, None, 2.0]}


@pytest.mark.parametrize("stdout", ["[" * 100_000, '{"curve": [' + "1" * 5000 + "]}", '{"curve": [true]}',
                                    '{"curve": ["1.0"]}', '{"curve": 5}', "not json"])
def test_a_hostile_kernel_answer_is_no_curve(stdout: str):
    assert parse_curve(stdout) is None


def test_the_summary_histogram_skips_nan_and_clamps_infinite_percentages():
    counts = [b.count for b in histogram([math.nan, math.inf, -math.inf, 1e308, -5.0, 100.0, 55.0])]
    assert len(counts) == BINS and sum(counts) == 6
    assert counts[0] == 2 and counts[-1] == 3 and counts[5] == 1
