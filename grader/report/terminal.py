"""The terminal table a student reads after `grader check`."""
from __future__ import annotations

import os
import sys
import textwrap
import unicodedata
from typing import TextIO

from grader.messages import render, text
from grader.pipeline import SubmissionReport
from grader.result import Status
from grader.rubric import Rubric

MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.SKIPPED: "-"}
COLOURS = {Status.PASSED: "32", Status.FAILED: "31", Status.ERROR: "33", Status.SKIPPED: "90"}


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _colour(s: str, code: str, enabled: bool) -> str:
    return f"\033[{code}m{s}\033[0m" if enabled else s


def print_report(report: SubmissionReport, rubric: Rubric, lang: str, out: TextIO = sys.stdout) -> None:
    colour = out.isatty() and "NO_COLOR" not in os.environ
    title = rubric.meta.title_zh if lang == "zh" else rubric.meta.title_en
    out.write(f"{title} — {report.notebook}\n\n")
    id_width = max(len(c.id) for c in report.checks)
    for c in report.checks:
        mark = _colour(MARKS[c.status], COLOURS[c.status], colour)
        status = _pad(text(f"report.{c.status.value}", lang), 6)
        points = f"{c.score:g}/{c.max_score:g}".rjust(5)
        out.write(f" {mark} {c.id.ljust(id_width)}  {status} {points}  {render(c.message, lang)}\n")
        # A skipped check's subject is missing; the failed check upstream already says why.
        if c.status in (Status.FAILED, Status.ERROR):
            indent = " " * (id_width + 4)
            if c.diagnosis:
                out.write(f"{indent}{text('report.diagnosis', lang, text=render(c.diagnosis, lang))}\n")
            hint = text("report.hint", lang, text=rubric.checks[c.id].hint(lang))
            for line in textwrap.wrap(hint, 100) or [""]:
                out.write(f"{indent}{line}\n")
    out.write("\n")
    remap = text("report.npu_remapped", lang) if report.npu_remapped else ""
    out.write(text("report.device_line", lang, device=report.device, remap=remap, duration=report.duration_s) + "\n")
    if report.shell_escapes:
        commands = ", ".join(f"[{e['cell']}] {e['command']}" for e in report.shell_escapes)
        out.write(text("report.skipped_commands", lang, commands=commands) + "\n")
    score_line = text("report.score_line", lang, score=report.score, max_score=report.max_score)
    out.write(_colour(score_line, "1", colour) + "\n")
