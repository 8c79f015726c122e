"""The class summary as one self-contained HTML page (no JavaScript, nothing fetched).

It extends the shared page skeleton `templates/base.html.j2`. Everything from
results (ids, file names, errors, similarity notes) goes through jinja2's
autoescaping, and through `html_safe` (the environment's finalize), which makes
bidi overrides and isolates visible; the histogram is an inline SVG whose
geometry is computed here from counts, so the only text in it is our own bin labels and numbers.
Links to per-student reports are relative hrefs the caller supplies
(`write_outputs` passes `reports/<safe name>.html`), one per submission in
input order; without them the ids are plain text.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.messages import LANGUAGES, text
from grader.report.grades_csv import format_number
from grader.report.summary import ClassSummary, problem_text
from grader.report.templating import environment

HTML_LANG = {"zh": "zh-CN", "en": "en"}

# Histogram geometry (SVG user units); the CSS scales the SVG to the card's width.
SVG_WIDTH = 560
SVG_HEIGHT = 240
PLOT_LEFT = 40
PLOT_TOP = 16
PLOT_BOTTOM = 200
BAR_GAP = 6


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class HistogramSvg:
    width: int
    height: int
    plot_left: int
    plot_top: int
    plot_bottom: int
    plot_right: int
    peak: int
    bars: tuple[Bar, ...]


def histogram_svg(summary: ClassSummary) -> HistogramSvg:
    """Bar geometry in whole-ish numbers: bar heights scale to the tallest bin."""
    bins = summary.histogram
    peak = max((b.count for b in bins), default=0)
    plot_right = SVG_WIDTH - 8
    slot = (plot_right - PLOT_LEFT) / max(len(bins), 1)
    bars = []
    for i, b in enumerate(bins):
        height = (PLOT_BOTTOM - PLOT_TOP) * b.count / peak if peak else 0.0
        bars.append(Bar(x=round(PLOT_LEFT + i * slot + BAR_GAP / 2, 2), y=round(PLOT_BOTTOM - height, 2),
                        width=round(slot - BAR_GAP, 2), height=round(height, 2), count=b.count, label=b.label))
    return HistogramSvg(SVG_WIDTH, SVG_HEIGHT, PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM, plot_right, peak, tuple(bars))


def summary_html(summary: ClassSummary, lang: str, report_hrefs: Sequence[str | None] | None = None,
                 heading: str | None = None) -> str:
    """The page. `report_hrefs[i]` links submission i (input order) to its report; None: no link."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    hrefs = list(report_hrefs) if report_hrefs is not None else []

    def href(index: int) -> str | None:
        return hrefs[index] if index < len(hrefs) else None

    def t(key: str, **params: Any) -> str:
        return text(key, lang, **params)

    return environment().get_template("summary.html.j2").render(
        lang=lang, html_lang=HTML_LANG[lang], t=t, s=summary, heading=heading or t("summary.title"),
        svg=histogram_svg(summary), href=href, num=format_number, problem_text=lambda p: problem_text(p, lang))


def write_summary_html(summary: ClassSummary, path: Path, lang: str,
                       report_hrefs: Sequence[str | None] | None = None, heading: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_html(summary, lang, report_hrefs, heading), encoding="utf-8")
    return path
